"""The cost-based assignment policy: the threshold that minimizes realized cost, and the decision rule.

Costs of one obligation (pesos, `config.Costs`):
- ASSIGN (sent to collections) costs `collection_action`, whatever happens next;
- NO_ASSIGN (left to the recurring debit) costs nothing when it self-cures, and
  `unmanaged_fixed + unmanaged_share_past_due * amount_past_due` when it does not.

Rule: NO_ASSIGN iff calibrated probability >= threshold (never below `costs.min_probability`,
0.5: NO_ASSIGN means the client is expected to self-cure) and, with the cost rule (`cost_rule`, on
for models trained since it exists), the expected loss of leaving it unmanaged, (1 - p) x loss,
is below one collection action: the client is expected to self-cure through the debit AND
managing would cost more than it is expected to save. A large amount past due is therefore
managed even at a high probability; the threshold alone would leave it, whatever the stake. The
threshold is chosen on labeled (test split) data among the distinct predicted probabilities (plus
"never NO_ASSIGN", threshold = +inf), under the same rule: sorting by probability descending makes
every candidate NO_ASSIGN set a prefix of the rows the cost rule allows, so the cost of all
candidates comes from one cumulative sum. Ties in cost go to the higher threshold (fewer
NO_ASSIGN: the bank's current practice is the safe side).

Capacity (`costs.daily_capacity`, obligations the team can manage per cut) binds at decision time,
per scored cut, not when fitting: the threshold stays the cost optimum and, when the ASSIGN set of a
cut is larger than the capacity, the riskiest obligations (lowest probability; larger amount first on
ties) keep the capacity and the least risky ones beyond it become NO_ASSIGN, flagged
`capacity_limited`. Ineligible obligations (no active mandate) are ASSIGN by rule and take capacity
first: the debit cannot cure them. Rows of the experiment's holdout (`holdout`, see
`decision.experiment`) are NO_ASSIGN as a control group and stay out of the capacity.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from cobranza.config import Costs
from cobranza.errors import CobranzaError

ASSIGN = "ASSIGN"
NO_ASSIGN = "NO_ASSIGN"


class PolicyError(CobranzaError):
    """Inputs the policy cannot be fitted or applied on (lengths differ, missing probabilities...)."""


@dataclass(frozen=True)
class Policy:
    """A fitted threshold with the costs it was fitted under; `to_dict` is JSON-safe (inf -> None)."""

    threshold: float
    collection_action: float
    unmanaged_fixed: float
    unmanaged_share_past_due: float
    capacity: int | None
    expected_cost_per_obligation: float
    baseline_cost_per_obligation: float
    no_assign_share: float
    n_fit: int
    cost_rule: bool = False  # policies logged before the rule existed decide by threshold only

    @property
    def costs(self) -> Costs:
        return Costs(
            collection_action=self.collection_action,
            unmanaged_fixed=self.unmanaged_fixed,
            unmanaged_share_past_due=self.unmanaged_share_past_due,
            daily_capacity=self.capacity,
            cost_rule=self.cost_rule,
        )

    @property
    def savings_per_obligation(self) -> float:
        """Against the bank's current policy of assigning everyone."""
        return self.baseline_cost_per_obligation - self.expected_cost_per_obligation

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not math.isfinite(data["threshold"]):
            data["threshold"] = None  # never NO_ASSIGN; JSON has no infinity
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        missing = known - values.keys() - {"cost_rule"}
        if missing:
            raise PolicyError(f"policy record lacks {', '.join(sorted(missing))}")
        values["threshold"] = (
            math.inf if values["threshold"] is None else float(values["threshold"])
        )
        values["capacity"] = None if values["capacity"] is None else int(values["capacity"])
        return cls(**values)


def champion_policy(champion: Any, capacity: int | None = None) -> Policy:
    """The champion's policy as a `Policy`, with today's capacity when one is given."""
    policy = champion.policy
    if policy is None:
        raise PolicyError(
            f"champion version {champion.version} has no decision policy logged; retrain it"
        )
    if isinstance(policy, dict):
        policy = Policy.from_dict(policy)
    if capacity is not None:
        policy = dataclasses.replace(policy, capacity=int(capacity))
    return policy


def unmanaged_loss(amount_past_due: np.ndarray, costs: Costs) -> np.ndarray:
    """Cost of leaving an obligation unmanaged when it does not self-cure."""
    amount = np.asarray(amount_past_due, dtype=np.float64)
    return costs.unmanaged_fixed + costs.unmanaged_share_past_due * np.nan_to_num(amount)


def expected_unmanaged_loss(proba, amount_past_due, costs: Costs) -> np.ndarray:
    """(1 - p) x the unmanaged loss: what leaving a row to the debit is expected to cost."""
    p = np.nan_to_num(np.asarray(proba, dtype=np.float64), nan=0.0)
    return (1.0 - p) * unmanaged_loss(amount_past_due, costs)


def cost_rule_allows(proba, amount_past_due, costs: Costs) -> np.ndarray:
    """Rows the cost rule lets be NO_ASSIGN: expected loss unmanaged below one collection action."""
    return expected_unmanaged_loss(proba, amount_past_due, costs) < costs.collection_action


def _as_arrays(proba, y, amount_past_due) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.asarray(proba, dtype=np.float64).ravel()
    t = np.asarray(y, dtype=np.float64).ravel()
    a = np.asarray(amount_past_due, dtype=np.float64).ravel()
    if not (len(p) == len(t) == len(a)):
        raise PolicyError(
            f"proba, y and amount_past_due differ in length ({len(p)}, {len(t)}, {len(a)})"
        )
    if len(p) == 0:
        raise PolicyError("cannot fit a policy on zero labeled obligations")
    if np.isnan(p).any():
        raise PolicyError(f"{int(np.isnan(p).sum())} probabilities are missing (NaN)")
    if np.isnan(t).any() or not np.isin(t, (0.0, 1.0)).all():
        raise PolicyError("y (self_cure_debit) must be 0 or 1 on every row, no nulls")
    if (a < 0).any():
        raise PolicyError("amount_past_due must be >= 0")
    return p, t, np.nan_to_num(a)


def cost_curve(
    proba, y, amount_past_due, costs: Costs, cost_rule: bool = False
) -> dict[str, np.ndarray]:
    """Realized total cost for every candidate threshold, highest threshold first.

    `threshold[0]` is +inf (assign everyone); then each distinct probability, descending.
    `cost[i]` is the realized cost when NO_ASSIGN = {proba >= threshold[i]} (and, with
    `cost_rule`, allowed by `cost_rule_allows`); `no_assign[i]` how many rows that is;
    `leakage[i]` how many of them did not self-cure. Also the expected cost computed from the
    probabilities themselves (`expected_cost`), which needs no labels.
    """
    p, t, a = _as_arrays(proba, y, amount_past_due)
    order = np.argsort(-p, kind="stable")
    ps, ts = p[order], t[order]
    loss = unmanaged_loss(a[order], costs)
    allowed = (
        cost_rule_allows(ps, a[order], costs) if cost_rule else np.ones(len(p), dtype=bool)
    ).astype(np.float64)
    n = len(p)
    # Candidate k = rows with p >= threshold (a prefix of the descending order); valid only where
    # the next probability differs, so that the prefix is exactly {p >= ps[k-1]}. The rows the cost
    # rule refuses stay ASSIGN inside the prefix.
    last_of_value = np.r_[ps[1:] != ps[:-1], True]
    k = np.r_[0, np.flatnonzero(last_of_value) + 1]
    realized_leak = np.r_[0.0, np.cumsum((1.0 - ts) * loss * allowed)]
    expected_leak = np.r_[0.0, np.cumsum((1.0 - ps) * loss * allowed)]
    leak_count = np.r_[0, np.cumsum((1 - ts.astype(np.int64)) * allowed.astype(np.int64))]
    no_assign = np.r_[0, np.cumsum(allowed.astype(np.int64))][k]
    assign_cost = costs.collection_action * (n - no_assign)
    return {
        "threshold": np.r_[np.inf, ps[k[1:] - 1]],
        "no_assign": no_assign,
        "leakage": leak_count[k],
        "cost": assign_cost + realized_leak[k],
        "expected_cost": assign_cost + expected_leak[k],
    }


def fit_policy(
    proba, y, amount_past_due, costs: Costs, cost_rule: bool = False, min_threshold: float = 0.0
) -> Policy:
    """The threshold minimizing realized cost on the given labeled rows (eligible test split),
    under the plain threshold rule or, with `cost_rule`, the threshold and the cost rule; never
    below `min_threshold` (NO_ASSIGN must mean "expected to self-cure")."""
    curve = cost_curve(proba, y, amount_past_due, costs, cost_rule)
    cost = np.where(curve["threshold"] >= min_threshold, curve["cost"], np.inf)
    best = int(np.flatnonzero(cost == cost.min())[0])  # first = highest threshold among ties
    n = len(np.asarray(proba).ravel())
    return Policy(
        threshold=float(curve["threshold"][best]),
        collection_action=float(costs.collection_action),
        unmanaged_fixed=float(costs.unmanaged_fixed),
        unmanaged_share_past_due=float(costs.unmanaged_share_past_due),
        capacity=costs.daily_capacity,
        expected_cost_per_obligation=float(curve["cost"][best] / n),
        baseline_cost_per_obligation=float(curve["cost"][0] / n),
        no_assign_share=float(curve["no_assign"][best] / n),
        n_fit=n,
        cost_rule=bool(cost_rule),
    )


def decide_with_flags(
    proba, amount_past_due, eligible, policy: Policy, holdout=None
) -> tuple[np.ndarray, np.ndarray]:
    """Decisions and the `capacity_limited` flag (NO_ASSIGN only because the team was full).

    Call it once per cut: the capacity is per cut. `holdout` rows (the experiment's control group,
    `decision.experiment`) are NO_ASSIGN whatever their probability, never capacity_limited, and
    neither counted in nor taken by the capacity.
    """
    p = np.asarray(proba, dtype=np.float64).ravel()
    a = np.nan_to_num(np.asarray(amount_past_due, dtype=np.float64).ravel())
    e = np.asarray(eligible, dtype=bool).ravel()
    if not (len(p) == len(a) == len(e)):
        raise PolicyError(
            f"proba, amount_past_due and eligible differ in length ({len(p)}, {len(a)}, {len(e)})"
        )
    if np.isnan(p[e]).any():
        raise PolicyError(
            f"{int(np.isnan(p[e]).sum())} eligible obligations have no probability (NaN)"
        )
    held = np.zeros(len(p), dtype=bool) if holdout is None else np.asarray(holdout, dtype=bool)
    if len(held) != len(p):
        raise PolicyError(f"holdout has {len(held)} rows, proba {len(p)}")
    no_assign = e & (p >= policy.threshold)
    if policy.cost_rule:
        no_assign &= cost_rule_allows(p, a, policy.costs)
    no_assign |= held
    limited = np.zeros(len(p), dtype=bool)
    cap = policy.capacity
    if cap is not None:
        assign_idx = np.flatnonzero(~no_assign)  # holdout rows are NO_ASSIGN: never ranked
        if len(assign_idx) > cap:
            # Riskiest first: ineligible (rule), then lowest probability, then larger amount.
            pa = np.where(e[assign_idx], p[assign_idx], -np.inf)
            ranked = assign_idx[np.lexsort((-a[assign_idx], pa))]
            overflow = ranked[cap:]
            overflow = overflow[e[overflow]]  # ineligible rows stay ASSIGN by rule
            no_assign[overflow] = True
            limited[overflow] = True
    return np.where(no_assign, NO_ASSIGN, ASSIGN).astype(object), limited


def decide_per_cut(
    proba,
    amount_past_due,
    eligible,
    cut_dates,
    policy: Policy,
    ineligible_per_cut: dict[Any, int] | None = None,
    holdout=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decisions and `capacity_limited` flags of rows of several cuts: `decide_with_flags` on the
    rows of each cut date, since the capacity is per cut; `holdout` as there.

    `ineligible_per_cut[cut]` counts obligations of that cut that are not among these rows and are
    ASSIGN by rule (impact decides on the eligible rows alone): with a capacity they take it first,
    exactly as they do when the whole cut is scored.
    """
    p = np.asarray(proba, dtype=np.float64).ravel()
    a = np.asarray(amount_past_due, dtype=np.float64).ravel()
    e = np.asarray(eligible, dtype=bool).ravel()
    days = np.asarray(cut_dates, dtype="datetime64[D]").ravel()
    held = np.zeros(len(p), dtype=bool) if holdout is None else np.asarray(holdout, dtype=bool)
    decision = np.full(len(p), ASSIGN, dtype=object)
    limited = np.zeros(len(p), dtype=bool)
    extra_of = {
        np.datetime64(cut, "D"): int(n)
        for cut, n in (ineligible_per_cut or {}).items()
        if policy.capacity is not None
    }
    cuts, group = np.unique(days, return_inverse=True)
    for g, cut in enumerate(cuts):
        rows = np.flatnonzero(group == g)
        extra = extra_of.get(cut, 0)
        d, lim = decide_with_flags(
            np.concatenate([p[rows], np.full(extra, np.nan)]),
            np.concatenate([a[rows], np.zeros(extra)]),
            np.concatenate([e[rows], np.zeros(extra, dtype=bool)]),
            policy,
            np.concatenate([held[rows], np.zeros(extra, dtype=bool)]),
        )
        decision[rows], limited[rows] = d[: len(rows)], lim[: len(rows)]
    return decision, limited


def cost_ruled(proba, amount_past_due, eligible, decision, policy: Policy) -> np.ndarray:
    """ASSIGN rows the threshold alone would have left to the debit: managed by the cost rule."""
    if not policy.cost_rule:
        return np.zeros(len(np.asarray(decision)), dtype=bool)
    p = np.asarray(proba, dtype=np.float64).ravel()
    a = np.nan_to_num(np.asarray(amount_past_due, dtype=np.float64).ravel())
    e = np.asarray(eligible, dtype=bool).ravel()
    return (
        e
        & (np.asarray(decision) == ASSIGN)
        & (np.nan_to_num(p, nan=-1.0) >= policy.threshold)
        & ~cost_rule_allows(p, a, policy.costs)
    )


def decide(proba, amount_past_due, eligible, policy: Policy) -> np.ndarray:
    """ "ASSIGN"/"NO_ASSIGN" per row; ineligible rows always ASSIGN; capacity as documented above."""
    return decide_with_flags(proba, amount_past_due, eligible, policy)[0]
