"""Impact arithmetic on hand-built arrays: savings = avoided cost - leakage cost; the oracle share."""

from __future__ import annotations

import numpy as np
import pytest

from cobranza.config import Costs
from cobranza.decision.savings import (
    expected_impact,
    oracle_figures,
    oracle_no_assign,
    realized_impact,
)

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
