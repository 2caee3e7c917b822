"""Savings figures under the roll loss: expected from the model, true from the simulator's
potential outcomes, and each rule's share of the oracle's savings."""

from __future__ import annotations

import numpy as np
import pytest

from cobranza.config import Costs
from cobranza.decision.savings import expected_impact, realized_impact, true_impact

COSTS = Costs(collection_action=10.0)


def test_expected_savings_by_hand():
    # Leaving row 0 saves the action (10) and adds 0.05 x 100 = 5 of expected rolls: net 5.
    got = expected_impact([True, False], [0.3, 0.5], [0.25, 0.1], [100.0, 100.0], COSTS)
    assert got["no_assign"] == 1
    assert got["expected_extra_roll_cost"] == pytest.approx(5.0)
    assert got["expected_net_savings"] == pytest.approx(5.0)


def test_true_impact_gives_the_oracle_all_of_its_savings_and_each_rule_its_share():
    p_no = np.array([0.30, 0.50, 0.20])
    p_act = np.array([0.25, 0.10, 0.20])
    loss = np.array([100.0, 100.0, 100.0])
    # True benefits of managing: 5 - 10 = -5, 40 - 10 = 30, 0 - 10 = -10: the oracle leaves rows 0
    # and 2 and saves 15; leaving everyone saves 15 - 30 = -15; leaving only row 2 saves 10.
    got = true_impact(
        {
            "policy": np.array([False, False, True]),
            "no_model": np.ones(3, bool),
            "oracle_again": np.array([True, False, True]),
        },
        p_no,
        p_act,
        loss,
        COSTS,
    )
    assert got["oracle_net_savings"] == pytest.approx(15.0)
    assert got["share_of_oracle_captured"] == pytest.approx(10 / 15, abs=1e-6)
    assert got["no_model_share_of_oracle_captured"] == pytest.approx(-1.0)
    assert got["oracle_again_share_of_oracle_captured"] == pytest.approx(1.0)


def test_realized_cost_under_the_arms_actually_taken():
    got = realized_impact([1, 0, 0], [0, 1, 0], [0, 0, 1], [100.0, 100.0, 100.0], COSTS)
    assert got["realized_cost"] == pytest.approx(110.0)
    assert got["roll_rate"] == pytest.approx(1 / 3, abs=1e-6)
