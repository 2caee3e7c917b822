"""Evaluation of a fitted model and its baseline: metrics per part beside the oracle's, score PSI.

Per part (train, valid, test, oot) and model: AUC, Gini, KS, PR-AUC, Brier, log loss, ECE (see
`metrics.evaluate`); with the simulator's truth each part also carries the oracle's AUC and ECE on
the same rows (the ceiling on that data). Out of time, the ECE a perfectly calibrated model shows
on that many rows by chance (`ece_noise`, what the gate allows) and the score PSI train -> OOT.

With uncertainty (`ml.stats`, seeded bootstrap on the part's rows):
- per part with the truth, the paired interval of the model's AUC minus the oracle's: a lower
  bound above 0 means the model ranks better than the probabilities that drew the labels, which
  only a leak (a label or the future among the features) can do (`leak_alarms`, which training
  turns into a failure). Every part alarms (`LEAK_PARTS`). On train, in-sample fit alone beats
  the truth on small data, so its interval is measured on out-of-fold probabilities
  (`out_of_fold`: two folds by client, each scored by a copy of the model fitted on the other
  fold, with at most the model's own number of trees); the in-sample train metrics stay as they
  are, beside `oof_auc`;
- out of time, LightGBM's AUC minus the baseline's on the same rows, with its interval;
- out of time, the calibration report: slope and intercept, the ECE with its interval beside the
  oracle's on the same rows, and the calibration by product and by segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from cobranza.ml import metrics as M
from cobranza.ml import stats as S
from cobranza.ml.data import PARTS, Dataset, attach_truth, client_fraction
from cobranza.ml.model import BaselineModel, SelfCureModel

EVAL_PARTS = ("train", "valid", "test", "oot")
SIDE_BY_SIDE_PARTS = ("train", "test", "oot")
GROUPS = ("product", "segment")  # the calibration report's breakdowns
LEAK_PARTS = ("train", "valid", "test", "oot")  # train on out-of-fold probabilities
LEAK_RESAMPLES = 1000  # per part, the train part included: enough for a 95% bound

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
    oracle_gap: dict[str, S.Interval] = field(default_factory=dict)  # part -> model - oracle AUC
    baseline_gap: S.Interval | None = None  # out of time: LightGBM's AUC - the baseline's
    calibration: CalibrationReport | None = None  # out of time

    def leak_alarms(self) -> list[str]:
        """One sentence per part where the model's AUC beats the oracle's beyond chance."""
        lg = self.metrics["lightgbm"]
        alarms = []
        for part, gap in self.oracle_gap.items():
            if part not in LEAK_PARTS or not gap.excludes_zero_above:
                continue
            where, auc = f"on {part}", lg[part]["auc"]
            if part == "train" and "oof_auc" in lg[part]:
                where, auc = "on train (out of fold)", lg[part]["oof_auc"]
            alarms.append(
                f"{where} the model's AUC {auc:.4f} exceeds the oracle's "
                f"{lg[part]['oracle_auc']:.4f} beyond chance (model - oracle {gap.text()})"
            )
        return alarms

    def uncertainty(self) -> dict[str, Any]:
        """The intervals, for the summary and the report: LightGBM vs the baseline and vs the
        oracle, and the out-of-time calibration."""
        return {
            "lightgbm_minus_baseline_oot_auc": (
                self.baseline_gap.to_dict() if self.baseline_gap else None
            ),
            "lightgbm_minus_oracle_auc": {p: g.to_dict() for p, g in self.oracle_gap.items()},
            "calibration_oot": self.calibration.to_dict() if self.calibration else None,
        }

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


@dataclass(frozen=True)
class CalibrationReport:
    """Calibration of one part: recalibration slope and intercept, ECE with its interval beside
    the oracle's on the rows where the truth is known, and by product and segment."""

    part: str
    recalibration: S.Recalibration
    ece: S.Interval
    oracle_ece: S.Interval | None
    groups: dict[str, list[S.GroupCalibration]]  # product / segment -> one entry per value

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            **self.recalibration.to_dict(),
            "ece": self.ece.to_dict(),
            "oracle_ece": self.oracle_ece.to_dict() if self.oracle_ece else None,
            **{f"by_{k}": [g.to_dict() for g in v] for k, v in self.groups.items()},
        }

    def metrics(self) -> dict[str, float]:
        """The figures logged as metrics of the part (the groups go to an artifact)."""
        out = {
            "calibration_slope": self.recalibration.slope,
            "calibration_intercept": self.recalibration.intercept,
            "ece_low": self.ece.low,
            "ece_high": self.ece.high,
        }
        if self.oracle_ece is not None:
            out |= {"oracle_ece_low": self.oracle_ece.low, "oracle_ece_high": self.oracle_ece.high}
        return out


def calibration_report(
    dataset: Dataset, part: str, p: np.ndarray, truth: np.ndarray | None, seed: int
) -> CalibrationReport:
    """The calibration report of `part` (see `CalibrationReport`)."""
    y, rows = dataset.y(part), dataset.rows(part)
    p_true = truth[dataset.part == part] if truth is not None else None
    oracle = None
    if p_true is not None and np.isfinite(p_true).any():
        known = np.isfinite(p_true)
        oracle = S.ece_interval(y[known], p_true[known], seed=seed)
    groups = {
        g: S.calibration_by_group(y, p, rows[g].to_numpy(dtype=object), p_true)
        for g in GROUPS
        if g in rows
    }
    return CalibrationReport(
        part=part,
        recalibration=S.calibration_slope_intercept(y, p),
        ece=S.ece_interval(y, p, seed=seed),
        oracle_ece=oracle,
        groups=groups,
    )


def oracle_gaps(
    dataset: Dataset, proba: dict[str, np.ndarray], truth: np.ndarray, seed: int
) -> dict[str, S.Interval]:
    """Per part, the model's AUC minus the oracle's on the rows where the truth is known."""
    out = {}
    for part in EVAL_PARTS:
        p_true = truth[dataset.part == part]
        known = np.isfinite(p_true) & np.isfinite(proba[part])
        y = dataset.y(part)[known]
        if known.any() and len(np.unique(y)) == 2:
            out[part] = S.auc_difference(
                y, proba[part][known], p_true[known], resamples=LEAK_RESAMPLES, seed=seed
            )
    return out


def out_of_fold(model: SelfCureModel, dataset: Dataset, seed: int) -> np.ndarray:
    """The train part's probabilities, each row's from a copy of `model` that never saw its
    client: two folds by a seeded hash of client_key, each copy (same parameters, treatment and
    offset) fitted on the other fold's train rows with at most `model`'s own number of trees,
    early-stopped and calibrated on valid, and predicted in the arm the row was in. NaN where a
    fold could not be fitted (one class only)."""
    X, y = observed_arm(model, dataset, "train"), dataset.y("train")
    X_valid, y_valid = observed_arm(model, dataset, "valid"), dataset.y("valid")
    fold = client_fraction(dataset.rows("train")["client_key"], seed, "leak") < 0.5
    out = np.full(len(y), np.nan)
    trees = max(int(getattr(model, "best_iteration_", 1)), 1)
    for side in (True, False):
        fit_rows, rows = fold != side, fold == side
        if not rows.any() or len(np.unique(y[fit_rows])) < 2:
            continue
        copy = clone(model).set_params(num_boost_round=trees)
        copy.fit(X[fit_rows], y[fit_rows], X_valid, y_valid, offset=model.offset_)
        out[rows] = copy.predict_proba(X[rows])[:, 1]
    return out


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
    gaps = {}
    if truth is not None:
        oof = out_of_fold(model, dataset, seed)
        scored = np.isfinite(oof)
        metrics["lightgbm"]["train"]["oof_auc"] = M.auc(dataset.y("train")[scored], oof[scored])
        gaps = oracle_gaps(dataset, {**proba, "train": oof}, truth, seed)
    for part, gap in gaps.items():
        metrics["lightgbm"][part] |= {
            "auc_minus_oracle_low": gap.low,
            "auc_minus_oracle_high": gap.high,
        }
    y_oot = dataset.y("oot")
    baseline_gap = S.auc_difference(y_oot, proba["oot"], proba_base["oot"], seed=seed)
    calibration = calibration_report(dataset, "oot", proba["oot"], truth, seed)
    metrics["lightgbm"]["oot"] |= {
        "auc_minus_baseline": baseline_gap.estimate,
        "auc_minus_baseline_low": baseline_gap.low,
        "auc_minus_baseline_high": baseline_gap.high,
        **calibration.metrics(),
    }
    return Evaluation(
        proba, metrics, psi, psi_base, ece_noise, truth_file, gaps, baseline_gap, calibration
    )


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
