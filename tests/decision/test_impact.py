"""Impact arithmetic on hand-built arrays: savings = avoided cost - leakage cost; the oracle share."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cobranza.config import Costs
from cobranza.decision.business_impact import (
    decide_per_cut,
    expected_impact,
    oracle_figures,
    oracle_no_assign,
    realized_impact,
)
from cobranza.decision.policy import Policy

COSTS = Costs(collection_action=10.0, unmanaged_fixed=20.0, unmanaged_share_past_due=0.5)


def test_realized_savings_by_hand():
    no_assign = np.array([True, True, True, False, False])
    y = np.array([1, 0, 1, 0, 1])
    amount = np.array([100.0, 40.0, 0.0, 10.0, 10.0])
    out = realized_impact(no_assign, y, amount, COSTS)
    # avoided 3 actions = 30; leakage: row 1 (20 + 0.5*40 = 40)
    assert out["actions_avoided"] == 3 and out["actions_avoided_cost"] == 30.0
    assert out["leakage"] == 1 and out["leakage_cost"] == 40.0
    assert out["net_savings"] == -10.0
    assert out["baseline_cost"] == 50.0 and out["policy_cost"] == 60.0
    assert out["no_assign_share"] == pytest.approx(0.6)
    assert out["leakage_rate"] == pytest.approx(1 / 3)


def test_expected_figures_by_hand():
    out = expected_impact(
        np.array([True, True, False]), np.array([0.9, 0.5, 0.1]), np.array([0.0, 20.0, 5.0]), COSTS
    )
    # leakage expected: 0.1*20 + 0.5*30 = 17; avoided 20
    assert out["expected_actions_avoided"] == 2
    assert out["expected_leakage_cost"] == pytest.approx(17.0)
    assert out["expected_net_savings"] == pytest.approx(3.0)
    assert out["expected_leakage"] == pytest.approx(0.6)


def test_oracle_rule_and_share():
    p_true = np.array([0.95, 0.8, 0.2, 0.6])
    amount = np.array([0.0, 0.0, 0.0, 40.0])  # loss 20, 20, 20, 40
    # expected loss: 1, 4, 16, 16 vs action 10 -> NO_ASSIGN, NO_ASSIGN, ASSIGN, ASSIGN
    assert oracle_no_assign(p_true, amount, COSTS).tolist() == [True, True, False, False]
    y = np.array([1, 1, 0, 1])
    figures = oracle_figures(10.0, p_true, y, amount, COSTS)
    assert figures["oracle_net_savings"] == 20.0
    assert figures["share_of_oracle_captured"] == pytest.approx(0.5)
    assert figures["oracle_no_assign_share"] == pytest.approx(0.5)
    none = oracle_figures(5.0, np.zeros(2), np.zeros(2), np.zeros(2), COSTS)
    assert none["share_of_oracle_captured"] is None


def test_capacity_applies_per_cut():
    policy = Policy(0.5, 10, 20, 0.5, 1, 0, 0, 0, 1)
    proba = np.array([0.1, 0.2, 0.9, 0.1, 0.3])
    cuts = ["2024-01-31", "2024-01-31", "2024-01-31", "2024-02-29", "2024-02-29"]
    out = decide_per_cut(proba, np.ones(5), cuts, policy)
    # cut 1: ASSIGN rows 0,1; capacity 1 keeps row 0; cut 2: keeps row 3
    assert out.tolist() == [False, True, True, False, True]


def test_capacity_taken_by_ineligible_rows_first_as_at_scoring_time():
    """A cut's obligations without a mandate are ASSIGN by rule and use the team's capacity."""
    policy = Policy(0.5, 10, 20, 0.5, 2, 0, 0, 0, 1)
    proba = np.array([0.1, 0.2, 0.9, 0.1, 0.3])
    cuts = ["2024-01-31", "2024-01-31", "2024-01-31", "2024-02-29", "2024-02-29"]
    ineligible = {"2024-01-31": 1, "2024-02-29": 2}
    out = decide_per_cut(proba, np.ones(5), cuts, policy, ineligible)
    # cut 1: capacity 2, one taken by the ineligible row: row 0 (riskiest) kept, row 1 NO_ASSIGN
    # cut 2: the two ineligible rows take it all: rows 3 and 4 NO_ASSIGN
    assert out.tolist() == [False, True, True, True, True]
    # without a capacity the ineligible rows change nothing
    free = dataclasses.replace(policy, capacity=None)
    assert decide_per_cut(proba, np.ones(5), cuts, free, ineligible).tolist() == [
        False,
        False,
        True,
        False,
        False,
    ]
    # and the decisions equal the scoring rule over the cut's whole population
    from cobranza.decision.policy import decide_with_flags

    p = np.array([0.1, 0.2, 0.9, np.nan])
    d, _ = decide_with_flags(p, np.ones(4), np.array([True, True, True, False]), policy)
    assert (d[:3] == "NO_ASSIGN").tolist() == out[:3].tolist()
