"""The effect-aware policy: NO_ASSIGN iff managing is expected not to pay; capacity to the largest
benefit first; the holdout never managed and never counted in the capacity."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from cobranza.config import Costs
from cobranza.decision.loss import expected_benefit, expected_cost
from cobranza.decision.policy import (
    ASSIGN,
    NO_ASSIGN,
    Policy,
    PolicyError,
    champion_policy,
    decide,
    decide_per_cut,
    decide_with_flags,
)


def _policy(capacity=None, **costs) -> Policy:
    return Policy.of(Costs(daily_capacity=capacity, **costs))


def test_no_assign_exactly_when_the_expected_benefit_of_managing_is_negative():
    benefit = np.array([-1.0, 0.0, 2.5, -0.01])
    got = decide(benefit, np.ones(4, bool), _policy())
    assert got.tolist() == [NO_ASSIGN, ASSIGN, ASSIGN, NO_ASSIGN]


def test_the_rule_minimizes_expected_cost_row_by_row():
    """Bayes: on random rows no other decision of any row has a lower expected cost."""
    rng = np.random.default_rng(3)
    n = 2_000
    costs = Costs()
    p_no = rng.uniform(0, 0.6, n)
    p_act = p_no * rng.uniform(0.3, 1.0, n)
    loss = rng.uniform(30_000, 600_000, n)
    benefit = expected_benefit(p_no, p_act, loss, costs)
    assign = decide(benefit, np.ones(n, bool), Policy.of(costs)) == ASSIGN
    chosen = expected_cost(assign, p_no, p_act, loss, costs)
    other = expected_cost(~assign, p_no, p_act, loss, costs)
    assert (chosen <= other + 1e-9).all()


def test_ineligible_rows_are_always_assign():
    got = decide([-5.0, np.nan], [False, False], _policy())
    assert got.tolist() == [ASSIGN, ASSIGN]


def test_capacity_keeps_the_largest_benefits_and_ineligible_rows_first():
    benefit = np.array([np.nan, 100.0, 5.0, 50.0, -3.0])
    eligible = np.array([False, True, True, True, True])
    decision, limited = decide_with_flags(benefit, eligible, _policy(capacity=2))
    assert decision.tolist() == [ASSIGN, ASSIGN, NO_ASSIGN, NO_ASSIGN, NO_ASSIGN]
    assert limited.tolist() == [False, False, True, True, False]


def test_holdout_rows_are_no_assign_and_never_take_the_capacity():
    benefit = np.array([100.0, 90.0, 80.0, 70.0])
    eligible = np.ones(4, bool)
    holdout = np.array([True, False, False, False])
    decision, limited = decide_with_flags(benefit, eligible, _policy(capacity=2), holdout)
    assert decision.tolist() == [NO_ASSIGN, ASSIGN, ASSIGN, NO_ASSIGN]
    assert limited.tolist() == [False, False, False, True]


def test_decide_per_cut_applies_the_capacity_per_cut():
    cuts = [dt.date(2024, 1, 31)] * 3 + [dt.date(2024, 2, 29)] * 3
    benefit = np.array([3.0, 2.0, 1.0, 3.0, 2.0, 1.0])
    decision, limited = decide_per_cut(benefit, np.ones(6, bool), cuts, _policy(capacity=2))
    assert decision.tolist() == [ASSIGN, ASSIGN, NO_ASSIGN] * 2
    assert limited.sum() == 2


def test_decide_per_cut_gives_the_capacity_to_ineligible_rows_of_the_cut_first():
    cut = dt.date(2024, 1, 31)
    decision, limited = decide_per_cut(
        [3.0, 2.0], [True, True], [cut, cut], _policy(capacity=2), ineligible_per_cut={cut: 1}
    )
    assert decision.tolist() == [ASSIGN, NO_ASSIGN]
    assert limited.tolist() == [False, True]


def test_a_missing_benefit_on_an_eligible_row_is_refused():
    with pytest.raises(PolicyError, match="no expected benefit"):
        decide([np.nan], [True], _policy())
    with pytest.raises(PolicyError, match="differ in length"):
        decide([1.0, 2.0], [True], _policy())


def test_round_trip_keeps_the_costs():
    policy = Policy.of(
        Costs(
            collection_action=9_000, later_collection_cost=20_000, provision_step={"VEHICLE": 0.07}
        ),
        no_assign_share=0.3,
        n_fit=10,
    )
    back = Policy.from_dict(policy.to_dict())
    assert back == policy
    assert back.costs.provision_step == {"VEHICLE": 0.07}
    assert back.costs.later_collection_cost == 20_000


def test_a_policy_logged_by_the_threshold_rule_asks_for_a_retrain():
    old = {"threshold": 0.7, "collection_action": 8000.0, "unmanaged_fixed": 10000.0}
    with pytest.raises(PolicyError, match="retrain"):
        Policy.from_dict(old)


def test_todays_costs_and_capacity_replace_the_logged_ones():
    class Champion:
        version = "3"
        policy = Policy.of(Costs(), no_assign_share=0.25, n_fit=100).to_dict()

    policy = champion_policy(Champion(), capacity=7, costs=Costs(collection_action=1_000))
    assert policy.collection_action == 1_000
    assert policy.capacity == 7
    assert policy.no_assign_share == 0.25


def _unidentified(capacity=None) -> Policy:
    return dataclasses.replace(
        _policy(capacity), effect_identified=False, effect_low=-0.4, effect_high=0.2
    )


def test_an_effect_not_identified_assigns_every_eligible_row_but_the_holdout():
    benefit = np.array([-5.0, -0.1, 3.0, -2.0, np.nan])
    eligible = np.array([True, True, True, True, False])
    holdout = np.array([False, False, False, True, False])
    identified, _ = decide_with_flags(benefit, eligible, _policy(), holdout)
    assert identified.tolist() == [NO_ASSIGN, NO_ASSIGN, ASSIGN, NO_ASSIGN, ASSIGN]
    unidentified, limited = decide_with_flags(benefit, eligible, _unidentified(), holdout)
    assert unidentified.tolist() == [ASSIGN, ASSIGN, ASSIGN, NO_ASSIGN, ASSIGN]
    assert not limited.any()


def test_an_effect_not_identified_still_fills_the_capacity_by_benefit():
    benefit = np.array([-5.0, -0.1, 3.0, -2.0])
    eligible = np.ones(4, dtype=bool)
    decision, limited = decide_with_flags(benefit, eligible, _unidentified(capacity=2))
    assert decision.tolist() == [NO_ASSIGN, ASSIGN, ASSIGN, NO_ASSIGN]
    assert limited.tolist() == [True, False, False, True]


def test_the_effect_travels_with_the_policy_and_todays_costs():
    policy = _unidentified()
    back = Policy.from_dict(policy.to_dict())
    assert back == policy and not back.effect_identified
    assert (back.effect_low, back.effect_high) == (-0.4, 0.2)

    class Champion:
        version = "4"

    Champion.policy = policy.to_dict()
    today = champion_policy(Champion(), capacity=5, costs=Costs(collection_action=1_000))
    assert not today.effect_identified and today.effect_high == 0.2
    assert today.collection_action == 1_000 and today.capacity == 5


def test_a_policy_logged_without_the_effect_reads_as_identified():
    logged = _policy().to_dict()
    for name in ("effect_identified", "effect_low", "effect_high"):
        del logged[name]
    back = Policy.from_dict(logged)
    assert back.effect_identified and back.effect_low is None
    assert decide([-1.0], [True], back).tolist() == [NO_ASSIGN]


def test_an_interval_that_could_not_be_estimated_is_recorded_as_none():
    policy = Policy.of(Costs(), effect_identified=False, effect_low=-np.inf, effect_high=np.inf)
    assert policy.effect_low is None and policy.effect_high is None
    assert json.loads(json.dumps(policy.to_dict()))["effect_identified"] is False
