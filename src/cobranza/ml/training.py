"""`cobranza train`: fit, evaluate, report, log to MLflow, register and gate one model version.

Steps: labeled eligible gold rows -> split (data.py) -> optional Optuna search on validation AUC
-> calibrated LightGBM and logistic baseline -> metrics per part and oracle AUC when the
simulator's truth is present -> decision policy on the test part -> pictures and HTML report ->
MLflow run (params, metrics, lake lineage, configuration, git commit, artifacts, pyfunc model)
-> registry gate -> `ml_metadata` mirror and catalog refresh. The same gold version,
configuration and seed give the same metrics to the last digit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cobranza.errors import CobranzaError, first_line
from cobranza.lake import Lake, refresh_catalog
from cobranza.ml import metrics as M
from cobranza.ml.data import (
    PARTS,
    VALID_SHARE,
    Dataset,
    attach_truth,
    load_dataset,
    truth_path,
)
from cobranza.ml.model import DEFAULT_LGBM_PARAMS, BaselineModel, SelfCureModel
from cobranza.summary import Summary

# Fixed, so that LightGBM's deterministic mode gives the same trees everywhere; one thread because
# OpenMP threads spin-wait and collapse on a shared 2-core machine (measured 0.1 s vs 11 s).
NUM_THREADS = 1
log = logging.getLogger(__name__)
EVAL_PARTS = ("train", "valid", "test", "oot")
SHAP_SAMPLE = 2000


def _round(value: float, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def tune(dataset: Dataset, trials: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Optuna TPE (seeded, sequential) over LightGBM parameters; objective = validation AUC."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X_train, y_train = dataset.X("train"), dataset.y("train")
    X_valid, y_valid = dataset.X("valid"), dataset.y("valid")

    def objective(trial: optuna.Trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 500, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        }
        model = SelfCureModel(
            dataset.features,
            dataset.categorical,
            params=params,
            early_stopping_rounds=50,
            seed=seed,
            num_threads=NUM_THREADS,
        ).fit(X_train, y_train, X_valid, y_valid)
        trial.set_user_attr("best_iteration", model.best_iteration_)
        return M.auc(y_valid, model.raw_score(X_valid))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: DEFAULT_LGBM_PARAMS[k] for k in study_params()})
    study.optimize(objective, n_trials=trials, n_jobs=1, show_progress_bar=False)
    history = [
        {"trial": t.number, "valid_auc": t.value, **t.params, **t.user_attrs} for t in study.trials
    ]
    return dict(study.best_params), history


def study_params() -> tuple[str, ...]:
    return (
        "learning_rate",
        "num_leaves",
        "min_data_in_leaf",
        "feature_fraction",
        "bagging_fraction",
        "lambda_l2",
    )


def evaluate_parts(
    dataset: Dataset, proba: dict[str, np.ndarray], truth: np.ndarray | None
) -> dict[str, dict[str, float]]:
    out = {}
    for part in EVAL_PARTS:
        y = dataset.y(part)
        values = M.evaluate(y, proba[part])
        if truth is not None:
            p_true = truth[dataset.part == part]
            known = ~np.isnan(p_true)
            values["oracle_coverage"] = float(known.mean()) if len(known) else float("nan")
            if known.any():
                values["oracle_auc"] = M.auc(y[known], p_true[known])
                values["oracle_ece"] = M.ece(y[known], p_true[known])
        out[part] = values
    return out


def _pictures(
    folder: Path,
    dataset: Dataset,
    proba: dict[str, np.ndarray],
    model: SelfCureModel,
    seed: int,
) -> dict[str, Path]:
    from cobranza.ml import report as R

    curves = {part: (dataset.y(part), proba[part]) for part in ("train", "test", "oot")}
    test = dataset.X("test")
    n = min(SHAP_SAMPLE, len(test))
    sample = test.sample(n=n, random_state=seed) if n < len(test) else test
    return {
        "roc": R.plot_roc(curves, folder / "roc.png"),
        "pr": R.plot_pr(curves, folder / "precision_recall.png"),
        "calibration": R.plot_calibration(curves, folder / "calibration.png"),
        "gains": R.plot_gains(curves, folder / "gains_lift.png"),
        "dist_test": R.plot_distributions(
            dataset.y("test"), proba["test"], "test", folder / "score_distribution_test.png"
        ),
        "dist_oot": R.plot_distributions(
            dataset.y("oot"), proba["oot"], "oot", folder / "score_distribution_oot.png"
        ),
        "importance": R.plot_importance(model.importance(), folder / "importance_gain.png"),
        "shap": R.plot_shap(model.contributions(sample), sample, folder / "shap_summary.png"),
    }


def _metric_rows(
    run_id: str, metrics: dict[str, dict[str, dict[str, float]]]
) -> list[dict[str, Any]]:
    rows = []
    for model_name, parts in metrics.items():
        for part, values in parts.items():
            for metric, value in values.items():
                rows.append(
                    {
                        "run_id": run_id,
                        "model": model_name,
                        "part": part,
                        "metric": metric,
                        "value": float(value) if value is not None else None,
                    }
                )
    return rows


def _flat_config(data: dict[str, Any], prefix: str = "cfg.") -> dict[str, str]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@dataclass
class GateOutcome(Summary):
    """Whether the new version passed the promotion gate, and why."""

    passed: bool
    reason: str


@dataclass
class TrainResult(Summary):
    """A trained, registered and gated model version, with its figures beside the oracle's."""

    run_id: str
    model: str
    version: str
    gold_version: str | None
    split: dict[str, str]  # part -> "rows, rate"
    embargoed_rows: int
    auc_vs_oracle: dict[str, dict[str, float | None]]  # part -> model, oracle, baseline AUC, ECE
    oot: dict[str, float | None]  # out-of-time AUC, oracle AUC, ECE, its noise, KS, Brier, PSI
    gate: GateOutcome
    alias: str
    training_status: str
    experiment: str
    policy: dict[str, float | None]  # threshold, no_assign_share
    best_iteration: int
    report: str
    seconds: float
    timings: dict[str, float]


STAGES = ("load_split", "fit_lightgbm", "fit_baseline", "evaluate", "pictures", "mlflow_log")


def train(settings: Any, tune_trials: int | None = None, ui: Any = None) -> TrainResult:
    """Train, evaluate, log, register and gate; returns the summary the CLI prints."""
    if ui is None:
        return _train(settings, tune_trials, None, None)
    total = len(STAGES) + 1 + (1 if tune_trials else 0)
    with ui.progress("train", total=total) as step:
        return _train(settings, tune_trials, ui, step)


class TrainingError(CobranzaError):
    """A training that failed after registering its version (which keeps no alias)."""


def _train(settings: Any, tune_trials: int | None, ui: Any, step: Any) -> TrainResult:
    from cobranza.ml import tracking

    lake = Lake(settings.lake).ensure()
    try:
        lock = tracking.TrainingLock(settings)
    except OSError as exc:
        raise TrainingError(
            f"train cannot start: its lock in {lake.metadata_dir / 'training'} cannot be written "
            f"({first_line(exc)}); is the lake read-only or full? Nothing was trained"
        ) from None
    try:
        return _train_locked(settings, tune_trials, ui, step, lock)
    finally:
        lock.release(remove=not lock.keep)


def _failed(
    settings: Any,
    lock: Any,
    version: str,
    run_id: str,
    gate: Any,
    stage: str,
    exc: BaseException,
) -> BaseException:
    """Mark the version failed (best effort) and build the one-line error; the alias never moved.

    An interrupt (Ctrl-C) is marked too and returned as is, for the caller to re-raise.
    """
    import mlflow

    from cobranza.ml import registry

    log.debug("train failed at %s", stage, exc_info=exc)
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        cause = "interrupted"
    else:
        cause = f"{type(exc).__name__}: {first_line(exc)}"
    reason = f"failed at {stage} ({cause})"
    problem = registry.mark_failed(settings, version, run_id, reason)
    lock.keep = problem is not None  # the listing then tells it was interrupted
    with contextlib.suppress(Exception):
        mlflow.MlflowClient(tracking_uri=settings.tracking_uri).set_tag(
            run_id, "training_status", "failed"
        )
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return exc
    champion = None
    with contextlib.suppress(Exception):
        champion = registry.champion_version(settings)
    if champion is None and gate is not None:
        champion = gate.champion_version
    keeps = f"the champion is still v{champion}" if champion else "there is no champion"
    tagged = (
        "is tagged training_status=failed"
        if problem is None
        else f"could not be tagged failed ({problem}), `cobranza models` lists it as interrupted"
    )
    return TrainingError(
        f"train {reason}: model version {version} is registered without an alias and {tagged}; "
        f"{keeps}, nothing was published. Fix the cause and run `cobranza train` again"
    )


def _flat_metrics(metrics: dict[str, dict[str, dict[str, float]]]) -> dict[str, float]:
    flat: dict[str, float] = {}
    for model_name, parts in metrics.items():
        prefix = "" if model_name == "lightgbm" else "baseline_"
        for part, values in parts.items():
            for metric, value in values.items():
                key = f"{prefix}{metric}" if part == "train_to_oot" else f"{prefix}{part}_{metric}"
                if value is not None and math.isfinite(value):
                    flat[key] = float(value)
    return flat


def _log_artifacts(
    folder: Path,
    dataset: Dataset,
    settings: Any,
    gold: dict[str, Any],
    split: dict[str, Any],
    metrics: dict[str, Any],
    proba: dict[str, np.ndarray],
    tuning: list[dict[str, Any]],
) -> None:
    """The run's JSON artifacts (`run/`), logged; the policy's folder is written by the caller."""
    import mlflow

    art = folder / "artifacts"
    art.mkdir()
    (art / "features.json").write_text(
        json.dumps({"features": dataset.features, "categorical": dataset.categorical}, indent=2)
    )
    (art / "config.json").write_text(json.dumps(settings.public_dict(), indent=2, default=str))
    (art / "gold_run.json").write_text(json.dumps(gold, indent=2, default=str))
    (art / "split.json").write_text(json.dumps(split, indent=2))
    (art / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    (art / "deciles.json").write_text(
        json.dumps(
            {p: M.deciles(dataset.y(p), proba[p]) for p in ("train", "test", "oot")},
            indent=2,
        )
    )
    if tuning:
        (art / "tuning.json").write_text(json.dumps(tuning, indent=2, default=str))
    mlflow.log_artifacts(str(art), "run")


def _report(
    folder: Path,
    version: str,
    run_id: str,
    gold: dict[str, Any],
    commit: str | None,
    seed: int,
    dataset: Dataset,
    model: SelfCureModel,
    psi: float,
    psi_base: float,
    gate: Any,
    metrics: dict[str, Any],
    split: dict[str, Any],
    pictures: dict[str, Path],
    proba: dict[str, np.ndarray],
    policy_dict: dict[str, Any],
) -> Path:
    from cobranza.ml import report as R

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
    return R.write_html(
        folder / "model_report.html",
        f"cobranza self-cure model v{version}",
        [
            (
                "Run",
                f"<p>run {run_id}; gold version {gold.get('version')}; git "
                f"{commit}; seed {seed}; OOT months {', '.join(dataset.oot_months)}; "
                f"best iteration {model.best_iteration_}; PSI train&rarr;OOT "
                f"{psi:.4f} (baseline {psi_base:.4f}).</p>",
            ),
            ("Gate", f"<p>{'PASSED' if gate.passed else 'FAILED'}: {gate.reason}</p>"),
            ("Metrics by part (LightGBM calibrated, oracle, baseline)", rows_table),
            ("ROC and precision-recall", (pictures["roc"], pictures["pr"])),
            ("Calibration", pictures["calibration"]),
            ("Cumulative gains and lift", pictures["gains"]),
            ("Lift by decile (OOT)", M.deciles(dataset.y("oot"), proba["oot"])),
            ("Score distributions", (pictures["dist_test"], pictures["dist_oot"])),
            ("Feature importance", (pictures["importance"], pictures["shap"])),
            ("Decision policy (fitted on test)", [policy_dict]),
        ],
    )


def _train_locked(
    settings: Any, tune_trials: int | None, ui: Any, step: Any, lock: Any
) -> TrainResult:
    import mlflow

    from cobranza.decision.policy import fit_policy
    from cobranza.ml import registry, tracking

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        if step is not None:
            step.advance()
            step.update(description=f"train: {name.replace('_', ' ')} done")
        return now

    info = ui.info if ui is not None else (lambda _msg: None)
    lake = Lake(settings.lake).ensure()
    seed = settings.seed

    t = time.perf_counter()
    dataset = load_dataset(lake, settings.oot_months, settings.test_share, seed)
    split = dataset.summary()
    info(
        "split: "
        + ", ".join(
            f"{p} {s['rows']:,} rows / {s['clients']:,} clients, rate {s['target_rate']:.3f}"
            for p, s in split.items()
        )
        + f"; oot months {', '.join(dataset.oot_months)}"
    )
    t = lap("load_split", t)

    tuning: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    if tune_trials:
        info(f"tuning LightGBM: {tune_trials} Optuna trials (TPE, seed {seed})")
        params, tuning = tune(dataset, tune_trials, seed)
        t = lap("tune", t)

    X_train, y_train = dataset.X("train"), dataset.y("train")
    X_valid, y_valid = dataset.X("valid"), dataset.y("valid")
    model = SelfCureModel(
        dataset.features, dataset.categorical, params=params, seed=seed, num_threads=NUM_THREADS
    ).fit(X_train, y_train, X_valid, y_valid)
    t = lap("fit_lightgbm", t)
    baseline = BaselineModel(dataset.features, dataset.categorical, seed=seed).fit(
        X_train, y_train, X_valid, y_valid
    )
    t = lap("fit_baseline", t)

    proba = {p: model.predict_proba(dataset.X(p))[:, 1] for p in PARTS}
    proba_base = {p: baseline.predict_proba(dataset.X(p))[:, 1] for p in PARTS}
    truth_file = truth_path(settings, lake)
    truth = attach_truth(dataset.frame, truth_file)
    metrics = {
        "lightgbm": evaluate_parts(dataset, proba, truth),
        "baseline": evaluate_parts(dataset, proba_base, None),
    }
    psi = M.psi(proba["train"], proba["oot"])
    ece_noise = M.ece_noise(proba["oot"], seed=seed)
    metrics["lightgbm"]["oot"]["ece_noise"] = ece_noise
    psi_base = M.psi(proba_base["train"], proba_base["oot"])
    metrics["lightgbm"]["train_to_oot"] = {"psi": psi}
    metrics["baseline"]["train_to_oot"] = {"psi": psi_base}
    t = lap("evaluate", t)

    test_rows = dataset.rows("test")
    amount = (
        test_rows["amount_past_due"].to_numpy(dtype=np.float64)
        if "amount_past_due" in test_rows
        else np.zeros(len(test_rows))
    )
    policy = fit_policy(
        proba["test"],
        dataset.y("test"),
        amount,
        settings.costs,
        cost_rule=settings.costs.cost_rule,
        min_threshold=settings.costs.min_probability,
    )
    policy_dict = policy.to_dict()

    client = tracking.configure(settings)
    gold = dataset.gold
    gold_inputs = gold.get("inputs", {})
    inputs_hash = hashlib.sha256(
        json.dumps(gold_inputs, sort_keys=True, default=str).encode()
    ).hexdigest()
    commit = tracking.git_commit()
    lgbm_params = model.lgbm_params()

    # From the registration on, a failure leaves the version without an alias, tagged failed.
    version: str | None = None
    gate: registry.GateResult | None = None
    withdraw: list[Path] = []
    stage = "log to MLflow"
    try:
        with tempfile.TemporaryDirectory(prefix="cobranza-train-") as tmp:
            folder = Path(tmp)
            (folder / "pictures").mkdir()
            pictures = _pictures(folder / "pictures", dataset, proba, model, seed)
            t = lap("pictures", t)

            run_name = f"train-{started.strftime('%Y%m%dT%H%M%S')}"
            with mlflow.start_run(run_name=run_name) as run:
                run_id = run.info.run_id
                experiment = client.get_experiment(run.info.experiment_id).name
                if experiment != settings.model_name:
                    info(
                        f"MLflow experiment {settings.model_name!r} keeps its artifacts outside "
                        f"this lake (moved or copied); this run logs to experiment {experiment!r} "
                        f"with its artifacts in {tracking.artifacts_dir(settings)}"
                    )
                lineage = {
                    "gold_version": gold.get("version") or "",
                    "gold_run_id": gold.get("run_id"),
                    "gold_inputs_sha256": inputs_hash,
                    "git_commit": commit or "unknown",
                }
                mlflow.set_tags(
                    {
                        **lineage,
                        "gold_inputs": json.dumps(gold_inputs, sort_keys=True, default=str)[:5000],
                        "truth_file": str(truth_file) if truth_file else "none",
                        "training_lock": lock.token,
                        "mlflow.note.content": "cobranza self-cure model (LightGBM, calibrated)",
                    }
                )
                run_params = {
                    **{f"lgbm.{k}": v for k, v in lgbm_params.items()},
                    "lgbm.best_iteration": model.best_iteration_,
                    "calibration": model.calibration,
                    "baseline.C": baseline.C,
                    "n_features": len(dataset.features),
                    "n_categorical": len(dataset.categorical),
                    "seed": seed,
                    "oot_months": settings.oot_months,
                    "oot_cut_months": ",".join(dataset.oot_months),
                    "test_share": settings.test_share,
                    "valid_share": VALID_SHARE,
                    "embargoed_rows": dataset.embargoed,
                    "tune_trials": tune_trials or 0,
                    "gold_version": gold.get("version"),
                    **{f"policy.{k}": v for k, v in policy_dict.items()},
                    **_flat_config(settings.public_dict()),
                }
                mlflow.log_params({k: str(v)[:6000] for k, v in run_params.items()})
                mlflow.log_metrics(_flat_metrics(metrics))
                _log_artifacts(folder, dataset, settings, gold, split, metrics, proba, tuning)
                (folder / "policy").mkdir()
                (folder / "policy" / "policy.json").write_text(json.dumps(policy_dict, indent=2))
                mlflow.log_artifacts(str(folder / "policy"), "policy")
                mlflow.log_artifacts(str(folder / "pictures"), "pictures")

                example = tracking.input_example(dataset.X("test").head(5), dataset.categorical)
                signature = tracking.model_signature(dataset.features, dataset.categorical)
                with tracking.silenced():
                    model_info = mlflow.pyfunc.log_model(
                        name="model",
                        python_model=tracking.SelfCurePyfunc(model),
                        signature=signature,
                        input_example=example,
                        pip_requirements=tracking.pip_requirements(),
                    )
                # the version and its lineage in one write: a registered version always
                # carries gold_version, whatever happens next
                stage = "register the model version"
                version = registry.register_version(
                    settings, model_info.model_uri, lineage, lock.token
                )
                t = lap("mlflow_log", t)

                stage = "apply the gate"
                gate_metrics = {
                    "oot_auc": metrics["lightgbm"]["oot"]["auc"],
                    "oot_ece": metrics["lightgbm"]["oot"]["ece"],
                    "oot_ece_noise": ece_noise,
                    "psi": psi,
                    "test_auc": metrics["lightgbm"]["test"]["auc"],
                    "oracle_oot_auc": metrics["lightgbm"]["oot"].get("oracle_auc", float("nan")),
                }
                gate = registry.gate_version(settings, version, run_id, gate_metrics)
                mlflow.set_tags(
                    {
                        "model_version": version,
                        "gate_passed": str(gate.passed).lower(),
                        "gate_reason": gate.reason,
                    }
                )

                stage = "write the model report"
                report = _report(
                    folder, version, run_id, gold, commit, seed, dataset, model, psi, psi_base,
                    gate, metrics, split, pictures, proba, policy_dict,
                )  # fmt: skip
                mlflow.log_artifact(str(report), "report")
                artifact_uri = run.info.artifact_uri
                stage = "end the MLflow run"

        seconds = round(time.perf_counter() - t0, 3)
        run_row = {
            "run_id": run_id,
            "model_name": settings.model_name,
            "model_version": version,
            "started_at": started.isoformat(),
            "seconds": seconds,
            "gold_version": gold.get("version"),
            "gold_run_id": gold.get("run_id"),
            "gold_inputs_sha256": inputs_hash,
            "git_commit": commit,
            "seed": seed,
            "tune_trials": tune_trials or 0,
            "best_iteration": model.best_iteration_,
            "n_features": len(dataset.features),
            "gate_passed": gate.passed,
            "gate_reason": gate.reason,
            "policy_threshold": policy_dict.get("threshold"),
            "params": json.dumps({k: str(v) for k, v in lgbm_params.items()}, sort_keys=True),
            **{f"{p}_rows": split[p]["rows"] for p in PARTS},
            "embargoed_rows": dataset.embargoed,
            **{f"{p}_target_rate": split[p]["target_rate"] for p in PARTS},
            "oot_auc": gate_metrics["oot_auc"],
            "oot_ece": gate_metrics["oot_ece"],
            "oot_ece_noise": ece_noise,
            "psi": psi,
            "experiment": experiment,
        }
        stage = "write the ml_metadata mirror"
        lake.write_metadata("model_runs", [run_row], run_id)
        lake.write_metadata("model_metrics", _metric_rows(run_id, metrics), run_id)
        withdraw = registry.record_gate_events(settings, version, run_id, gate)
        stage = "refresh the catalog"
        refresh_catalog(lake)
        # the very last step: the alias moves only once everything above is written
        stage = "move the alias"
        registry.publish_version(settings, version, gate)
    except BaseException as exc:
        if version is None:
            raise  # nothing was registered: nothing to mark
        if (
            stage == "move the alias"
            and gate is not None
            and registry.holds_its_alias(settings, version, gate)
        ):
            # stopped after the alias moved: the training is published, so it ends as such
            registry.mark_succeeded(settings, version)
            log.warning(
                "train was interrupted (%s) after its last step: version %s is published",
                type(exc).__name__,
                version,
            )
        else:
            registry._withdraw(withdraw)
            error = _failed(settings, lock, version, run_id, gate, stage, exc)
            if error is exc:
                raise
            raise error from exc
    t = lap("report_gate", t)

    lg, bl = metrics["lightgbm"], metrics["baseline"]
    side_by_side = {
        part: {
            "model_auc": _round(lg[part]["auc"]),
            "oracle_auc": _round(lg[part].get("oracle_auc", float("nan"))),
            "baseline_auc": _round(bl[part]["auc"]),
            "model_ece": _round(lg[part]["ece"]),
            "baseline_ece": _round(bl[part]["ece"]),
        }
        for part in ("train", "test", "oot")
    }
    return TrainResult(
        run_id=run_id,
        model=settings.model_name,
        version=version,
        gold_version=gold.get("version"),
        split={p: f"{s['rows']:,} rows, rate {s['target_rate']:.4f}" for p, s in split.items()},
        embargoed_rows=dataset.embargoed,
        auc_vs_oracle=side_by_side,
        oot={
            "auc": _round(lg["oot"]["auc"]),
            "oracle_auc": _round(lg["oot"].get("oracle_auc", float("nan"))),
            "ece": _round(lg["oot"]["ece"]),
            "ece_noise_p95": _round(ece_noise),
            "ks": _round(lg["oot"]["ks"]),
            "brier": _round(lg["oot"]["brier"]),
            "psi": _round(psi),
        },
        gate=GateOutcome(passed=gate.passed, reason=gate.reason),
        alias=gate.alias,
        training_status="succeeded",
        experiment=experiment,
        policy={
            "threshold": policy_dict.get("threshold"),
            "no_assign_share": _round(policy_dict.get("no_assign_share", float("nan"))),
        },
        best_iteration=model.best_iteration_,
        report=f"{artifact_uri}/report/model_report.html",
        seconds=seconds,
        timings=timings,
    )
