"""Intervals and calibration figures against values that must hold exactly on hand-built data."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cobranza.ml import metrics as M
from cobranza.ml import stats as S


def calibrated(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    return (rng.random(n) < p).astype(np.int64), p


def test_weighted_auc_with_unit_counts_is_the_auc_with_ties_counted_half():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.4, 0.8, 0.8, 0.2])
    assert S.weighted_auc(y, p, np.ones(6))[0] == pytest.approx(roc_auc_score(y, p))


def test_weighted_auc_equals_the_auc_of_the_rows_repeated_by_their_counts():
    y = np.array([0, 0, 1, 1, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.4, 0.8, 0.8, 0.2, 0.9])
    counts = np.array([2, 0, 1, 3, 1, 0, 2])
    repeated = np.repeat(np.arange(7), counts)
    expected = roc_auc_score(y[repeated], p[repeated])
    assert S.weighted_auc(y, p, counts)[0] == pytest.approx(expected)


def test_bootstrap_counts_draw_n_rows_per_resample_and_are_seeded():
    blocks = list(S.bootstrap_counts(50, 7, seed=1))
    counts = np.vstack(blocks)
    assert counts.shape == (7, 50)
    assert (counts.sum(axis=1) == 50).all()
    assert np.array_equal(counts, np.vstack(list(S.bootstrap_counts(50, 7, seed=1))))
    assert not np.array_equal(counts, np.vstack(list(S.bootstrap_counts(50, 7, seed=2))))


def test_identical_scores_give_a_zero_width_auc_difference():
    y, p = calibrated(500)
    iv = S.auc_difference(y, p, p.copy(), resamples=300, seed=0)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)
    assert not iv.excludes_zero_above


def test_auc_difference_estimate_is_the_sample_difference_and_a_clear_gain_excludes_zero():
    y, p = calibrated(2000)
    noisy = p + np.random.default_rng(9).normal(0, 0.5, len(p))
    iv = S.auc_difference(y, p, noisy, resamples=500, seed=0)
    assert iv.estimate == pytest.approx(roc_auc_score(y, p) - roc_auc_score(y, noisy))
    assert iv.low > 0 and iv.low < iv.estimate < iv.high
    assert iv.excludes_zero_above
    reverse = S.auc_difference(y, noisy, p, resamples=500, seed=0)
    assert reverse.high == pytest.approx(-iv.low) and reverse.low == pytest.approx(-iv.high)


def test_delong_agrees_with_the_paired_bootstrap_and_is_zero_for_identical_scores():
    y, p = calibrated(3000)
    noisy = p + np.random.default_rng(9).normal(0, 0.3, len(p))
    boot = S.auc_difference(y, p, noisy, resamples=1000, seed=0)
    delong = S.delong_auc_difference(y, p, noisy)
    assert delong.estimate == pytest.approx(boot.estimate)
    assert delong.low == pytest.approx(boot.low, abs=0.004)
    assert delong.high == pytest.approx(boot.high, abs=0.004)
    same = S.delong_auc_difference(y, p, p)
    assert (same.low, same.high) == (0.0, 0.0)


def test_ece_interval_estimate_is_metrics_ece_and_covers_it():
    y, p = calibrated(1500)
    iv = S.ece_interval(y, p, resamples=400, seed=0)
    assert iv.estimate == pytest.approx(M.ece(y, p))
    assert 0 <= iv.low <= iv.high
    assert iv.high > iv.estimate


def test_ece_with_counts_is_the_ece_of_the_rows_repeated_by_their_counts():
    y, p = calibrated(40)
    counts = np.vstack(list(S.bootstrap_counts(40, 3, seed=5)))
    got = S.weighted_ece(y, p)(counts)
    for row, value in zip(counts.astype(np.int64), got, strict=True):
        repeated = np.repeat(np.arange(40), row)
        assert value == pytest.approx(M.ece(y[repeated], p[repeated]))


def test_the_ece_interval_is_centred_on_the_estimate_despite_the_upward_bias_of_resamples():
    y, p = calibrated(3000)
    estimate, values = S.resampled(3000, S.weighted_ece(y, p), 400, 0)
    assert values.mean() > estimate  # resampling adds noise to every bin's gap
    iv = S.ece_interval(y, p, resamples=400, seed=0)
    assert iv.low <= iv.estimate <= iv.high
    one = S.ece_interval(y, p, resamples=1, seed=0)  # one resample: no spread left
    assert one.low == pytest.approx(one.estimate) and one.high == pytest.approx(one.estimate)


def test_perfectly_calibrated_scores_have_slope_one_and_intercept_zero():
    y, p = calibrated(200_000)
    fit = S.calibration_slope_intercept(y, p)
    assert fit.slope == pytest.approx(1.0, abs=0.03)
    assert fit.intercept == pytest.approx(0.0, abs=0.03)
    assert fit.rows == 200_000


def test_overconfident_scores_have_slope_below_one_and_too_low_scores_a_positive_intercept():
    y, p = calibrated(100_000)
    sharp = 1 / (1 + np.exp(-2 * S.logit(p)))  # logit doubled: slope 1/2
    assert S.calibration_slope_intercept(y, sharp).slope == pytest.approx(0.5, abs=0.02)
    low = 1 / (1 + np.exp(-(S.logit(p) - 0.4)))  # shifted down: intercept +0.4
    fit = S.calibration_slope_intercept(y, low)
    assert fit.slope == pytest.approx(1.0, abs=0.03)
    assert fit.intercept == pytest.approx(0.4, abs=0.03)


def test_calibration_by_group_by_hand():
    y = [1, 0, 1, 1, 0]
    p = [0.5, 0.5, 0.9, 0.7, 0.2]
    groups = ["A", "A", "B", "B", None]
    truth = [0.6, 0.4, 0.8, np.nan, 0.1]
    rows = {g.group: g for g in S.calibration_by_group(y, p, groups, p_true=truth)}
    assert [g.group for g in S.calibration_by_group(y, p, groups)] == ["A", "B", "(missing)"]
    a, b = rows["A"], rows["B"]
    assert (a.rows, a.mean_p, a.observed_rate, a.ece) == (2, 0.5, 0.5, 0.0)
    assert b.rows == 2 and b.mean_p == pytest.approx(0.8) and b.observed_rate == 1.0
    # bins [.7,.8) and [.9,1]: |1-.7| and |1-.9|, half the rows each
    assert b.ece == pytest.approx(0.5 * 0.3 + 0.5 * 0.1)
    assert a.oracle_mean_p == pytest.approx(0.5) and b.oracle_mean_p == pytest.approx(0.8)
    assert rows["(missing)"].oracle_mean_p == pytest.approx(0.1)


def test_a_single_class_gives_no_interval_rather_than_a_number():
    y = np.ones(20)
    p = np.linspace(0.1, 0.9, 20)
    iv = S.auc_difference(y, p, p[::-1], resamples=50, seed=0)
    assert np.isnan(iv.estimate) and np.isnan(iv.low)
    assert np.isnan(S.calibration_slope_intercept(y, p).slope)
