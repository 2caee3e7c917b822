"""The promotion gate: the rule on hand-built intervals (gain, non-inferiority within the margins,
refusal naming the interval), and the comparison of two models on the same rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cobranza.config import Costs, Gate, load_settings
from cobranza.decision.policy import Policy
from cobranza.decision.value import (
    PolicyValue,
    ValueComparison,
    compare_policies,
    randomized_rows_of,
)
from cobranza.ml import stats as S
from cobranza.ml.gate import (
    GAIN,
    NON_INFERIOR,
    REFUSED,
    Comparison,
    compare,
    decide_with_policy,
    evaluate_gate,
)
from cobranza.ml.stats import Interval

GATE = Gate(auc_margin=0.005, value_margin=200, max_ece=0.03, max_psi=0.25)
GOOD = {"oot_auc": 0.80, "oot_ece": 0.01, "psi": 0.05}


def same_rows(low: float, high: float, saving: tuple[float, float] | None = None) -> Comparison:
    """Champion v3 and a challenger on 1,000 rows: AUC 0.80 against 0.80 + the difference."""
    mid = (low + high) / 2
    value = None
    if saving is not None:
        cost = PolicyValue(Interval(10_000.0, 9_000.0, 11_000.0), 400, 300)
        value = ValueComparison(cost, cost, Interval(sum(saving) / 2, *saving))
    return Comparison("3", 1000, 0.80, 0.80 + mid, Interval(mid, low, high), value)


def test_first_version_passes_on_ece_and_psi_only():
    result = evaluate_gate({**GOOD, "oot_auc": 0.55}, GATE)
    assert result.passed and "first champion" in result.reason
    assert result.verdict == "first champion" and result.champion_version is None


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ({**GOOD, "oot_ece": 0.031}, "OOT ECE 0.0310 > max_ece 0.0300"),
        ({**GOOD, "psi": 0.3}, "PSI 0.3000 > max_psi 0.2500"),
        ({**GOOD, "oot_auc": float("nan")}, "oot_auc is missing"),
    ],
)
def test_first_version_fails_with_reason(candidate, reason):
    result = evaluate_gate(candidate, GATE)
    assert not result.passed
    assert reason in result.reason


def test_an_auc_interval_above_zero_is_a_real_gain():
    result = evaluate_gate(GOOD, GATE, same_rows(0.004, 0.02))
    assert result.passed and result.verdict == GAIN
    assert result.reason.startswith(
        "real gain in AUC on the same 1,000 out-of-time rows as champion v3"
    )
    assert "challenger - champion +0.0120 (95% CI +0.0040 to +0.0200)" in result.reason
    assert "net value not compared" in result.reason
    assert "margins AUC -0.0050, net value -200 COP" in result.reason
    assert result.champion_version == "3" and result.champion_oot_auc == 0.80


def test_an_interval_around_zero_within_the_margin_is_non_inferior():
    result = evaluate_gate(GOOD, GATE, same_rows(-0.004, 0.004, saving=(-150, 150)))
    assert result.passed and result.verdict == NON_INFERIOR
    assert result.reason.startswith("non-inferior within the margins on the same 1,000")
    assert "challenger saves +0 (95% CI -150 to +150) COP per obligation" in result.reason
    identical = evaluate_gate(GOOD, GATE, same_rows(0.0, 0.0, saving=(0.0, 0.0)))
    assert identical.passed and identical.verdict == NON_INFERIOR


def test_a_lower_bound_below_the_auc_margin_is_refused_naming_the_interval():
    result = evaluate_gate(GOOD, GATE, same_rows(-0.03, -0.01))
    assert not result.passed and result.verdict == REFUSED and result.alias == "challenger"
    assert "AUC interval lower bound -0.0300 below the margin -0.0050" in result.reason
    assert "(95% CI -0.0300 to -0.0100)" in result.reason
    both = evaluate_gate({**GOOD, "psi": 0.9}, GATE, same_rows(-0.03, -0.01))
    assert "PSI" in both.reason and "AUC interval" in both.reason


def test_net_value_can_carry_a_gain_or_refuse_one():
    value_gain = evaluate_gate(GOOD, GATE, same_rows(-0.003, 0.003, saving=(50, 400)))
    assert value_gain.passed and value_gain.verdict == GAIN
    assert value_gain.reason.startswith("real gain in net value")
    costly = evaluate_gate(GOOD, GATE, same_rows(0.01, 0.03, saving=(-900, -300)))
    assert not costly.passed
    assert "net value interval lower bound -900 COP below the margin -200" in costly.reason
    # a value gain does not excuse a worse ranking beyond the margin
    worse = evaluate_gate(GOOD, GATE, same_rows(-0.03, -0.01, saving=(50, 400)))
    assert not worse.passed and "AUC interval lower bound -0.0300" in worse.reason


def test_a_champion_that_cannot_be_compared_refuses_the_promotion():
    problem = Comparison("3", 1000, problem="champion v3 cannot score these rows (KeyError: x)")
    result = evaluate_gate(GOOD, GATE, problem)
    assert not result.passed and result.verdict == REFUSED
    assert "not compared with champion v3: champion v3 cannot score these rows" in result.reason
    tags = result.tags(GATE)
    assert tags["gate_verdict"] == "refused" and "KeyError" in tags["gate_problem"]


def test_the_evidence_goes_to_tags_with_the_margins():
    tags = evaluate_gate(GOOD, GATE, same_rows(0.004, 0.02, saving=(-10, 30))).tags(GATE)
    assert tags["gate_verdict"] == "gain"
    assert float(tags["gate_auc_difference_low"]) == 0.004
    assert float(tags["gate_value_saving_low"]) == -10
    assert float(tags["gate_auc_margin"]) == 0.005 and float(tags["gate_value_margin"]) == 200
    assert tags["gate_champion_version"] == "3" and tags["gate_rows"] == "1000"


def test_ece_limit_widens_only_to_the_sampling_noise_of_the_oot_sample():
    noisy = {**GOOD, "oot_ece": 0.04, "oot_ece_noise": 0.045}
    result = evaluate_gate(noisy, GATE)
    assert result.passed
    assert "sampling noise" in result.reason
    beyond = evaluate_gate({**noisy, "oot_ece": 0.05}, GATE)
    assert not beyond.passed
    assert "OOT ECE 0.0500 > 0.0450 (sampling noise on this OOT size; max_ece 0.0300)" in (
        beyond.reason
    )
    strict = evaluate_gate({**GOOD, "oot_ece": 0.031, "oot_ece_noise": 0.01}, GATE)
    assert not strict.passed and "max_ece 0.0300" in strict.reason


class Scored:
    """A registered model as the gate sees it: a version, and (here) its scores and decisions."""

    def __init__(self, version, p, assign):
        self.version, self.p, self.assign = version, np.asarray(p), np.asarray(assign, dtype=bool)


def scored(model, frame):
    return model.p, model.assign


def treatment_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    frame = pd.DataFrame(
        {
            "cut_date": pd.to_datetime(np.where(np.arange(n) < n // 2, "2025-10-31", "2025-11-30")),
            "arm": np.where(rng.random(n) < 0.2, "HOLDOUT", "ASSIGNED"),
            "roll_31_plus": (rng.random(n) < 0.3).astype(np.int64),
            "outstanding_balance": rng.lognormal(14, 0.5, n),
            "product": rng.choice(["MORTGAGE", "CREDIT_CARD"], n),
            "amount_past_due": rng.lognormal(12, 0.5, n),
        }
    )
    return frame, (rng.random(n) < p).astype(np.int64), p


def test_compare_scores_both_models_on_the_same_rows_and_values_their_decisions():
    frame, y, p = treatment_frame()
    settings = load_settings(gate={"resamples": 300})
    champion = Scored("4", p, p < 0.5)
    challenger = Scored("5", p + np.random.default_rng(1).normal(0, 0.2, len(p)), p < 0.7)
    got = compare(champion, challenger, frame, y, scored, settings)
    assert got.champion_version == "4" and got.rows == len(frame) and got.problem is None
    expected = S.auc_difference(y, challenger.p, champion.p, 300, settings.seed)
    assert got.auc_difference == expected
    rows = randomized_rows_of(frame, settings.costs)
    value = compare_policies(rows, challenger.assign, champion.assign, 300, settings.seed)
    assert got.value == value and got.value.a.rows == len(frame)
    assert got.to_dict()["value"]["saving"]["estimate"] == pytest.approx(value.saving.estimate)


def test_compare_without_randomized_rows_leaves_the_value_out():
    frame, y, p = treatment_frame()
    settings = load_settings(gate={"resamples": 100})
    got = compare(Scored("4", p, p < 0.5), Scored("5", p, p < 0.5), frame.drop(columns="arm"), y,
                  scored, settings)  # fmt: skip
    assert got.value is None and got.auc_difference.low == got.auc_difference.high == 0.0
    assert "net value not compared" in got.value_text()


def test_a_champion_that_cannot_score_the_rows_is_a_comparison_problem():
    frame, y, p = treatment_frame(50)

    class Unscorable:
        version = "4"

    got = compare(Unscorable(), Scored("5", p, p < 0.5), frame, y, scored, load_settings())
    assert got.problem.startswith("champion v4 cannot score these rows (AttributeError: ")
    assert not evaluate_gate(GOOD, GATE, got).passed


def test_decide_with_policy_gives_the_effect_aware_decisions():
    """NO_ASSIGN exactly where the model's roll risks make managing not pay under the costs."""
    frame, _, p = treatment_frame(20)

    class Model:
        def predict_proba(self, X):
            return np.column_stack([1 - X["score"].to_numpy(), X["score"].to_numpy()])

    class Roll:
        def predict_outcomes(self, X):
            return X["score"].to_numpy(), X["score"].to_numpy() * 0.5

    costs = Costs(collection_action=8000, later_collection_cost=100_000, provision_step={})
    frame = frame.assign(score=p, outstanding_balance=0.0, product="CONSUMER_LOAN")

    class Registered:
        model, roll, features, version = Model(), Roll(), ["score"], "1"
        policy = Policy.of(costs).to_dict()

    proba, assign = decide_with_policy(Registered(), frame, costs)
    assert np.array_equal(proba, p)
    # benefit = (p - p/2) x 100,000 - 8,000: managing pays from p = 0.16 up
    assert np.array_equal(assign, p * 0.5 * 100_000 - 8000 >= 0)


def test_a_challenger_without_an_identified_effect_is_refused_against_one_with_it():
    """Whatever the intervals: its policy would assign everyone on no evidence."""
    gain = same_rows(0.004, 0.02, saving=(50, 400))
    unidentified = dataclasses.replace(gain, challenger_effect_identified=False)
    result = evaluate_gate(GOOD, GATE, unidentified)
    assert not result.passed and result.verdict == REFUSED
    assert "effect of management is not identified" in result.reason
    tags = result.tags(GATE)
    assert tags["gate_challenger_effect_identified"] == "false"
    assert tags["gate_champion_effect_identified"] == "true"
    # against a champion without an identified effect either, the intervals decide as before
    neither = dataclasses.replace(unidentified, champion_effect_identified=False)
    assert evaluate_gate(GOOD, GATE, neither).verdict == GAIN
