"""The loss of the assignment decision: what managing costs and what not managing loses.

Not managing an early-delinquent obligation risks a roll to 31+ days past due, which IFRS 9's
30-days backstop moves to stage 2. The loss of a roll (pesos, `config.Costs`) is

    roll_loss = outstanding_balance x provision_step[product] + later_collection_cost

With `p_roll_no_action` and `p_roll_action` the probabilities of rolling without and with
management, the expected cost of each decision is

    cost(NO_ASSIGN) = p_roll_no_action x roll_loss
    cost(ASSIGN)    = collection_action + p_roll_action x roll_loss

(managing costs the action plus the rolls management cannot prevent), so the expected net benefit
of managing is

    benefit = (p_roll_no_action - p_roll_action) x roll_loss - collection_action

and the decision is NO_ASSIGN iff benefit < 0. The realized cost of a row whose outcome is known
replaces the probabilities by what happened under the arm it was actually in.
"""

from __future__ import annotations

import numpy as np

from cobranza.config import Costs


def provision_rate(product, costs: Costs) -> np.ndarray:
    """The provision step of each row's product (`default_provision_step` for unlisted ones)."""
    products = np.asarray(product, dtype=object).ravel()
    steps = costs.provision_step
    default = float(costs.default_provision_step)
    return np.array([steps.get(str(p), default) for p in products], dtype=np.float64)


def roll_loss(outstanding_balance, product, costs: Costs) -> np.ndarray:
    """What a roll to 31+ days past due costs: the provision step on the balance plus the later
    collection cost. A missing balance counts as zero exposure (only the later collection cost)."""
    balance = np.nan_to_num(np.asarray(outstanding_balance, dtype=np.float64).ravel())
    return balance * provision_rate(product, costs) + float(costs.later_collection_cost)


def expected_benefit(p_roll_no_action, p_roll_action, loss, costs: Costs) -> np.ndarray:
    """The expected net benefit of managing: the rolls it prevents, valued, minus the action."""
    p_no = np.asarray(p_roll_no_action, dtype=np.float64).ravel()
    p_act = np.asarray(p_roll_action, dtype=np.float64).ravel()
    return (p_no - p_act) * np.asarray(loss, dtype=np.float64).ravel() - float(
        costs.collection_action
    )


def expected_cost(assign, p_roll_no_action, p_roll_action, loss, costs: Costs) -> np.ndarray:
    """The expected cost of each row under the given decisions (True = ASSIGN)."""
    a = np.asarray(assign, dtype=bool).ravel()
    p = np.where(
        a,
        np.asarray(p_roll_action, dtype=np.float64).ravel(),
        np.asarray(p_roll_no_action, dtype=np.float64).ravel(),
    )
    return a * float(costs.collection_action) + p * np.asarray(loss, dtype=np.float64).ravel()


def realized_cost(assigned, roll_31_plus, loss, costs: Costs) -> np.ndarray:
    """The cost of each row as it happened: the action when it was managed, the loss when it rolled."""
    a = np.asarray(assigned, dtype=bool).ravel()
    rolled = np.asarray(roll_31_plus, dtype=np.float64).ravel()
    return a * float(costs.collection_action) + rolled * np.asarray(loss, dtype=np.float64).ravel()
