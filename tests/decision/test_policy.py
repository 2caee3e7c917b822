"""The policy's threshold is the exact cost optimum; the decision rule and the capacity rule hold."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest

from cobranza.config import Costs
from cobranza.decision.policy import (
    ASSIGN,
    NO_ASSIGN,
    Policy,
    PolicyError,
    cost_curve,
    cost_ruled,
    decide,
    decide_per_cut,
    decide_with_flags,
    fit_policy,
)

COSTS = Costs(collection_action=10.0, unmanaged_fixed=20.0, unmanaged_share_past_due=0.5)


def brute_force(p, y, a, costs):
    """Cost of every threshold in {inf} + distinct p, by direct summation."""
    out = {}
    for thr in [math.inf, *sorted(set(p), reverse=True)]:
        cost = 0.0
        for pi, yi, ai in zip(p, y, a, strict=True):
            if pi >= thr:
                cost += 0.0 if yi else costs.unmanaged_fixed + costs.unmanaged_share_past_due * ai
            else:
                cost += costs.collection_action
        out[thr] = cost
    return out


def test_known_optimum_by_hand():
    # Loss if unmanaged and not cured: 20 + 0.5 * 20 = 30 per row; assigning costs 10.
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.2])
    y = np.array([1, 1, 0, 1, 0])
    a = np.full(5, 20.0)
    # thr=inf: 50; 0.9: 40; 0.8: 30; 0.7: 50; 0.6: 40; 0.2: 60 -> optimum 0.8, cost 30.
    pol = fit_policy(p, y, a, COSTS)
    assert pol.threshold == 0.8
    assert pol.expected_cost_per_obligation == pytest.approx(30 / 5)
    assert pol.baseline_cost_per_obligation == pytest.approx(50 / 5)
    assert pol.no_assign_share == pytest.approx(2 / 5)
    assert pol.n_fit == 5
    assert list(decide(p, a, np.ones(5, bool), pol)) == [NO_ASSIGN] * 2 + [ASSIGN] * 3


def test_matches_brute_force_with_ties_and_amounts():
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 25))
        p = np.round(rng.random(n), 1)  # many ties
        y = (rng.random(n) < p).astype(int)
        a = rng.choice([0.0, 10.0, 100.0], n)
        brute = brute_force(p, y, a, COSTS)
        best = min(brute.values())
        pol = fit_policy(p, y, a, COSTS)
        assert pol.expected_cost_per_obligation * n == pytest.approx(best)
        # tie in cost -> the highest threshold (fewest NO_ASSIGN)
        assert pol.threshold == max(t for t, c in brute.items() if math.isclose(c, best))
        curve = cost_curve(p, y, a, COSTS)
        for thr, cost in zip(curve["threshold"], curve["cost"], strict=True):
            assert cost == pytest.approx(brute[thr])


def test_never_no_assign_when_leaving_is_always_worse():
    p = np.array([0.99, 0.5])
    y = np.array([0, 0])
    pol = fit_policy(p, y, np.zeros(2), COSTS)
    assert pol.threshold == math.inf
    assert pol.no_assign_share == 0.0
    assert list(decide(p, np.zeros(2), np.ones(2, bool), pol)) == [ASSIGN, ASSIGN]
    again = Policy.from_dict(json.loads(json.dumps(pol.to_dict())))
    assert again == pol


def test_round_trip_and_costs():
    pol = fit_policy([0.9, 0.1], [1, 0], [5.0, 5.0], COSTS.model_copy(update={"daily_capacity": 3}))
    data = json.loads(json.dumps(pol.to_dict()))
    assert data["threshold"] == 0.9 and data["capacity"] == 3
    assert Policy.from_dict(data) == pol
    assert pol.costs.collection_action == 10.0
    assert pol.savings_per_obligation == pytest.approx((20 - 10) / 2)


def test_ineligible_always_assign():
    pol = fit_policy([0.9, 0.1], [1, 0], [0.0, 0.0], COSTS)
    d = decide([0.95, np.nan, 0.05], [1.0, 1.0, 1.0], [True, False, True], pol)
    assert list(d) == [NO_ASSIGN, ASSIGN, ASSIGN]


def test_capacity_moves_least_risky_assign_rows_to_no_assign():
    pol = Policy(
        threshold=0.8,
        collection_action=10,
        unmanaged_fixed=20,
        unmanaged_share_past_due=0.5,
        capacity=3,
        expected_cost_per_obligation=0,
        baseline_cost_per_obligation=0,
        no_assign_share=0,
        n_fit=1,
    )
    p = np.array([0.9, 0.1, 0.5, np.nan, 0.3, 0.7, 0.3])
    a = np.array([1, 1, 1, 1, 1, 1, 50.0])
    e = np.array([True, True, True, False, True, True, True])
    d, limited = decide_with_flags(p, a, e, pol)
    # ASSIGN before capacity: rows 1..6 (6 rows). Capacity 3: ineligible row 3, then p=0.1 (row 1),
    # then p=0.3 with the larger amount (row 6). Rows 2, 4, 5 overflow.
    assert list(d) == [NO_ASSIGN, ASSIGN, NO_ASSIGN, ASSIGN, NO_ASSIGN, NO_ASSIGN, ASSIGN]
    assert list(limited) == [False, False, True, False, True, True, False]
    # capacity smaller than the ineligible rows: they still stay ASSIGN
    tight = Policy(**{**pol.to_dict(), "capacity": 0})
    d0, lim0 = decide_with_flags(p, a, e, tight)
    assert d0[3] == ASSIGN and not lim0[3]
    assert (d0[e] == NO_ASSIGN).all()
    # capacity not binding: no flags
    loose = Policy(**{**pol.to_dict(), "capacity": 100})
    _, lim = decide_with_flags(p, a, e, loose)
    assert not lim.any()


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(PolicyError, match="length"):
        fit_policy([0.1], [1, 0], [1.0], COSTS)
    with pytest.raises(PolicyError, match="NaN"):
        fit_policy([np.nan], [1], [1.0], COSTS)
    with pytest.raises(PolicyError, match="0 or 1"):
        fit_policy([0.5], [2], [1.0], COSTS)
    with pytest.raises(PolicyError, match="zero"):
        fit_policy([], [], [], COSTS)
    pol = fit_policy([0.5], [1], [1.0], COSTS)
    with pytest.raises(PolicyError, match="eligible"):
        decide([np.nan], [1.0], [True], pol)


def test_vectorized_on_a_million_rows_is_exact_at_the_optimum():
    rng = np.random.default_rng(1)
    n = 1_000_000
    p = rng.random(n)
    y = (rng.random(n) < p).astype(int)
    a = rng.gamma(2.0, 100_000.0, n)
    costs = Costs()
    pol = fit_policy(p, y, a, costs)
    no = p >= pol.threshold
    loss = costs.unmanaged_fixed + costs.unmanaged_share_past_due * a
    direct = costs.collection_action * (~no).sum() + ((1 - y) * loss)[no].sum()
    assert pol.expected_cost_per_obligation * n == pytest.approx(direct, rel=1e-9)
    for shift in itertools.product([-1, 1], [1e-3]):
        other = p >= pol.threshold + shift[0] * shift[1]
        alt = costs.collection_action * (~other).sum() + ((1 - y) * loss)[other].sum()
        assert alt >= direct - 1e-6


def test_cost_rule_keeps_large_stakes_managed_and_the_fit_stays_exact():
    """NO_ASSIGN needs p >= threshold and (1 - p) x loss below one action; the threshold fitted
    under that rule is the brute-force optimum of the same rule."""
    # loss = 20 + 0.5 * a; action 10. Row 0: p 0.9, a 200 -> (0.1)(120) = 12 >= 10: managed.
    p = np.array([0.9, 0.8, 0.7])
    y = np.array([1, 1, 0])
    a = np.array([200.0, 0.0, 0.0])
    pol = fit_policy(p, y, a, COSTS, cost_rule=True)
    assert pol.cost_rule and pol.threshold == 0.8
    d = decide(p, a, np.ones(3, bool), pol)
    assert list(d) == [ASSIGN, NO_ASSIGN, ASSIGN]
    ruled = cost_ruled(p, a, np.ones(3, bool), d, pol)
    assert list(ruled) == [True, False, False]
    assert fit_policy(p, y, a, COSTS).cost_rule is False  # the plain rule by default

    rng = np.random.default_rng(11)
    for _ in range(30):
        n = int(rng.integers(1, 25))
        p = np.round(rng.random(n), 1)
        y = (rng.random(n) < p).astype(int)
        a = rng.choice([0.0, 10.0, 100.0], n)
        allowed = (1 - p) * (20 + 0.5 * a) < 10
        best = math.inf
        for thr in [math.inf, *sorted(set(p), reverse=True)]:
            no = (p >= thr) & allowed
            cost = 10 * (~no).sum() + ((1 - y) * (20 + 0.5 * a))[no].sum()
            best = min(best, cost)
        pol = fit_policy(p, y, a, COSTS, cost_rule=True)
        assert pol.expected_cost_per_obligation * n == pytest.approx(best)


def test_policies_logged_before_the_cost_rule_still_decide_by_threshold_only():
    old = {
        "threshold": 0.5,
        "collection_action": 10.0,
        "unmanaged_fixed": 20.0,
        "unmanaged_share_past_due": 0.5,
        "capacity": None,
        "expected_cost_per_obligation": 0.0,
        "baseline_cost_per_obligation": 0.0,
        "no_assign_share": 0.0,
        "n_fit": 1,
    }
    pol = Policy.from_dict(old)
    assert pol.cost_rule is False
    assert list(decide([0.9], [1e9], [True], pol)) == [NO_ASSIGN]
    assert Policy.from_dict(pol.to_dict()) == pol


def test_threshold_never_below_the_minimum_probability():
    """With generous costs the optimum may sit below 0.5; NO_ASSIGN must still mean 'expected to
    self-cure', so the fit stops at the minimum."""
    p = np.array([0.9, 0.45, 0.4, 0.3])
    y = np.array([1, 1, 1, 0])
    a = np.zeros(4)
    free = fit_policy(p, y, a, COSTS)
    assert free.threshold < 0.5
    floored = fit_policy(p, y, a, COSTS, min_threshold=0.5)
    assert floored.threshold == 0.9
    # the reported costs are those of the chosen threshold
    assert floored.expected_cost_per_obligation == pytest.approx((0 + 10 * 3) / 4)


def test_decide_per_cut_applies_the_capacity_per_cut():
    policy = Policy(0.5, 10, 20, 0.5, 1, 0, 0, 0, 1)
    proba = np.array([0.1, 0.2, 0.9, 0.1, 0.3])
    cuts = ["2024-01-31", "2024-01-31", "2024-01-31", "2024-02-29", "2024-02-29"]
    decision, _ = decide_per_cut(proba, np.ones(5), np.ones(5, bool), cuts, policy)
    out = decision == NO_ASSIGN
    # cut 1: ASSIGN rows 0,1; capacity 1 keeps row 0; cut 2: keeps row 3
    assert out.tolist() == [False, True, True, False, True]


def test_decide_per_cut_gives_the_capacity_to_ineligible_rows_of_the_cut_first():
    """A cut's obligations without a mandate are ASSIGN by rule and use the team's capacity."""
    policy = Policy(0.5, 10, 20, 0.5, 2, 0, 0, 0, 1)
    proba = np.array([0.1, 0.2, 0.9, 0.1, 0.3])
    cuts = ["2024-01-31", "2024-01-31", "2024-01-31", "2024-02-29", "2024-02-29"]
    ineligible = {"2024-01-31": 1, "2024-02-29": 2}
    decision, _ = decide_per_cut(proba, np.ones(5), np.ones(5, bool), cuts, policy, ineligible)
    out = decision == NO_ASSIGN
    # cut 1: capacity 2, one taken by the ineligible row: row 0 (riskiest) kept, row 1 NO_ASSIGN
    # cut 2: the two ineligible rows take it all: rows 3 and 4 NO_ASSIGN
    assert out.tolist() == [False, True, True, True, True]
    # without a capacity the ineligible rows change nothing
    free = dataclasses.replace(policy, capacity=None)
    free_decision, _ = decide_per_cut(proba, np.ones(5), np.ones(5, bool), cuts, free, ineligible)
    assert (free_decision == NO_ASSIGN).tolist() == [
        False,
        False,
        True,
        False,
        False,
    ]
    # and the decisions equal the scoring rule over the cut's whole population
    p = np.array([0.1, 0.2, 0.9, np.nan])
    d, _ = decide_with_flags(p, np.ones(4), np.array([True, True, True, False]), policy)
    assert (d[:3] == "NO_ASSIGN").tolist() == out[:3].tolist()


def test_capacity_never_counts_nor_takes_holdout_rows():
    """Holdout rows are NO_ASSIGN (the control group), never capacity_limited, and the capacity
    goes to the riskiest of the other rows as if the holdout rows were not there."""
    policy = Policy(0.8, 10, 20, 0.5, 2, 0, 0, 0, 1)
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.95, 0.05])
    a = np.ones(6)
    e = np.ones(6, dtype=bool)
    held = np.array([True, False, False, False, True, False])
    d, limited = decide_with_flags(p, a, e, policy, holdout=held)
    # without the holdout: rows 0 and 5 (p 0.1, 0.05) would take the capacity; row 0 is held out,
    # so rows 5 and 1 keep it and rows 2, 3 overflow
    assert list(d) == [NO_ASSIGN, ASSIGN, NO_ASSIGN, NO_ASSIGN, NO_ASSIGN, ASSIGN]
    assert list(limited) == [False, False, True, True, False, False]
    others = ~held
    alone, alone_limited = decide_with_flags(p[others], a[others], e[others], policy)
    assert list(alone) == list(d[others]) and list(alone_limited) == list(limited[others])
    # per cut, the same rule; a holdout of a row that would be ASSIGN without capacity too
    cuts = ["2024-01-31"] * 3 + ["2024-02-29"] * 3
    per_cut, per_cut_limited = decide_per_cut(p, a, e, cuts, policy, holdout=held)
    assert list(per_cut) == [NO_ASSIGN, ASSIGN, ASSIGN, ASSIGN, NO_ASSIGN, ASSIGN]
    assert not per_cut_limited[held].any()
    with pytest.raises(PolicyError, match="holdout"):
        decide_with_flags(p, a, e, policy, holdout=held[:3])
