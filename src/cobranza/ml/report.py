"""Pictures of a training run (PNG, matplotlib Agg) and the one-file HTML model report.

The report embeds every picture as base64 so it can be mailed or archived alone; it shows the
split, the metrics per part next to the oracle (when the simulator's truth is present), the
baseline comparison, lift by decile, the gate result and the policy.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from cobranza.ml import metrics as M
from cobranza.ml.data import Dataset
from cobranza.ml.evaluation import EVAL_PARTS, CalibrationReport, Evaluation

PART_COLORS = {"train": "#1f77b4", "test": "#2ca02c", "oot": "#d62728"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _thin(*arrays: np.ndarray, points: int = 2000) -> tuple[np.ndarray, ...]:
    """At most `points` evenly spaced points of a curve (ends kept): 1M-point lines are slow."""
    n = len(arrays[0])
    if n <= points:
        return arrays
    idx = np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))
    return tuple(a[idx] for a in arrays)


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for part, (y, p) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        fpr, tpr = _thin(fpr, tpr)
        ax.plot(fpr, tpr, label=f"{part} AUC={M.auc(y, p):.3f}", color=PART_COLORS.get(part))
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for part, (y, p) in curves.items():
        prec, rec, _ = precision_recall_curve(y, p)
        prec, rec = _thin(prec, rec)
        ax.plot(rec, prec, label=f"{part} base={np.mean(y):.3f}", color=PART_COLORS.get(part))
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (self-cure = 1)")
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_calibration(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for part, (y, p) in curves.items():
        bins = M.calibration_bins(y, p)
        used = bins["count"] > 0
        ax.plot(
            bins["mean_p"][used],
            bins["rate"][used],
            "o-",
            label=f"{part} ECE={M.ece(y, p):.3f}",
            color=PART_COLORS.get(part),
        )
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="mean predicted probability", ylabel="observed self-cure rate")
    ax.set_title("Calibration (10 equal-width bins)")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_gains(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    for part, (y, p) in curves.items():
        table = M.deciles(y, p)
        x = [0] + [d["decile"] * 10 for d in table]
        ax1.plot(x, [0] + [d["cum_capture"] for d in table], "o-", label=part)
        ax2.plot(x[1:], [d["lift"] for d in table], "o-", label=part)
    ax1.plot([0, 100], [0, 1], "k:", lw=1)
    ax1.set(xlabel="% of obligations (highest score first)", ylabel="share of self-cures")
    ax1.set_title("Cumulative gains")
    ax2.axhline(1, color="k", ls=":", lw=1)
    ax2.set(xlabel="decile (x10 %)", ylabel="lift", title="Lift by decile")
    ax1.legend(loc="lower right")  # gains rise from (0, 0) to (100, 1): that corner stays empty
    return _save(fig, path)


def plot_distributions(y: np.ndarray, p: np.ndarray, part: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(0, 1, 41)
    ax.hist(p[y == 0], bins=bins, alpha=0.6, density=True, label="did not self-cure (0)")
    ax.hist(p[y == 1], bins=bins, alpha=0.6, density=True, label="self-cured (1)")
    ax.set(xlabel="calibrated probability", ylabel="density")
    ax.set_title(f"Score distribution by class ({part})")
    # a fixed place above the bars (matplotlib's "best" searches every bar: seconds on a busy
    # machine), with the headroom to hold it
    ax.set_ylim(top=ax.get_ylim()[1] * 1.25)
    ax.legend(loc="upper center", ncols=2, fontsize=8)
    return _save(fig, path)


def plot_importance(importance: pd.DataFrame, path: Path, top: int = 20) -> Path:
    data = importance.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(data) + 1.2))
    ax.barh(data["feature"], data["gain"])
    ax.set(xlabel="total gain", title="LightGBM feature importance (gain)")
    return _save(fig, path)


def plot_shap(
    contrib: pd.DataFrame,
    X: pd.DataFrame,
    path: Path,
    top: int = 15,
    dots: int = 400,
) -> Path:
    """SHAP summary: one dot per row and feature, x = contribution, colour = feature value rank.

    Features are ranked on every given row; at most `dots` rows are drawn (Agg draws each
    coloured marker on its own: 30k dots take seconds).
    """
    values = contrib.drop(columns=["bias"])
    values = values[[c for c in values.columns if c in X.columns]]  # not a causal treatment
    order = values.abs().mean().sort_values(ascending=False, kind="stable").index[:top][::-1]
    values, X = values.iloc[:dots], X.iloc[:dots]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.2))
    rng = np.random.default_rng(0)
    for i, name in enumerate(order):
        x = values[name].to_numpy()
        col = X[name]
        if pd.api.types.is_numeric_dtype(col):
            color = pd.Series(col.to_numpy(dtype=np.float64)).rank(pct=True).fillna(0.5)
        else:
            color = pd.Series(pd.Categorical(col.astype(object)).codes).rank(pct=True)
        ax.scatter(
            x,
            i + rng.uniform(-0.3, 0.3, len(x)),
            c=color.to_numpy(),
            cmap="coolwarm",
            s=4,
            alpha=0.6,
        )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(order)), list(order))
    ax.set(xlabel="contribution to log-odds of self-cure (TreeSHAP)", title="SHAP summary")
    return _save(fig, path)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{path.stem}" src="data:image/png;base64,{data}"/></figure>'


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return html.escape(str(v))

    body = "".join("<tr>" + "".join(f"<td>{cell(r[c])}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(path: Path, title: str, sections: list[tuple[str, Any]]) -> Path:
    """Sections are (heading, content); content is HTML text, a list of row dicts or a PNG path."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:right}th{background:#f3f3f3}"
        "figure{display:inline-block;margin:.5em}img{max-width:100%}",
        f"</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        items = content if isinstance(content, tuple) else (content,)
        for item in items:
            if isinstance(item, Path):
                parts.append(_img(item))
            elif isinstance(item, list):
                parts.append(_table(item))
            else:
                parts.append(str(item))
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


SHAP_SAMPLE = 2000  # test rows behind the SHAP summary: its picture needs no more


def draw_pictures(
    folder: Path, dataset: Dataset, proba: dict[str, np.ndarray], model: Any, seed: int
) -> dict[str, Path]:
    """Every picture of a training run, drawn into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    curves = {part: (dataset.y(part), proba[part]) for part in ("train", "test", "oot")}
    test = dataset.X("test")
    n = min(SHAP_SAMPLE, len(test))
    sample = test.sample(n=n, random_state=seed) if n < len(test) else test
    return {
        "roc": plot_roc(curves, folder / "roc.png"),
        "pr": plot_pr(curves, folder / "precision_recall.png"),
        "calibration": plot_calibration(curves, folder / "calibration.png"),
        "gains": plot_gains(curves, folder / "gains_lift.png"),
        "dist_test": plot_distributions(
            dataset.y("test"), proba["test"], "test", folder / "score_distribution_test.png"
        ),
        "dist_oot": plot_distributions(
            dataset.y("oot"), proba["oot"], "oot", folder / "score_distribution_oot.png"
        ),
        "importance": plot_importance(model.importance(), folder / "importance_gain.png"),
        "shap": plot_shap(model.contributions(sample), sample, folder / "shap_summary.png"),
    }


@dataclass
class ReportRun:
    """What the report says of the run beside the figures."""

    version: str
    run_id: str
    gold_version: str | None
    commit: str | None
    seed: int
    gate_passed: bool
    gate_reason: str
    policy: dict[str, Any]
    causal: dict[str, Any] | None = None  # ml.causal.CausalEvaluation.to_dict()
    gate_evidence: list[dict[str, Any]] = field(default_factory=list)  # same-row comparison
    effect_warning: str | None = None  # the effect of management is not identified


def _gaps(evaluation: Evaluation) -> list[dict[str, Any]]:
    """LightGBM against the baseline (out of time) and against the oracle (each part)."""
    rows = []
    if evaluation.baseline_gap is not None:
        rows.append({"comparison": "LightGBM - baseline", "part": "oot",
                     **_interval(evaluation.baseline_gap)})  # fmt: skip
    for part, gap in evaluation.oracle_gap.items():
        rows.append({"comparison": "LightGBM - oracle", "part": part, **_interval(gap)})
    return rows


def _interval(iv: Any) -> dict[str, float]:
    return {"estimate": iv.estimate, "low": iv.low, "high": iv.high}


def _calibration_sections(report: CalibrationReport | None) -> list[tuple[str, Any]]:
    """Slope, intercept and ECE beside the oracle's, then by product and by segment."""
    if report is None:
        return []
    head = {
        "part": report.part,
        "slope": report.recalibration.slope,
        "intercept": report.recalibration.intercept,
        "ece": report.ece.estimate,
        "ece_low": report.ece.low,
        "ece_high": report.ece.high,
    }
    if report.oracle_ece is not None:
        head |= {
            "oracle_ece": report.oracle_ece.estimate,
            "oracle_ece_low": report.oracle_ece.low,
            "oracle_ece_high": report.oracle_ece.high,
        }
    sections: list[tuple[str, Any]] = [
        (
            "Calibration out of time (slope 1 and intercept 0 when calibrated; 95% intervals)",
            [head],
        )
    ]
    for name, groups in report.groups.items():
        rows = [{k: "" if v is None else v for k, v in g.to_dict().items()} for g in groups]
        sections.append((f"Calibration by {name} (out of time)", rows))
    return sections


def model_report(
    folder: Path,
    run: ReportRun,
    dataset: Dataset,
    model: Any,
    evaluation: Evaluation,
    pictures: dict[str, Path],
) -> Path:
    """`model_report.html` of a training run: split, metrics beside the oracle's, pictures."""
    metrics, split = evaluation.metrics, dataset.summary()
    rows_table = [
        {
            "part": p,
            **split[p],
            **{
                k: metrics["lightgbm"][p][k]
                for k in ("auc", "gini", "ks", "pr_auc", "brier", "log_loss", "ece")
            },
            "oracle_auc": metrics["lightgbm"][p].get("oracle_auc", float("nan")),
            "baseline_auc": metrics["baseline"][p]["auc"],
            "baseline_ece": metrics["baseline"][p]["ece"],
        }
        for p in EVAL_PARTS
    ]
    proba = evaluation.proba
    return write_html(
        folder / "model_report.html",
        f"cobranza self-cure model v{run.version}",
        [
            (
                "Run",
                f"<p>run {run.run_id}; gold version {run.gold_version}; git "
                f"{run.commit}; seed {run.seed}; OOT months {', '.join(dataset.oot_months)}; "
                f"best iteration {model.best_iteration_}; PSI train&rarr;OOT "
                f"{evaluation.psi:.4f} (baseline {evaluation.psi_baseline:.4f}).</p>",
            ),
            (
                "Gate",
                (
                    f"<p>{'PASSED' if run.gate_passed else 'FAILED'}: "
                    f"{html.escape(run.gate_reason)}</p>",
                    run.gate_evidence,
                ),
            ),
            ("Metrics by part (LightGBM calibrated, oracle, baseline)", rows_table),
            ("AUC differences on the same rows (95% bootstrap intervals)", _gaps(evaluation)),
            *_calibration_sections(evaluation.calibration),
            ("ROC and precision-recall", (pictures["roc"], pictures["pr"])),
            ("Calibration", pictures["calibration"]),
            ("Cumulative gains and lift", pictures["gains"]),
            ("Lift by decile (OOT)", M.deciles(dataset.y("oot"), proba["oot"])),
            ("Score distributions", (pictures["dist_test"], pictures["dist_oot"])),
            ("Feature importance", (pictures["importance"], pictures["shap"])),
            *(
                [
                    (
                        "Effect of management not identified",
                        f"<p>{html.escape(run.effect_warning)}</p>",
                    )
                ]
                if run.effect_warning
                else []
            ),
            ("Decision policy (expected figures on test)", [run.policy]),
            *causal_sections(run.causal),
        ],
    )


def causal_sections(causal: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The causal candidates out of time on the randomized rows, the Qini coefficient and the
    predicted against observed effect on the roll by decile."""
    if not causal:
        return []
    candidates = [
        {"model": kind, "candidate": name, "chosen": name == causal[kind]["method"], **scores}
        for kind in ("self_cure", "roll")
        for name, scores in causal[kind]["candidates"].items()
    ]
    effect = (
        f"<p>{causal['randomized_rows']:,} randomized rows out of time; mean predicted effect of "
        f"management on the roll {causal['mean_predicted_effect']}, observed (holdout minus "
        f"assigned) {causal['observed_effect']}; Qini coefficient "
        f"{causal['qini'].get('qini_coefficient')}.</p>"
    )
    return [
        ("Causal candidates (out of time, randomized rows; lowest log loss chosen)", candidates),
        ("Effect of management on the roll", effect),
        ("Predicted against observed effect by decile (OOT)", causal["effect_by_decile"] or [{}]),
    ]
