"""Evaluation of a fitted model: every metric on every part, the oracle beside it only with the
simulator's truth, and the figures the gate and the summary read."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cobranza.ml.data import load_dataset
from cobranza.ml.evaluation import EVAL_PARTS, evaluate, flat_metrics, metric_rows, round_metric
from cobranza.ml.training import fit
from tests.ml.conftest import make_lake

METRICS = ("auc", "gini", "ks", "pr_auc", "brier", "log_loss", "ece")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, gold_frame):
    lake, truth = make_lake(tmp_path_factory.mktemp("ml-evaluation"), gold_frame)
    dataset = load_dataset(lake, 3, 0.25, 42)
    return dataset, fit(dataset, seed=42), truth


def test_every_part_has_every_metric_for_both_models_and_the_oracle_with_truth(fitted):
    dataset, models, truth = fitted
    out = evaluate(dataset, models.model, models.baseline, truth, seed=42)
    for model in ("lightgbm", "baseline"):
        for part in EVAL_PARTS:
            assert set(METRICS) <= set(out.metrics[model][part])
    for part in EVAL_PARTS:  # the truth is the oracle's on the model's rows, never the baseline's
        assert 0.5 < out.metrics["lightgbm"][part]["oracle_auc"] <= 1
        assert out.metrics["lightgbm"][part]["oracle_coverage"] == 1.0
        assert "oracle_auc" not in out.metrics["baseline"][part]
    assert out.metrics["lightgbm"]["train_to_oot"] == {"psi": out.psi}
    assert out.metrics["lightgbm"]["oot"]["ece_noise"] == out.ece_noise > 0
    assert {p: len(v) for p, v in out.proba.items()} == {p: len(dataset.rows(p)) for p in out.proba}


def test_without_truth_there_is_no_oracle_figure(fitted):
    dataset, models, _ = fitted
    out = evaluate(dataset, models.model, models.baseline, None, seed=42)
    assert all("oracle_auc" not in out.metrics["lightgbm"][p] for p in EVAL_PARTS)
    assert math.isnan(out.gate_metrics()["oracle_oot_auc"])
    assert out.side_by_side()["oot"]["oracle_auc"] is None
    assert out.out_of_time()["oracle_auc"] is None


def test_the_gate_reads_the_out_of_time_figures_and_the_summary_rounds_them(fitted):
    dataset, models, truth = fitted
    out = evaluate(dataset, models.model, models.baseline, truth, seed=42)
    lg = out.metrics["lightgbm"]
    assert out.gate_metrics() == {
        "oot_auc": lg["oot"]["auc"],
        "oot_ece": lg["oot"]["ece"],
        "oot_ece_noise": out.ece_noise,
        "psi": out.psi,
        "test_auc": lg["test"]["auc"],
        "oracle_oot_auc": lg["oot"]["oracle_auc"],
    }
    assert out.out_of_time()["auc"] == round(lg["oot"]["auc"], 4)
    assert out.side_by_side()["test"]["baseline_auc"] == round(
        out.metrics["baseline"]["test"]["auc"], 4
    )
    assert round_metric(float("nan")) is None and round_metric(None) is None


def test_logged_and_mirrored_metrics_name_each_model_part_and_metric(fitted):
    dataset, models, truth = fitted
    out = evaluate(dataset, models.model, models.baseline, truth, seed=42)
    flat = flat_metrics(out.metrics)
    assert flat["oot_auc"] == out.metrics["lightgbm"]["oot"]["auc"]
    assert flat["baseline_oot_auc"] == out.metrics["baseline"]["oot"]["auc"]
    assert flat["psi"] == out.psi and flat["baseline_psi"] == out.psi_baseline
    assert all(np.isfinite(v) for v in flat.values())
    rows = metric_rows("r1", out.metrics)
    assert {(r["model"], r["part"], r["metric"]) for r in rows} >= {
        ("lightgbm", "oot", "auc"),
        ("baseline", "test", "ece"),
        ("lightgbm", "train_to_oot", "psi"),
    }
    assert all(r["run_id"] == "r1" for r in rows)
