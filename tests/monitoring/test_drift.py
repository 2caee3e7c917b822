"""Drift and realized-performance rules on hand-built data."""

import numpy as np
import pandas as pd
import pytest

from cobranza.monitoring.drift import categorical_psi, feature_drift, numeric_psi, status
from cobranza.monitoring.monitor import realized_performance


def test_status_bands():
    assert status(0.05) == "OK"
    assert status(0.10) == "WARN"
    assert status(0.30) == "ALERT"
    assert status(None) == "NO_DATA"


def test_same_population_is_stable_and_a_shift_is_not():
    rng = np.random.default_rng(0)
    ref = pd.Series(rng.normal(0, 1, 20_000))
    assert numeric_psi(ref, pd.Series(rng.normal(0, 1, 20_000))) < 0.01
    assert numeric_psi(ref, pd.Series(rng.normal(1, 1, 20_000))) > 0.25


def test_missing_values_count_as_their_own_bin():
    ref = pd.Series([1.0, 2.0, 3.0, 4.0] * 100)
    cur = pd.Series([1.0, 2.0, np.nan, np.nan] * 100)
    assert numeric_psi(ref, cur) > 0.25


def test_missing_share_is_one_bin_among_the_others_by_hand():
    """Shares over all rows: the known values' bins and the missing bin add up to one."""
    ref = pd.Series([1.0] * 50 + [np.nan] * 50)  # one value bin at 0.5, missing 0.5
    cur = pd.Series([1.0] * 80 + [np.nan] * 20)  # 0.8 and 0.2
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert numeric_psi(ref, cur) == pytest.approx(expected)
    # the same missing share on both sides, same values: no drift at all
    assert numeric_psi(ref, ref.copy()) == pytest.approx(0.0, abs=1e-12)


def test_categorical_psi_exact():
    ref = pd.Series(["OWN"] * 50 + ["OTHER"] * 50)
    cur = pd.Series(["OWN"] * 80 + ["OTHER"] * 20)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert categorical_psi(ref, cur) == pytest.approx(expected)


def test_feature_drift_sorted_with_status():
    ref = pd.DataFrame({"a": np.arange(1000.0), "bank": ["OWN"] * 1000})
    cur = pd.DataFrame({"a": np.arange(1000.0) + 800, "bank": ["OWN"] * 1000})
    rows = feature_drift(ref, cur, ["a", "bank"], ["bank"])
    assert [r["feature"] for r in rows] == ["a", "bank"]
    assert rows[0]["status"] == "ALERT" and rows[1]["status"] == "OK"


def test_realized_performance_joins_labels_of_closed_horizons():
    d1, d2 = pd.Timestamp("2026-01-31").date(), pd.Timestamp("2026-02-28").date()
    scores = pd.DataFrame(
        {
            "obligation_id": ["A", "B", "C", "D", "E"],
            "cut_date": [d1, d1, d1, d1, d2],
            "probability": [0.9, 0.8, 0.2, None, 0.5],
            "decision": ["NO_ASSIGN", "NO_ASSIGN", "ASSIGN", "ASSIGN", "ASSIGN"],
            "model_version": ["1"] * 5,
            "scoring_run_id": ["r1"] * 4 + ["r2"],
        }
    )
    gold = pd.DataFrame(
        {
            "obligation_id": ["A", "B", "C", "D", "E"],
            "cut_date": [d1, d1, d1, d1, d2],
            "self_cure_debit": [1, 0, 0, 0, None],
        }
    )
    rows = realized_performance(scores, gold)
    assert len(rows) == 1  # r2's horizon is still open; D was ineligible (no probability)
    row = rows[0]
    assert row["rows"] == 3 and row["no_assign"] == 2
    assert row["leakage_rate"] == pytest.approx(0.5)
    assert row["auc"] == pytest.approx(1.0)
    assert row["observed_rate"] == pytest.approx(1 / 3, abs=1e-6)


def test_small_samples_are_not_judged():
    ref = pd.DataFrame({"a": np.arange(50.0)})
    cur = pd.DataFrame({"a": np.arange(50.0) + 1000})
    assert feature_drift(ref, cur, ["a"], []) == [
        {"feature": "a", "psi": None, "status": "INSUFFICIENT_DATA"}
    ]
