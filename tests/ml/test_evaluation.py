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


def test_intervals_of_the_model_against_the_oracle_the_baseline_and_its_calibration(fitted):
    dataset, models, truth = fitted
    out = evaluate(dataset, models.model, models.baseline, truth, seed=42)
    lg = out.metrics["lightgbm"]
    for part in EVAL_PARTS:
        gap = out.oracle_gap[part]
        auc = lg[part]["oof_auc"] if part == "train" else lg[part]["auc"]  # train: out of fold
        assert gap.estimate == pytest.approx(auc - lg[part]["oracle_auc"])
        assert gap.low <= gap.estimate <= gap.high
        assert lg[part]["auc_minus_oracle_low"] == gap.low
    assert lg["train"]["oof_auc"] < lg["train"]["auc"]  # in sample, the trees fitted the labels
    assert out.leak_alarms() == []  # an honest model beats the truth on no part, train included
    base = out.baseline_gap
    assert base.estimate == pytest.approx(lg["oot"]["auc"] - out.metrics["baseline"]["oot"]["auc"])
    assert base.low <= base.estimate <= base.high and base.resamples == 2000
    cal = out.calibration
    assert cal.part == "oot" and cal.ece.estimate == pytest.approx(lg["oot"]["ece"])
    assert cal.oracle_ece.estimate == pytest.approx(lg["oot"]["oracle_ece"])
    assert cal.recalibration.slope > 0 and lg["oot"]["calibration_slope"] == cal.recalibration.slope
    products = cal.groups["product"]
    assert sum(g.rows for g in products) == len(dataset.rows("oot"))
    assert {g.group for g in products} == set(dataset.rows("oot")["product"])
    assert {g.group for g in cal.groups["segment"]} == set(dataset.rows("oot")["segment"])
    assert all(g.oracle_mean_p is not None for g in products)
    summary = out.uncertainty()
    assert summary["calibration_oot"]["by_product"][0]["rows"] == products[0].rows
    assert summary["lightgbm_minus_baseline_oot_auc"]["low"] == base.low


def test_without_truth_there_is_no_leak_check_and_no_oracle_calibration(fitted):
    dataset, models, _ = fitted
    out = evaluate(dataset, models.model, models.baseline, None, seed=42)
    assert out.oracle_gap == {} and out.leak_alarms() == []
    assert out.calibration.oracle_ece is None
    assert out.calibration.groups["product"][0].oracle_mean_p is None


def test_a_model_ranking_better_than_the_truth_raises_the_leak_alarm_naming_the_part(fitted):
    dataset, models, truth = fitted
    out = evaluate(dataset, models.model, models.baseline, truth, seed=42)
    # the labels themselves, lightly blurred, as the model's scores on the out-of-time part
    from cobranza.ml.data import attach_truth
    from cobranza.ml.evaluation import oracle_gaps, out_of_fold

    y = dataset.y("oot")
    oof = out_of_fold(models.model, dataset, seed=42)  # train's leak check reads out of fold
    leaked = dict(out.proba, train=oof, oot=0.1 + 0.8 * y + np.linspace(0, 0.05, len(y)))

    gaps = oracle_gaps(dataset, leaked, attach_truth(dataset.frame, truth), seed=42)
    assert gaps["oot"].low > 0 and not gaps["test"].excludes_zero_above
    out.oracle_gap = gaps
    out.metrics["lightgbm"]["oot"]["auc"] = 1.0
    (alarm,) = out.leak_alarms()
    assert alarm.startswith("on oot the model's AUC 1.0000 exceeds the oracle's ")
    assert "model - oracle +" in alarm and "95% CI" in alarm


def test_out_of_fold_train_scores_come_from_models_that_never_saw_the_client(fitted):
    """Each train row is scored by a copy fitted on the other fold's clients only: every row is
    scored, not as in sample, and the same seed gives the same scores."""
    from cobranza.ml.evaluation import observed_arm, out_of_fold

    dataset, models, _ = fitted
    oof = out_of_fold(models.model, dataset, seed=42)
    in_sample = models.model.predict_proba(observed_arm(models.model, dataset, "train"))[:, 1]
    assert len(oof) == len(in_sample) and np.isfinite(oof).all()
    assert not np.allclose(oof, in_sample)
    again = out_of_fold(models.model, dataset, seed=42)
    assert np.array_equal(oof, again)  # seeded folds, deterministic LightGBM
