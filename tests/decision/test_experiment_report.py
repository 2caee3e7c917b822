"""The experiment report's figures on hand-built labeled rows: per cut, pooled, sample size."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from cobranza.config import Costs
from cobranza.decision.experiment_report import figures, with_cost
from cobranza.decision.experiment_stats import rate_difference, sample_size, stratified

C1, C2, C3 = date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)
COSTS = Costs(
    collection_action=1000.0,
    provision_step={"CONSUMER_LOAN": 0.1},
    default_provision_step=0.1,
    later_collection_cost=500.0,
)


def rows(cut, arm, outcomes, balance=10_000.0):
    """One row per (self_cure_debit, cure_any, roll_31_plus) triple."""
    return [
        {
            "obligation_id": f"{arm}-{cut}-{i}",
            "cut_date": cut,
            "eligible": True,
            "arm": arm,
            "self_cure_debit": s,
            "cure_any": a,
            "roll_31_plus": r,
            "outstanding_balance": balance,
            "product": "CONSUMER_LOAN",
        }
        for i, (s, a, r) in enumerate(outcomes)
    ]


def frame() -> pd.DataFrame:
    data = (
        # C1: randomized. HOLDOUT rolls 2 of 4, ASSIGNED 1 of 5
        rows(C1, "HOLDOUT", [(1, 1, 0), (0, 0, 1), (0, 0, 1), (1, 1, 0)])
        + rows(C1, "ASSIGNED", [(0, 1, 0), (0, 1, 0), (1, 1, 0), (0, 0, 1), (0, 1, 0)])
        # C2: randomized. HOLDOUT rolls 1 of 3, ASSIGNED 2 of 3; a RULE row shown, never compared
        + rows(C2, "HOLDOUT", [(1, 1, 0), (0, 0, 1), (1, 1, 0)])
        + rows(C2, "ASSIGNED", [(0, 0, 1), (0, 0, 1), (0, 1, 0)])
        + rows(C2, "RULE", [(1, 1, 0)])
        # C3: ASSIGNED only, not randomized
        + rows(C3, "ASSIGNED", [(0, 1, 0), (0, 0, 1)])
    )
    return with_cost(pd.DataFrame(data), COSTS)


def test_realized_cost_is_the_action_when_assigned_plus_the_loss_when_rolled():
    f = frame()
    loss = 10_000.0 * 0.1 + 500.0  # balance x provision step + later collection cost
    by = f.set_index("obligation_id")["cost"]
    assert by[f"HOLDOUT-{C1}-1"] == loss  # unmanaged, rolled
    assert by[f"HOLDOUT-{C1}-0"] == 0.0  # unmanaged, cured
    assert by[f"ASSIGNED-{C1}-3"] == 1000.0 + loss  # managed and rolled all the same
    assert by[f"ASSIGNED-{C1}-0"] == 1000.0


def test_arms_and_effects_per_cut():
    cuts, pooled, _, _, _ = figures(frame(), mde=0.1)
    assert [c.cut_date for c in cuts] == ["2026-01-31", "2026-02-28", "2026-03-31"]
    assert [c.randomized for c in cuts] == [True, True, False]
    assert pooled == ["2026-01-31", "2026-02-28"]
    first = {a.arm: a for a in cuts[0].arms}
    assert (first["HOLDOUT"].rows, first["HOLDOUT"].roll_rate) == (4, 0.5)
    assert (first["ASSIGNED"].cure_debit_rate, first["ASSIGNED"].cure_any_rate) == (0.2, 0.8)
    assert first["HOLDOUT"].cost_per_obligation == 1500.0 * 2 / 4
    assert first["ASSIGNED"].cost_per_obligation == (5 * 1000.0 + 1500.0) / 5
    roll = next(e for e in cuts[0].effects if e.metric == "roll_rate")
    assert roll.difference == pytest.approx(0.5 - 0.2)
    assert roll.se == pytest.approx(math.sqrt(0.25 / 4 + 0.16 / 5))
    assert {a.arm for a in cuts[1].arms} == {"HOLDOUT", "ASSIGNED", "RULE"}
    assert cuts[2].effects == []


def test_pooled_arms_and_stratified_effects_over_randomized_cuts_only():
    _, _, arms, effects, size = figures(frame(), mde=0.1)
    holdout, assigned = arms
    assert (holdout.arm, holdout.rows, holdout.roll_rate) == ("HOLDOUT", 7, 3 / 7)
    assert (assigned.arm, assigned.rows, assigned.roll_rate) == ("ASSIGNED", 8, 3 / 8)  # not C3
    roll = next(e for e in effects if e.metric == "roll_rate")
    c1 = rate_difference("roll_rate", [0, 1, 1, 0], [0, 0, 0, 1, 0])
    c2 = rate_difference("roll_rate", [0, 1, 0], [1, 1, 0])
    expected = stratified("roll_rate", [c1, c2], [9, 6])  # RULE rows are not in C2's weight
    assert roll.difference == pytest.approx(0.6 * 0.3 + 0.4 * (1 / 3 - 2 / 3))
    assert (roll.ci_low, roll.ci_high, roll.p_value) == pytest.approx(
        (expected.ci_low, expected.ci_high, expected.p_value)
    )
    assert [e.metric for e in effects] == [
        "cure_debit_rate",
        "cure_any_rate",
        "roll_rate",
        "cost_per_obligation",
    ]
    # sizing from ASSIGNED's roll rate and the observed arm ratio
    assert (size.base_rate, size.ratio) == (3 / 8, 8 / 7)
    assert (size.holdout_rows, size.assigned_rows) == sample_size(3 / 8, 0.1, 8 / 7)
    assert size.cuts_needed == math.ceil(size.holdout_rows / 3.5)


def test_an_mde_no_rate_can_reach_gives_no_sample_size():
    """Base rate 3/8: neither 3/8 + 0.7 nor 3/8 - 0.7 is a rate, so no size is given."""
    _, _, _, _, size = figures(frame(), mde=0.7)
    assert (size.holdout_rows, size.assigned_rows, size.cuts_needed) == (None, None, None)
    assert size.base_rate == 3 / 8


def test_no_randomized_cut_gives_no_effects():
    f = frame()
    cuts, pooled, arms, effects, size = figures(f[f["arm"] != "HOLDOUT"], mde=0.1)
    assert len(cuts) == 3 and pooled == [] and arms == [] and effects == [] and size is None
