"""`cobranza monitor`: is the champion still looking at the population it was trained on, and is it right?

Three readings, written to `ml_metadata.monitoring_*` for BI and summarized for people:
- data drift: PSI of every feature, reference = the last training months (the `oot_months` labeled
  months just before the out-of-time ones) against the latest cut's eligible population;
- score drift: PSI of the champion's probabilities on the same two populations;
- realized performance: for every past scoring run whose horizon has closed (its cut is now labeled
  in gold), AUC, calibration error, observed versus predicted self-cure and the leakage of NO_ASSIGN.

Each run also writes its report for people (`monitoring.report`, one HTML file named by the
summary's `report`), and says in words why it has its status (`status_reason`). `exit_code` turns a
run's status into the exit code of `--fail-on`: a scheduler can stop on drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from cobranza.config import Settings
from cobranza.console import waiting
from cobranza.errors import CobranzaError
from cobranza.lake import Lake, refresh_catalog
from cobranza.ml.data import feature_columns, read_gold
from cobranza.ml.metrics import auc, ece
from cobranza.ml.registry import load_champion
from cobranza.monitoring.drift import (
    REFERENCE_SAMPLE,
    enough_rows,
    feature_drift,
    numeric_psi,
    second_test,
    status,
)
from cobranza.monitoring.report import REPORTS_DIR, MonitorRun, status_reason, write_report
from cobranza.summary import Section, Summary
from cobranza.tables import SCORES
from cobranza.transforms.schema import CUT_DATE, ELIGIBLE, OBLIGATION_ID, TARGET

# `--fail-on LEVEL`: the statuses at which a run exits non-zero, and that code (1 and 2 are
# errors, so a drift stop reads differently from a failure).
FAIL_LEVELS: dict[str, frozenset[str]] = {
    "never": frozenset(),
    "alert": frozenset({"ALERT"}),
    "warn": frozenset({"ALERT", "WARN"}),
    "insufficient_data": frozenset({"ALERT", "WARN", "INSUFFICIENT_DATA"}),
}
DRIFT_EXIT_CODE = 3


@dataclass
class MonitorResult(Summary):
    """A monitoring run: drift status overall, of the score and per feature, realized figures."""

    status: str  # OK, WARN, ALERT or INSUFFICIENT_DATA
    status_reason: str  # the status in words, e.g. why the data were insufficient
    report: str  # the run's HTML report for people
    current_cut: str
    model_version: str
    reference_rows: int
    current_rows: int
    score_psi: float | None
    score_status: str
    features_alert: list[str]
    features_warn: list[str]
    top_drift: list[dict[str, Any]]
    realized: list[dict[str, Any]]  # the last three scoring runs whose horizon has closed
    monitoring_run_id: str

    def sections(self) -> list[Section]:
        """The status and why, the score's and the most drifted features' PSI, the realized
        figures of closed scoring runs, and the report's file."""
        head = [
            ("status", self.status),
            ("why", self.status_reason),
            ("model version", str(self.model_version)),
            ("current cut", self.current_cut),
            ("rows: reference / current", f"{self.reference_rows:,} / {self.current_rows:,}"),
            ("features in ALERT", ", ".join(self.features_alert) or "none"),
            ("features in WARN", ", ".join(self.features_warn) or "none"),
        ]
        drift = [("score (probability)", _fmt(self.score_psi, 4), self.score_status)]
        drift += [(r["feature"], _fmt(r.get("psi"), 4), r["status"]) for r in self.top_drift]
        out: list[Section] = [
            (f"monitoring run {self.monitoring_run_id}", None, head),
            ("drift (PSI, largest first)", ["what", "PSI", "status"], drift),
        ]
        if self.realized:
            rows = [
                (
                    str(r.get(CUT_DATE)),
                    str(r.get("model_version")),
                    f"{r['rows']:,}",
                    _fmt(r.get("auc"), 3),
                    _fmt(r.get("ece"), 3),
                    _fmt(r.get("observed_rate"), 3),
                    _fmt(r.get("predicted_rate"), 3),
                    _fmt(r.get("leakage_rate"), 3),
                )
                for r in self.realized
            ]
            columns = ["cut", "model", "rows", "AUC", "ECE", "observed", "predicted", "leakage"]
            out.append(("realized performance of closed horizons", columns, rows))
        out.append(("report", None, [(self.report,)]))
        return out


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def exit_code(result: MonitorResult | dict[str, Any], fail_on: str = "never") -> int:
    """0, or DRIFT_EXIT_CODE when the run's status is one `fail_on` stops at.

    `alert` stops at ALERT, `warn` at WARN or ALERT, `insufficient_data` also when the run could
    not judge (too few rows), `never` never.
    """
    if fail_on not in FAIL_LEVELS:
        raise ValueError(f"unknown fail level {fail_on!r}; use one of {', '.join(FAIL_LEVELS)}")
    current = result.get("status") if isinstance(result, dict) else result.status
    return DRIFT_EXIT_CODE if current in FAIL_LEVELS[fail_on] else 0


def _reference_and_current(
    gold: pd.DataFrame, oot_months: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    eligible = gold.loc[gold[ELIGIBLE].fillna(False).astype(bool)]
    cuts = sorted(eligible[CUT_DATE].unique())
    labeled = sorted(eligible.loc[eligible[TARGET].notna(), CUT_DATE].unique())
    if len(labeled) <= oot_months or not cuts:
        raise CobranzaError(
            "gold has too few labeled cut months to form a monitoring reference window"
        )
    if len(labeled) < 2 * oot_months:
        raise CobranzaError(
            f"gold has {len(labeled)} labeled cut months; monitoring needs {2 * oot_months} "
            f"(the {oot_months} training months before the {oot_months} out-of-time ones)"
        )
    # The last training months: recent enough that 6/12-month window features are mature, and
    # before the out-of-time months, so drift after training is not already in the reference.
    window = labeled[-2 * oot_months : -oot_months]
    reference = eligible.loc[eligible[CUT_DATE].isin(window) & eligible[TARGET].notna()]
    if len(reference) > REFERENCE_SAMPLE:
        reference = reference.sample(REFERENCE_SAMPLE, random_state=seed)
    current = eligible.loc[eligible[CUT_DATE] == cuts[-1]]
    return reference, current, str(cuts[-1])


def reference_cuts(gold: pd.DataFrame, oot_months: int) -> list[str]:
    """The cut months of the reference window (the monitor's own rule)."""
    eligible = gold.loc[gold[ELIGIBLE].fillna(False).astype(bool)]
    labeled = sorted(eligible.loc[eligible[TARGET].notna(), CUT_DATE].unique())
    return [str(c)[:10] for c in labeled[-2 * oot_months : -oot_months]]


def realized_performance(
    scores: pd.DataFrame, gold: pd.DataFrame, periods: dict[str, str | None] | None = None
) -> list[dict[str, Any]]:
    """Stored probabilities of past scoring runs against the labels their horizons produced;
    `periods` (scoring run -> scored_period) marks the in-sample ones ("training")."""
    labels = gold.loc[gold[TARGET].notna(), [OBLIGATION_ID, CUT_DATE, TARGET]]
    scored = scores.loc[scores["probability"].notna()]
    joined = scored.merge(labels, on=[OBLIGATION_ID, CUT_DATE], how="inner")
    rows = []
    for (run_id, cut, version), part in joined.groupby(
        ["scoring_run_id", CUT_DATE, "model_version"], sort=True
    ):
        y = part[TARGET].to_numpy(dtype=np.int64)
        p = part["probability"].to_numpy(dtype=np.float64)
        no_assign = part["decision"].to_numpy() == "NO_ASSIGN"
        both = y.min() != y.max()
        rows.append(
            {
                "scoring_run_id": run_id,
                CUT_DATE: str(cut),
                "model_version": str(version),
                "scored_period": (periods or {}).get(run_id),
                "rows": len(part),
                "auc": round(auc(y, p), 6) if both else None,
                "ece": round(ece(y, p), 6),
                "observed_rate": round(float(y.mean()), 6),
                "predicted_rate": round(float(p.mean()), 6),
                "no_assign": int(no_assign.sum()),
                "leakage_rate": round(float(1 - y[no_assign].mean()), 6)
                if no_assign.any()
                else None,
            }
        )
    return rows


def _read_scores(lake: Lake) -> pd.DataFrame | None:
    if lake.current_version("results") is None:
        return None
    versions = [
        v["version"] for v in lake.versions("results") if SCORES in v.get("history_tables", [])
    ]
    globs = [lake.table_glob("results", SCORES, v) for v in versions]
    if not globs:
        return None
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT obligation_id, cut_date, probability, decision, model_version, scoring_run_id "
            "FROM read_parquet(?, union_by_name=true)",
            [globs],
        ).df()
    finally:
        con.close()


def data_drift(settings: Settings, lake: Lake) -> dict[str, Any]:
    """Feature drift only: needs gold, not a model (useful before the first champion exists)."""
    gold, gold_info = read_gold(lake)
    reference, current, current_cut = _reference_and_current(
        gold, settings.oot_months, settings.seed
    )
    features, categorical = feature_columns(gold)
    return {
        "gold": gold,
        "gold_version": gold_info["version"],
        "reference": reference,
        "current": current,
        "current_cut": current_cut,
        "drift": feature_drift(reference, current, features, categorical),
        "features": features,
        "categorical": categorical,
    }


def overall_status(drift: list[dict[str, Any]], score_status: str) -> str:
    """ALERT if a feature or the score is ALERT, else WARN if any is WARN, else INSUFFICIENT_DATA
    when the score could not be judged, else OK."""
    statuses = {r["status"] for r in drift} | {score_status}
    for level in ("ALERT", "WARN"):
        if level in statuses:
            return level
    return "INSUFFICIENT_DATA" if score_status == "INSUFFICIENT_DATA" else "OK"


def monitor(settings: Settings, ui: Any = None) -> MonitorResult:
    """Drift and realized performance, written to ml_metadata; see the module docstring."""
    lake = Lake(settings.lake).ensure()
    data = data_drift(settings, lake)
    gold, reference, current, drift = (
        data["gold"],
        data["reference"],
        data["current"],
        data["drift"],
    )

    with waiting(ui, "loading the champion model"):
        champion = load_champion(settings)
    p_ref = p_cur = None
    if len(reference) and len(current):  # drawn in the report even when too few to judge
        p_ref = champion.model.predict_proba(reference[champion.features])[:, 1]
        p_cur = champion.model.predict_proba(current[champion.features])[:, 1]
    if p_ref is not None and enough_rows(reference, current):
        score_psi: float | None = numeric_psi(pd.Series(p_ref), pd.Series(p_cur))
        score_test = second_test(pd.Series(p_ref), pd.Series(p_cur), categorical=False)
    else:
        score_psi, score_test = None, {"ks": None, "ks_pvalue": None, "js": None}
    score_status = status(score_psi) if score_psi is not None else "INSUFFICIENT_DATA"

    scores = _read_scores(lake)
    periods = {
        v.get("scoring_run_id", v.get("run_id")): v.get("scored_period")
        for v in lake.versions("results")
    }
    performance = realized_performance(scores, gold, periods) if scores is not None else []

    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    stamp = {
        "monitoring_run_id": run_id,
        "gold_version": data["gold_version"],
        "current_cut": data["current_cut"],
        "model_version": champion.version,
    }
    score_row = {"feature": "__score__", "psi": score_psi, "status": score_status, **score_test}
    alerts = [r["feature"] for r in drift if r["status"] == "ALERT"]
    warns = [r["feature"] for r in drift if r["status"] == "WARN"]
    overall = overall_status(drift, score_status)
    reason = status_reason(overall, len(reference), len(current), drift, score_status)
    run = MonitorRun(
        run_id=run_id,
        status=overall,
        model_version=None if champion.version is None else str(champion.version),
        gold_version=data["gold_version"],
        current_cut=data["current_cut"],
        reference_cuts=reference_cuts(gold, settings.oot_months),
        reference=reference,
        current=current,
        features=data["features"],
        categorical=data["categorical"],
        drift=drift,
        score=score_row,
        score_reference=p_ref,
        score_current=p_cur,
        performance=performance,
    )
    # the team's language, the one its reason texts are written in; written first, so a run
    # whose report fails records nothing
    report = write_report(lake.metadata_dir / REPORTS_DIR, run, settings.reason_language)
    lake.write_metadata("monitoring_drift", [{**stamp, **r} for r in [*drift, score_row]], run_id)
    if performance:
        lake.write_metadata("monitoring_performance", [{**stamp, **r} for r in performance], run_id)
    refresh_catalog(lake)
    return MonitorResult(
        status=overall,
        status_reason=reason,
        report=str(report),
        current_cut=data["current_cut"],
        model_version=champion.version,
        reference_rows=len(reference),
        current_rows=len(current),
        score_psi=None if score_psi is None else round(score_psi, 4),
        score_status=score_status,
        features_alert=alerts,
        features_warn=warns,
        top_drift=drift[:5],
        realized=performance[-3:],
        monitoring_run_id=run_id,
    )
