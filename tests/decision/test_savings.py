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


def test_net_savings_split_into_the_policys_and_the_holdouts():
    # Benefits of managing: row 0 5 - 10 = -5, row 1 40 - 10 = 30, row 2 0 - 10 = -10, row 3
    # 20 - 10 = 10. The policy leaves rows 0 and 2 and manages 1 and 3; rows 2 and 3 are held out.
    no_assign = np.array([True, False, True, False])
    holdout = np.array([False, False, True, True])
    p_no = np.array([0.30, 0.50, 0.20, 0.40])
    p_act = np.array([0.25, 0.10, 0.20, 0.20])
    loss = np.full(4, 100.0)
    got = expected_impact(no_assign, p_no, p_act, loss, COSTS, holdout=holdout)
    # The policy alone saves 5 + 10 on rows 0 and 2; leaving row 3 unmanaged loses its benefit 10.
    assert got["expected_savings_without_holdout"] == pytest.approx(15.0)
    assert got["expected_holdout_cost"] == pytest.approx(10.0)
    assert got["expected_net_savings"] == pytest.approx(5.0)
    assert got["holdout"] == 2
    assert got["no_assign"] == 3  # the decisions taken: the holdout is NO_ASSIGN
    assert got["expected_net_savings"] == (
        got["expected_savings_without_holdout"] - got["expected_holdout_cost"]
    )
    without = expected_impact(no_assign, p_no, p_act, loss, COSTS)
    assert without["expected_net_savings"] == pytest.approx(15.0)
    assert without["expected_holdout_cost"] == 0.0 and without["holdout"] == 0


def test_holdout_cost_is_never_negative_where_the_policy_assigns_because_managing_pays():
    rng = np.random.default_rng(7)
    n = 2_000
    p_act = rng.uniform(0.0, 0.5, n)
    p_no = p_act + rng.uniform(0.0, 0.3, n)
    loss = rng.uniform(10.0, 500.0, n)
    benefit = (p_no - p_act) * loss - COSTS.collection_action
    no_assign = benefit < 0  # the Bayes rule: ASSIGN exactly where managing pays
    holdout = rng.uniform(size=n) < 0.1
    got = expected_impact(no_assign, p_no, p_act, loss, COSTS, holdout=holdout)
    assert got["expected_holdout_cost"] == pytest.approx(benefit[holdout & ~no_assign].sum())
    assert got["expected_holdout_cost"] > 0
    assert got["expected_net_savings"] == pytest.approx(
        got["expected_savings_without_holdout"] - got["expected_holdout_cost"], abs=1e-6
    )
    # each held-out row alone costs its benefit of managing, >= 0 where the policy assigns it
    for i in np.flatnonzero(holdout)[:50]:
        one = expected_impact(no_assign[[i]], p_no[[i]], p_act[[i]], loss[[i]], COSTS, [True])
        assert one["expected_holdout_cost"] >= 0
        assert one["expected_holdout_cost"] == pytest.approx(max(benefit[i], 0.0), abs=0.01)


def test_a_holdout_row_the_policy_assigns_where_managing_does_not_pay_saves():
    # An effect not identified assigns everyone, managing pays -5 on this row: holding it out saves.
    got = expected_impact([False], [0.30], [0.25], [100.0], COSTS, holdout=[True])
    assert got["expected_holdout_cost"] == pytest.approx(-5.0)
    assert got["expected_savings_without_holdout"] == pytest.approx(0.0)
    assert got["expected_net_savings"] == pytest.approx(5.0)
