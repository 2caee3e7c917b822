"""What a set of decisions saves against the bank's current rule of assigning everyone.

All figures are under the loss of `decision.loss`: an ASSIGN row costs the action plus its roll
risk with management, a NO_ASSIGN row its roll risk without management, each roll valued at the
row's roll loss. Three valuations, pure NumPy on arrays:

- `expected_impact`: from the model's own probabilities (no labels needed), the net savings split
  into what the policy's decisions save and what the experiment's holdout costs (below);
- `true_impact`: from the simulator's true probabilities of both potential outcomes, beside the
  oracle (the Bayes rule on those true probabilities: NO_ASSIGN iff the true expected benefit of
  managing is negative), the naive rule and the no-model rule, each reported as the share of the
  oracle's savings it captures: (cost(assign all) - cost(rule)) / (cost(assign all) - cost(oracle));
- `realized_impact`: what happened under the arm each row was actually in (monitoring): the
  realized cost per obligation and the roll rate, by decision.

The holdout's cost. Rows of the experiment's control group (`decision.experiment`, arm HOLDOUT)
are left unmanaged whatever the policy says. With `P` the policy's decisions on every row (a
holdout row as the policy would decide it) and `A` the decisions taken (`P`, with the holdout
NO_ASSIGN):

    expected_savings_without_holdout = cost(assign all) - cost(P)
    expected_holdout_cost            = cost(A) - cost(P)
                                     = sum of expected_benefit over the holdout rows P ASSIGNs
    expected_net_savings             = cost(assign all) - cost(A)
                                     = expected_savings_without_holdout - expected_holdout_cost

A holdout row adds its expected benefit of managing where the policy ASSIGNs it, nothing
elsewhere: its cost is >= 0 wherever management pays, and negative only on a row the policy
ASSIGNs although managing does not pay (an effect not identified: the policy assigns everyone).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cobranza.config import Costs
from cobranza.decision.loss import expected_benefit, expected_cost, realized_cost


def _money(x: float) -> float:
    return round(float(x), 2)


def _share(saved: float, best: float) -> float | None:
    return round(saved / best, 6) if best > 0 else None


def expected_impact(
    no_assign, p_roll_no_action, p_roll_action, loss, costs: Costs, holdout=None
) -> dict[str, Any]:
    """Expected figures of the decisions from the model's probabilities, against assigning all.

    `no_assign`: the policy's decisions, a holdout row as the policy would decide it;
    `holdout`: the rows of the experiment's control group (None: none), left unmanaged. The
    decisions taken are `no_assign | holdout`: the counts, costs and net savings are theirs, and
    the net savings are split as in the module docstring.
    """
    policy_no_assign = np.asarray(no_assign, dtype=bool)
    n = len(policy_no_assign)
    held = np.zeros(n, bool) if holdout is None else np.asarray(holdout, dtype=bool)
    if len(held) != n:
        raise ValueError(f"no_assign and holdout differ in length ({n}, {len(held)})")
    taken = policy_no_assign | held
    everyone = expected_cost(np.ones(n, bool), p_roll_no_action, p_roll_action, loss, costs).sum()
    policy = expected_cost(~policy_no_assign, p_roll_no_action, p_roll_action, loss, costs).sum()
    actual = expected_cost(~taken, p_roll_no_action, p_roll_action, loss, costs).sum()
    p_no = np.asarray(p_roll_no_action, dtype=np.float64)
    p_act = np.asarray(p_roll_action, dtype=np.float64)
    net = _money(everyone - actual)
    without_holdout = _money(everyone - policy)
    return {
        "rows": n,
        "no_assign": int(taken.sum()),
        "no_assign_share": round(float(taken.mean()), 6) if n else 0.0,
        "actions_avoided_cost": _money(taken.sum() * costs.collection_action),
        "expected_extra_rolls": round(float((p_no - p_act)[taken].sum()), 2),
        "expected_extra_roll_cost": _money(((p_no - p_act) * np.asarray(loss))[taken].sum()),
        "expected_baseline_cost": _money(everyone),
        "expected_policy_cost": _money(actual),
        "expected_net_savings": net,
        "holdout": int(held.sum()),
        "expected_savings_without_holdout": without_holdout,
        # from the two rounded figures, so that the identity holds on the published numbers
        "expected_holdout_cost": _money(without_holdout - net),
    }


def true_impact(
    rules: dict[str, np.ndarray], true_p_roll_no_action, true_p_roll_action, loss, costs: Costs
) -> dict[str, Any]:
    """Each rule's NO_ASSIGN set valued with the true probabilities, beside the oracle's.

    `rules` maps a name ("policy", "naive", "no_model", ...) to its NO_ASSIGN mask; the result
    holds, per name, `<name>_true_net_savings` and `<name>_share_of_oracle_captured` (the policy's
    without prefix: `share_of_oracle_captured`), and the oracle's own figures.
    """
    p_no = np.asarray(true_p_roll_no_action, dtype=np.float64)
    p_act = np.asarray(true_p_roll_action, dtype=np.float64)
    n = len(p_no)
    everyone = expected_cost(np.ones(n, bool), p_no, p_act, loss, costs).sum()
    oracle_no_assign = expected_benefit(p_no, p_act, loss, costs) < 0
    oracle_cost = expected_cost(~oracle_no_assign, p_no, p_act, loss, costs).sum()
    best = float(everyone - oracle_cost)
    out: dict[str, Any] = {
        "truth_rows": n,
        "true_baseline_cost": _money(everyone),
        "oracle_no_assign_share": round(float(oracle_no_assign.mean()), 6) if n else 0.0,
        "oracle_net_savings": _money(best),
        "true_mean_effect_on_roll": round(float((p_no - p_act).mean()), 6) if n else None,
    }
    for name, no_assign in rules.items():
        mask = np.asarray(no_assign, dtype=bool)
        saved = float(everyone - expected_cost(~mask, p_no, p_act, loss, costs).sum())
        prefix = "" if name == "policy" else f"{name}_"
        out[f"{prefix}true_net_savings"] = _money(saved)
        out[f"{prefix}share_of_oracle_captured"] = _share(saved, best)
    return out


def realized_impact(assigned, roll_31_plus, self_cure_debit, loss, costs: Costs) -> dict[str, Any]:
    """Realized figures of rows whose outcome is known, under the arm each was in."""
    a = np.asarray(assigned, dtype=bool)
    rolled = np.asarray(roll_31_plus, dtype=np.float64)
    cured = np.asarray(self_cure_debit, dtype=np.float64)
    cost = realized_cost(a, rolled, loss, costs)
    n = len(a)
    return {
        "rows": n,
        "self_cure_rate": round(float(cured.mean()), 6) if n else None,
        "roll_rate": round(float(rolled.mean()), 6) if n else None,
        "managed_share": round(float(a.mean()), 6) if n else None,
        "realized_cost": _money(cost.sum()),
        "realized_cost_per_obligation": _money(cost.mean()) if n else None,
    }
