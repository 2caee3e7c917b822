"""What a training writes to its MLflow run: lineage tags, parameters, metrics, artifacts, the
pictures, the decision policy and the calibrated model as a pyfunc with an explicit signature.

`log_run` runs inside an active run (`mlflow.start_run`); the run's artifacts are what scoring
reads back (`policy/policy.json`, the model) and what a person opens (`report/`, `pictures/`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
from mlflow.tracking import MlflowClient

from cobranza.config import Settings
from cobranza.decision.policy import Policy
from cobranza.ml import metrics as M
from cobranza.ml import tracking
from cobranza.ml.data import VALID_SHARE, Dataset
from cobranza.ml.evaluation import Evaluation, flat_metrics
from cobranza.ml.fitting import effect_of, effect_warning
from cobranza.ml.lineage import Lineage
from cobranza.ml.model import Fitted
from cobranza.transforms.schema import GOLD_TABLE, TARGET


@dataclass
class LoggedRun:
    run_id: str
    experiment: str
    model_uri: str


def _run_params(
    settings: Settings,
    dataset: Dataset,
    fitted: Fitted,
    policy: dict[str, Any],
    tune_trials: int | None,
) -> dict[str, Any]:
    model = fitted.model
    return {
        **{f"lgbm.{k}": v for k, v in model.lgbm_params().items()},
        "lgbm.best_iteration": model.best_iteration_,
        "calibration": model.calibration,
        "baseline.C": fitted.baseline.C,
        "n_features": len(dataset.features),
        "n_categorical": len(dataset.categorical),
        "seed": settings.seed,
        "oot_months": settings.oot_months,
        "oot_cut_months": ",".join(dataset.oot_months),
        "test_share": settings.test_share,
        "valid_share": VALID_SHARE,
        "embargoed_rows": dataset.embargoed,
        "tune_trials": tune_trials or 0,
        "gold_version": dataset.gold.get("version"),
        **{f"policy.{k}": v for k, v in policy.items()},
        **_flat_config(settings.public_dict()),
    }


def _flat_config(data: dict[str, Any], prefix: str = "cfg.") -> dict[str, str]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


def _log_artifacts(
    folder: Path, settings: Settings, dataset: Dataset, evaluation: Evaluation, tuning: list
) -> None:
    """The run's JSON artifacts (`run/`), logged."""
    art = folder / "artifacts"
    art.mkdir()
    proba = evaluation.proba
    (art / "features.json").write_text(
        json.dumps({"features": dataset.features, "categorical": dataset.categorical}, indent=2)
    )
    (art / "config.json").write_text(json.dumps(settings.public_dict(), indent=2, default=str))
    (art / "gold_run.json").write_text(json.dumps(dataset.gold, indent=2, default=str))
    (art / "split.json").write_text(json.dumps(dataset.summary(), indent=2))
    (art / "metrics.json").write_text(json.dumps(evaluation.metrics, indent=2, default=str))
    # 95% intervals: LightGBM - baseline and - oracle AUC, the OOT calibration by product/segment
    (art / "intervals.json").write_text(json.dumps(evaluation.uncertainty(), indent=2))
    (art / "deciles.json").write_text(
        json.dumps(
            {p: M.deciles(dataset.y(p), proba[p]) for p in ("train", "test", "oot")},
            indent=2,
        )
    )
    if tuning:
        (art / "tuning.json").write_text(json.dumps(tuning, indent=2, default=str))
    mlflow.log_artifacts(str(art), "run")


def _log_causal(folder: Path, fitted: Fitted) -> None:
    """The causal candidates out of time on the randomized rows (`ml.causal`): artifact and
    metrics (log loss per candidate, Qini coefficient, mean predicted and observed effect)."""
    data = fitted.causal.to_dict()
    (folder / "causal").mkdir()
    (folder / "causal" / "causal.json").write_text(json.dumps(data, indent=2, default=str))
    mlflow.log_artifacts(str(folder / "causal"), "causal")
    metrics = {
        f"causal.{kind}.{name}.oot_log_loss": scores["log_loss"]
        for kind in ("self_cure", "roll")
        for name, scores in data[kind]["candidates"].items()
        if scores.get("log_loss") is not None
    }
    for key in ("mean_predicted_effect", "observed_effect"):
        if data.get(key) is not None:
            metrics[f"causal.roll.{key}"] = data[key]
    if data["qini"].get("qini_coefficient") is not None:
        metrics["causal.roll.qini_coefficient"] = data["qini"]["qini_coefficient"]
    effect = effect_of(fitted.roll)
    for bound in ("low", "high"):
        value = effect[f"effect_{bound}"]
        if value is not None and math.isfinite(value):
            metrics[f"causal.roll.effect_{bound}"] = value
    mlflow.log_metrics(metrics)
    roll = getattr(fitted.roll, "effect_", None)
    mlflow.log_params(
        {
            "causal.self_cure_method": data["self_cure"]["method"],
            "causal.roll_method": data["roll"]["method"],
            "causal.roll_log_odds_effect": roll if roll is not None else "n/a",
            "causal.roll_effect_identified": effect["effect_identified"],
        }
    )
    warning = effect_warning(fitted.roll)
    mlflow.set_tags(
        {"effect_identified": str(effect["effect_identified"]).lower()}
        | ({"effect_warning": warning} if warning else {})
    )


def log_dataset(dataset: Dataset) -> None:
    """The labeled rows the model was trained and evaluated on, as the run's MLflow dataset
    input: schema, row count and a digest of the content, never the rows themselves (gold holds
    pseudonyms only: no personal data)."""
    version = dataset.gold.get("version")
    with tracking.silenced():  # MLflow warns that a plain source string is ambiguous
        data = mlflow.data.from_pandas(
            dataset.frame,
            source=f"gold.{GOLD_TABLE}@{version}",
            targets=TARGET,
            name=f"{GOLD_TABLE}@{version}",
        )
        mlflow.log_input(data, context="training")


def log_run(
    settings: Settings,
    client: MlflowClient,
    run: mlflow.ActiveRun,
    folder: Path,
    dataset: Dataset,
    fitted: Fitted,
    evaluation: Evaluation,
    policy: Policy,
    lineage: Lineage,
    lock_token: str,
    tune_trials: int | None,
    info: Callable[[str], None],
) -> LoggedRun:
    """Everything of the training in the active MLflow run: tags (lineage), params, metrics,
    artifacts, pictures (already drawn in `folder/pictures`), policy and the pyfunc model."""
    experiment = client.get_experiment(run.info.experiment_id).name
    if experiment != settings.model_name:
        info(
            f"MLflow experiment {settings.model_name!r} keeps its artifacts outside "
            f"this lake (moved or copied); this run logs to experiment {experiment!r} "
            f"with its artifacts in {tracking.artifacts_dir(settings)}"
        )
    mlflow.set_tags(
        {
            **lineage.tags(),
            "gold_inputs": json.dumps(lineage.gold_inputs, sort_keys=True, default=str)[:5000],
            "truth_file": str(evaluation.truth_file) if evaluation.truth_file else "none",
            "training_lock": lock_token,
            "mlflow.note.content": "cobranza self-cure model (LightGBM, calibrated)",
        }
    )
    policy_dict = policy.to_dict()
    run_params = _run_params(settings, dataset, fitted, policy_dict, tune_trials)
    mlflow.log_params({k: str(v)[:6000] for k, v in run_params.items()})
    mlflow.log_metrics(flat_metrics(evaluation.metrics))
    log_dataset(dataset)
    _log_artifacts(folder, settings, dataset, evaluation, fitted.tuning)
    (folder / "policy").mkdir()
    (folder / "policy" / "policy.json").write_text(json.dumps(policy_dict, indent=2))
    mlflow.log_artifacts(str(folder / "policy"), "policy")
    if fitted.causal is not None:
        _log_causal(folder, fitted)
    mlflow.log_artifacts(str(folder / "pictures"), "pictures")
    example = tracking.input_example(dataset.X("test").head(5), dataset.categorical)
    signature = tracking.model_signature(dataset.features, dataset.categorical)
    with tracking.silenced():
        model_info = mlflow.pyfunc.log_model(
            name="model",
            python_model=tracking.SelfCurePyfunc(fitted.model, fitted.roll, fitted.naive),
            signature=signature,
            input_example=example,
            pip_requirements=tracking.pip_requirements(),
        )
    return LoggedRun(run.info.run_id, experiment, model_info.model_uri)
