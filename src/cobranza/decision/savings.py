"""What a set of decisions saves against the bank's current rule of assigning everyone.

Realized figures (from the labels: actions avoided, leakage and their costs, net savings), expected
figures (from the probabilities, no labels needed) and the oracle's (the Bayes rule on the true
probabilities of the simulator, under the same costs). Pure NumPy on hand-built arrays: the impact
command, monitoring's realized performance and the API's monitoring route use them alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cobranza.config import Costs
from cobranza.decision.policy import unmanaged_loss


def _money(x: float) -> float:
    return round(float(x), 2)


def realized_impact(
    no_assign: np.ndarray, y: np.ndarray, amount_past_due: np.ndarray, costs: Costs
) -> dict[str, Any]:
    """Realized figures of a set of NO_ASSIGN decisions against assigning everyone."""
    no_assign = np.asarray(no_assign, dtype=bool)
    y = np.asarray(y, dtype=np.int64)
    loss = unmanaged_loss(amount_past_due, costs)
    n = len(no_assign)
    avoided = int(no_assign.sum())
    leaked = no_assign & (y == 0)
    avoided_cost = avoided * costs.collection_action
    leakage_cost = float(loss[leaked].sum())
    baseline = n * costs.collection_action
    return {
        "rows": n,
        "self_cure_rate": round(float(y.mean()), 6) if n else None,
        "no_assign": avoided,
        "no_assign_share": round(avoided / n, 6) if n else 0.0,
        "actions_avoided": avoided,
        "actions_avoided_cost": _money(avoided_cost),
        "leakage": int(leaked.sum()),
        "leakage_rate": round(float(leaked.sum() / avoided), 6) if avoided else 0.0,
        "leakage_cost": _money(leakage_cost),
        "baseline_cost": _money(baseline),
        "policy_cost": _money(baseline - avoided_cost + leakage_cost),
        "net_savings": _money(avoided_cost - leakage_cost),
    }


def expected_impact(
    no_assign: np.ndarray, proba: np.ndarray, amount_past_due: np.ndarray, costs: Costs
) -> dict[str, Any]:
    """Expected figures from the probabilities (no labels needed)."""
    no_assign = np.asarray(no_assign, dtype=bool)
    p = np.asarray(proba, dtype=np.float64)
    loss = unmanaged_loss(amount_past_due, costs)
    avoided = int(no_assign.sum())
    avoided_cost = avoided * costs.collection_action
    leakage = float((1.0 - p[no_assign]).sum())
    leakage_cost = float(((1.0 - p[no_assign]) * loss[no_assign]).sum())
    return {
        "expected_actions_avoided": avoided,
        "expected_actions_avoided_cost": _money(avoided_cost),
        "expected_leakage": round(leakage, 2),
        "expected_leakage_cost": _money(leakage_cost),
        "expected_net_savings": _money(avoided_cost - leakage_cost),
    }


def oracle_no_assign(p_true: np.ndarray, amount_past_due: np.ndarray, costs: Costs) -> np.ndarray:
    """The Bayes decision on the true probability: NO_ASSIGN iff expected loss < one action."""
    p = np.asarray(p_true, dtype=np.float64)
    return (1.0 - p) * unmanaged_loss(amount_past_due, costs) < costs.collection_action


def oracle_figures(
    policy_savings: float, p_true: np.ndarray, y, amount_past_due, costs: Costs
) -> dict[str, Any]:
    """The oracle's realized savings on the same rows and the share the policy captures."""
    oracle = realized_impact(
        oracle_no_assign(p_true, amount_past_due, costs), y, amount_past_due, costs
    )
    savings = oracle["net_savings"]
    return {
        "oracle_no_assign_share": oracle["no_assign_share"],
        "oracle_net_savings": savings,
        "oracle_leakage_cost": oracle["leakage_cost"],
        "share_of_oracle_captured": round(policy_savings / savings, 6) if savings > 0 else None,
    }
