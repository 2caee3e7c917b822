"""The loss of the decision: the roll's cost on the exposure, and the benefit of managing."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from cobranza.config import Costs
from cobranza.decision import loss


def test_roll_loss_is_the_provision_step_on_the_balance_plus_the_later_collection_cost():
    costs = Costs(
        provision_step={"MORTGAGE": 0.01, "CREDIT_CARD": 0.05},
        default_provision_step=0.02,
        later_collection_cost=30_000,
    )
    got = loss.roll_loss(
        [10_000_000, 2_000_000, 1_000_000, np.nan],
        ["MORTGAGE", "CREDIT_CARD", "OTHER", "MORTGAGE"],
        costs,
    )
    assert got.tolist() == [130_000.0, 130_000.0, 50_000.0, 30_000.0]


def test_managing_pays_when_the_prevented_rolls_are_worth_more_than_the_action():
    costs = Costs(collection_action=8_000)
    roll_loss = np.array([100_000.0, 100_000.0, 100_000.0])
    benefit = loss.expected_benefit([0.5, 0.5, 0.3], [0.4, 0.45, 0.3], roll_loss, costs)
    assert benefit.tolist() == pytest.approx([2_000.0, -3_000.0, -8_000.0])


def test_expected_cost_of_a_decision_is_the_action_plus_the_rolls_it_leaves():
    costs = Costs(collection_action=8_000)
    got = loss.expected_cost([True, False], [0.5, 0.5], [0.4, 0.4], [100_000.0, 100_000.0], costs)
    assert got.tolist() == pytest.approx([48_000.0, 50_000.0])
    # The benefit is the difference between the two decisions' expected costs.
    benefit = loss.expected_benefit([0.5], [0.4], [100_000.0], costs)
    assert benefit[0] == pytest.approx(got[1] - got[0])


def test_realized_cost_charges_the_action_when_managed_and_the_loss_when_rolled():
    costs = Costs(collection_action=8_000)
    got = loss.realized_cost([1, 1, 0, 0], [1, 0, 1, 0], [100.0, 100.0, 100.0, 100.0], costs)
    assert got.tolist() == [8_100.0, 8_000.0, 100.0, 0.0]


def test_a_provision_step_outside_zero_to_one_is_refused():
    with pytest.raises(ValidationError, match="between 0 and 1"):
        Costs(provision_step={"MORTGAGE": 1.5})
