"""Evaluation of a fitted model and its baseline: metrics per part beside the oracle's, score PSI.

Per part (train, valid, test, oot) and model: AUC, Gini, KS, PR-AUC, Brier, log loss, ECE (see
`metrics.evaluate`); with the simulator's truth each part also carries the oracle's AUC and ECE on
the same rows (the ceiling on that data). Out of time, the ECE a perfectly calibrated model shows
on that many rows by chance (`ece_noise`, what the gate allows) and the score PSI train -> OOT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cobranza.ml import metrics as M
from cobranza.ml.data import PARTS, Dataset, attach_truth
from cobranza.ml.model import BaselineModel, SelfCureModel

EVAL_PARTS = ("train", "valid", "test", "oot")
SIDE_BY_SIDE_PARTS = ("train", "test", "oot")

Metrics = dict[str, dict[str, dict[str, float]]]  # model (lightgbm, baseline) -> part -> metric


def round_metric(value: float | None, digits: int = 4) -> float | None:
    """A metric for a summary: rounded, None when missing or not finite."""
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


@dataclass
class Evaluation:
    """Calibrated probabilities of both models on every part, and their metrics."""

    proba: dict[str, np.ndarray]  # part -> LightGBM's probabilities
    metrics: Metrics
    psi: float  # LightGBM's score PSI, train -> oot
    psi_baseline: float
    ece_noise: float  # 95th percentile of a calibrated model's out-of-time ECE on these rows
    truth_file: Path | None

    def gate_metrics(self) -> dict[str, float]:
        """What the promotion gate decides on (and the registry records as tags)."""
        lg = self.metrics["lightgbm"]
        return {
            "oot_auc": lg["oot"]["auc"],
            "oot_ece": lg["oot"]["ece"],
            "oot_ece_noise": self.ece_noise,
            "psi": self.psi,
            "test_auc": lg["test"]["auc"],
            "oracle_oot_auc": lg["oot"].get("oracle_auc", float("nan")),
        }

    def side_by_side(self) -> dict[str, dict[str, float | None]]:
        """AUC and ECE of the model, the oracle and the baseline per part, for people."""
        lg, bl = self.metrics["lightgbm"], self.metrics["baseline"]
        return {
            part: {
                "model_auc": round_metric(lg[part]["auc"]),
                "oracle_auc": round_metric(lg[part].get("oracle_auc", float("nan"))),
                "baseline_auc": round_metric(bl[part]["auc"]),
                "model_ece": round_metric(lg[part]["ece"]),
                "baseline_ece": round_metric(bl[part]["ece"]),
            }
            for part in SIDE_BY_SIDE_PARTS
        }

    def out_of_time(self) -> dict[str, float | None]:
        """The out-of-time figures a person checks first."""
        oot = self.metrics["lightgbm"]["oot"]
        return {
            "auc": round_metric(oot["auc"]),
            "oracle_auc": round_metric(oot.get("oracle_auc", float("nan"))),
            "ece": round_metric(oot["ece"]),
            "ece_noise_p95": round_metric(self.ece_noise),
            "ks": round_metric(oot["ks"]),
            "brier": round_metric(oot["brier"]),
            "psi": round_metric(self.psi),
        }


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


def observed_arm(model: SelfCureModel, dataset: Dataset, part: str):
    """The part's features, with the arm each row was actually in for a causal model: its
    metrics, like the oracle's `p_true`, are about what happened."""
    X = dataset.X(part)
    treatment = getattr(getattr(model, "encoder_", None), "treatment_", None)
    return X.assign(**{treatment: dataset.managed(part)}) if treatment else X


def evaluate(
    dataset: Dataset,
    model: SelfCureModel,
    baseline: BaselineModel,
    truth_file: Path | None,
    seed: int,
) -> Evaluation:
    """Both models on every part; the oracle beside them when `truth_file` is given."""
    proba = {p: model.predict_proba(observed_arm(model, dataset, p))[:, 1] for p in PARTS}
    proba_base = {p: baseline.predict_proba(dataset.X(p))[:, 1] for p in PARTS}
    truth = attach_truth(dataset.frame, truth_file)
    metrics: Metrics = {
        "lightgbm": evaluate_parts(dataset, proba, truth),
        "baseline": evaluate_parts(dataset, proba_base, None),
    }
    psi = M.psi(proba["train"], proba["oot"])
    ece_noise = M.ece_noise(proba["oot"], seed=seed)
    metrics["lightgbm"]["oot"]["ece_noise"] = ece_noise
    psi_base = M.psi(proba_base["train"], proba_base["oot"])
    metrics["lightgbm"]["train_to_oot"] = {"psi": psi}
    metrics["baseline"]["train_to_oot"] = {"psi": psi_base}
    return Evaluation(proba, metrics, psi, psi_base, ece_noise, truth_file)


def metric_rows(run_id: str, metrics: Metrics) -> list[dict[str, Any]]:
    """The rows of `ml_metadata.model_metrics`: one per model, part and metric."""
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


def flat_metrics(metrics: Metrics) -> dict[str, float]:
    """The metrics as MLflow logs them: `<part>_<metric>`, the baseline's prefixed `baseline_`."""
    flat: dict[str, float] = {}
    for model_name, parts in metrics.items():
        prefix = "" if model_name == "lightgbm" else "baseline_"
        for part, values in parts.items():
            for metric, value in values.items():
                key = f"{prefix}{metric}" if part == "train_to_oot" else f"{prefix}{part}_{metric}"
                if value is not None and math.isfinite(value):
                    flat[key] = float(value)
    return flat
