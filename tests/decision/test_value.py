"""Off-policy values on randomized rows, against figures worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cobranza.config import Costs
from cobranza.decision import value

COSTS = Costs(collection_action=8_000)
# cut 1: three ASSIGNED and one HOLDOUT (e = 3/4) plus a RULE row; cut 2: one of each (e = 1/2)
# and a row whose outcome is not known yet; cut 3 ran no holdout.
ARM = ["ASSIGNED", "ASSIGNED", "ASSIGNED", "HOLDOUT", "RULE", "ASSIGNED", "HOLDOUT", "HOLDOUT",
       "ASSIGNED"]  # fmt: skip
CUT = ["2025-01-31"] * 5 + ["2025-02-28"] * 3 + ["2025-03-31"]
ROLL = [0, 1, 0, 1, 1, 0, 0, np.nan, 1]
LOSS = [100_000.0] * 9


def rows() -> value.RandomizedRows:
    return value.randomized_rows(ARM, CUT, ROLL, LOSS, COSTS)


def test_randomized_rows_are_assigned_or_held_out_in_holdout_cuts_with_a_known_outcome():
    r = rows()
    assert r.mask.tolist() == [True, True, True, True, False, True, True, False, False]
    assert r.rows == 6 and r.cuts == 2
    assert r.assigned.tolist() == [True, True, True, False, True, False]
    assert r.propensity.tolist() == pytest.approx([0.75, 0.75, 0.75, 0.25, 0.5, 0.5])
    # managed rows cost the action, plus the loss when they rolled anyway
    assert r.cost.tolist() == [8_000, 108_000, 8_000, 100_000, 8_000, 0]


def test_the_value_of_assigning_everyone_and_no_one_by_hand():
    r = rows()
    everyone = value.policy_value(r, np.ones(9, dtype=bool), resamples=200, seed=0)
    # matched: the assigned rows, weights 4/3 (cut 1) and 2 (cut 2)
    expected = (4 / 3 * (8_000 + 108_000 + 8_000) + 2 * 8_000) / (3 * 4 / 3 + 2)
    assert everyone.cost.estimate == pytest.approx(expected)
    assert everyone.matched == 4 and everyone.rows == 6
    no_one = value.policy_value(r, np.zeros(6, dtype=bool), resamples=200, seed=0)
    # matched: the held-out rows, weights 4 and 2
    assert no_one.cost.estimate == pytest.approx((4 * 100_000 + 2 * 0) / 6)
    assert no_one.cost.low <= no_one.cost.estimate <= no_one.cost.high


def test_a_mixed_policy_is_valued_on_the_rows_where_it_agrees_with_the_arm():
    r = rows()
    # ASSIGN on cut 1, NO_ASSIGN on cut 2: matched = cut 1's assigned rows and cut 2's holdout
    decide = np.array([True, True, True, True, True, False, False, False, False])
    got = value.policy_value(r, decide, resamples=50, seed=0)
    expected = (4 / 3 * 124_000 + 2 * 0) / (4 + 2)
    assert got.cost.estimate == pytest.approx(expected)
    assert got.matched == 4


def test_the_saving_of_one_policy_against_another_is_paired():
    r = rows()
    everyone, no_one = np.ones(9, dtype=bool), np.zeros(9, dtype=bool)
    cmp = value.compare_policies(r, everyone, no_one, resamples=300, seed=1)
    assert cmp.saving.estimate == pytest.approx(cmp.b.cost.estimate - cmp.a.cost.estimate)
    assert cmp.saving.estimate == pytest.approx(400_000 / 6 - (4 / 3 * 124_000 + 16_000) / 6)
    assert cmp.to_dict()["saving"]["estimate"] == pytest.approx(cmp.saving.estimate)
    same = value.compare_policies(r, everyone, everyone.copy(), resamples=300, seed=1)
    assert (same.saving.estimate, same.saving.low, same.saving.high) == (0.0, 0.0, 0.0)


def test_a_policy_matching_no_randomized_row_has_no_value():
    r = value.randomized_rows(
        ["ASSIGNED", "HOLDOUT"], ["2025-01-31"] * 2, [0, 1], [1.0, 1.0], COSTS
    )
    only_holdout = value.randomized_rows(
        ["HOLDOUT", "HOLDOUT"], ["2025-01-31"] * 2, [0, 1], [1.0, 1.0], COSTS
    )
    assert r.rows == 2
    got = value.policy_value(only_holdout, [True, True], resamples=20, seed=0)
    assert math.isnan(got.cost.estimate) and got.matched == 0


def test_decisions_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="decisions cover 3 rows"):
        value.policy_value(rows(), [True, False, True], resamples=10)


def test_randomized_rows_of_a_gold_frame_value_the_roll_on_the_balance():
    frame = pd.DataFrame(
        {
            "arm": pd.array(["ASSIGNED", "HOLDOUT", None], dtype="string"),
            "cut_date": pd.to_datetime(["2025-01-31"] * 3),
            "roll_31_plus": pd.array([1, 1, None], dtype="Int64"),
            "outstanding_balance": [1_000_000.0, np.nan, 5.0],
            "product": ["MORTGAGE", "CREDIT_CARD", "VEHICLE"],
        }
    )
    costs = Costs(collection_action=8_000, later_collection_cost=30_000)
    r = value.randomized_rows_of(frame, costs)
    assert r is not None and r.mask.tolist() == [True, True, False]
    # 1% of 1,000,000 + 30,000 + the action; a missing balance is only the later collection cost
    assert r.cost.tolist() == [48_000.0, 30_000.0]
    assert value.randomized_rows_of(frame.drop(columns=["arm"]), costs) is None
