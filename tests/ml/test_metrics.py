"""Metrics against values computed by hand on tiny arrays."""

import math

import numpy as np
import pytest

from cobranza.ml import metrics as M


def test_auc_and_ks_by_hand():
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.35, 0.8]
    # pairs (pos, neg): (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) -> 3 of 4
    assert M.auc(y, p) == pytest.approx(0.75)
    # CDFs at 0.1, 0.35, 0.4, 0.8: pos 0, .5, .5, 1; neg .5, .5, 1, 1 -> max gap .5
    assert M.ks(y, p) == pytest.approx(0.5)
    assert M.ks([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0)


def test_ece_by_hand():
    p = [0.05, 0.15, 0.95, 0.92]
    y = [0, 1, 1, 1]
    # bins: [0,.1) -> |0-.05|, [.1,.2) -> |1-.15|, [.9,1] -> |1-.935|; weights .25 .25 .5
    expected = 0.25 * 0.05 + 0.25 * 0.85 + 0.5 * 0.065
    assert M.ece(y, p) == pytest.approx(expected)
    assert M.ece([0, 1], [0.0, 1.0]) == pytest.approx(0.0)


def test_psi_by_hand():
    expected = np.arange(10) / 10 + 0.05  # 0.05 .. 0.95, median 0.5
    actual = [0.1, 0.2, 0.3, 0.9]  # 3 below, 1 above
    want = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert M.psi(expected, actual, n_bins=2) == pytest.approx(want)
    assert M.psi(expected, expected) == pytest.approx(0.0)


def test_psi_empty_bin_is_floored_not_infinite():
    value = M.psi(np.linspace(0, 1, 100), np.full(50, 0.01))
    assert math.isfinite(value) and value > 1


def test_deciles_lift_and_capture_by_hand():
    y = [1, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    table = M.deciles(y, p, n_groups=5)
    assert [d["positives"] for d in table] == [1, 1, 1, 0, 0]
    assert [d["lift"] for d in table] == pytest.approx([5 / 3, 5 / 3, 5 / 3, 0, 0])
    assert [d["cum_capture"] for d in table] == pytest.approx([1 / 3, 2 / 3, 1, 1, 1])
    assert table[1]["cum_lift"] == pytest.approx((2 / 4) / 0.3)


def test_brier_and_log_loss_by_hand():
    y, p = [1, 0], [0.8, 0.4]
    assert M.brier(y, p) == pytest.approx((0.04 + 0.16) / 2)
    assert M.log_loss(y, p) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)


def test_evaluate_has_every_headline_metric():
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(int)
    out = M.evaluate(y, p)
    for key in ("auc", "gini", "ks", "pr_auc", "brier", "log_loss", "ece", "lift_top_decile"):
        assert math.isfinite(out[key]), key
    assert out["gini"] == pytest.approx(2 * out["auc"] - 1)
    assert out["ece"] < 0.1  # p is calibrated by construction


def test_ece_noise_shrinks_with_sample_size_and_is_deterministic():
    rng = np.random.default_rng(3)
    small, large = rng.random(800), rng.random(80_000)
    a, b = M.ece_noise(small, seed=1), M.ece_noise(small, seed=1)
    assert a == b
    assert 0.02 < a < 0.08
    assert M.ece_noise(large, draws=50) < a / 5
