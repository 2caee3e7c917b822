"""The off-policy value of a decision rule: what its decisions would have cost, measured on the
rows whose arm was randomized, without the simulator's truth.

Randomized rows: in a cut where the bank ran a holdout (at least one row with arm HOLDOUT), the
rows whose arm is ASSIGNED or HOLDOUT (RULE rows were not randomized) and whose outcome
`roll_31_plus` is known. In cut c, with n_A assigned and n_H held-out such rows, the propensity
of being managed is e_c = n_A / (n_A + n_H).

A policy decides d_i (True = ASSIGN) on each row; row i was actually managed when a_i = True.
Its realized cost C_i = `loss.realized_cost(a_i, roll_i, roll_loss_i)` is what the policy's
decision would have cost whenever d_i = a_i. The self-normalised (Hajek) inverse-propensity
estimate of the policy's mean cost per obligation is

    V(d) = sum_i m_i C_i / sum_i m_i,   m_i = 1[d_i = a_i] / P(a_i | c_i),
    P(a | c) = e_c when a = ASSIGN, 1 - e_c when a = NO_ASSIGN

(unbiased up to O(1/n) because the arm was drawn at random with the known share e_c; the
normalisation keeps it a weighted mean of observed costs). Two policies are compared on the same
rows: the saving of policy a against b is V(b) - V(a) (positive: a costs less), and its interval
comes from the same row resamples for both (`ml.stats.bootstrap`), so two identical policies
give exactly 0 with a zero-width interval. A policy that matches no row (say it never assigns
and there is no held-out row) has no value (NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cobranza.config import Costs
from cobranza.decision.loss import realized_cost, roll_loss
from cobranza.ml.stats import (
    LEVEL,
    RESAMPLES,
    Interval,
    bootstrap,
    bootstrap_counts,
    percentile_interval,
)

ASSIGNED = "ASSIGNED"
HOLDOUT = "HOLDOUT"


@dataclass(frozen=True)
class RandomizedRows:
    """The randomized rows of a frame: which rows (`mask` over the input), their arm, propensity
    of the arm they got, and realized cost."""

    mask: np.ndarray  # over the input rows
    assigned: np.ndarray  # arm == ASSIGNED, on the kept rows
    propensity: np.ndarray  # P(the arm the row got | its cut)
    cost: np.ndarray  # realized cost under that arm (pesos)
    cuts: int

    @property
    def rows(self) -> int:
        return int(self.mask.sum())


def randomized_rows(arm, cut_date, roll_31_plus, loss, costs: Costs) -> RandomizedRows:
    """The rows usable for off-policy values (see the module docstring); `loss` is each row's
    `roll_loss` in pesos."""
    arms = np.asarray(arm, dtype=object).ravel()
    cuts = np.asarray(cut_date, dtype="datetime64[D]").ravel()
    roll = np.asarray(roll_31_plus, dtype=np.float64).ravel()
    loss = np.asarray(loss, dtype=np.float64).ravel()
    if not (len(arms) == len(cuts) == len(roll) == len(loss)):
        raise ValueError(
            f"arm, cut_date, roll_31_plus and loss differ in length "
            f"({len(arms)}, {len(cuts)}, {len(roll)}, {len(loss)})"
        )
    holdout_cuts = np.unique(cuts[arms == HOLDOUT])
    mask = np.isin(arms, (ASSIGNED, HOLDOUT)) & np.isin(cuts, holdout_cuts) & np.isfinite(roll)
    assigned = arms[mask] == ASSIGNED
    _, group = np.unique(cuts[mask], return_inverse=True)
    share = np.bincount(group, weights=assigned) / np.bincount(group)
    e = share[group] if len(group) else np.zeros(0)
    return RandomizedRows(
        mask=mask,
        assigned=assigned,
        propensity=np.where(assigned, e, 1.0 - e),
        cost=realized_cost(assigned, roll[mask], loss[mask], costs),
        cuts=len(share),
    )


def randomized_rows_of(frame: Any, costs: Costs) -> RandomizedRows | None:
    """`randomized_rows` of a gold-shaped frame (`arm`, `cut_date`, `roll_31_plus`,
    `outstanding_balance`, `product`); None when it lacks any of them."""
    needed = ("arm", "cut_date", "roll_31_plus", "outstanding_balance", "product")
    if any(c not in frame for c in needed):
        return None
    loss = roll_loss(frame["outstanding_balance"].to_numpy(), frame["product"].to_numpy(), costs)
    roll = frame["roll_31_plus"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    arm = frame["arm"].astype(object).where(frame["arm"].notna(), None).to_numpy()
    return randomized_rows(arm, frame["cut_date"].to_numpy(), roll, loss, costs)


@dataclass(frozen=True)
class PolicyValue:
    """A policy's mean realized cost per obligation on the randomized rows, with its interval."""

    cost: Interval
    rows: int  # randomized rows
    matched: int  # rows whose arm is the policy's decision

    def to_dict(self) -> dict[str, Any]:
        return {"cost": self.cost.to_dict(), "rows": self.rows, "matched": self.matched}


@dataclass(frozen=True)
class ValueComparison:
    """Policies a and b on the same randomized rows: the saving of a, V(b) - V(a)."""

    a: PolicyValue
    b: PolicyValue
    saving: Interval

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "saving": self.saving.to_dict(),
        }


def _weights(rows: RandomizedRows, assign) -> np.ndarray:
    d = np.asarray(assign, dtype=bool).ravel()
    if len(d) == len(rows.mask):
        d = d[rows.mask]
    if len(d) != rows.rows:
        raise ValueError(
            f"decisions cover {len(d)} rows; expected the {len(rows.mask)} input rows or the "
            f"{rows.rows} randomized ones"
        )
    return (d == rows.assigned) / rows.propensity


def _hajek(weights: np.ndarray, cost: np.ndarray) -> Any:
    wc = weights * cost

    def value(counts: np.ndarray) -> np.ndarray:
        total = counts @ weights.astype(counts.dtype)
        spent = counts @ wc.astype(counts.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, spent / np.where(total > 0, total, 1.0), np.nan)

    return value


def policy_value(
    rows: RandomizedRows,
    assign,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> PolicyValue:
    """V(assign) with its bootstrap interval; `assign` over the input rows or the kept ones."""
    w = _weights(rows, assign)
    interval = bootstrap(rows.rows, _hajek(w, rows.cost), resamples, seed, level)
    return PolicyValue(interval, rows.rows, int((w > 0).sum()))


def compare_policies(
    rows: RandomizedRows,
    assign_a,
    assign_b,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> ValueComparison:
    """Both policies' values and the saving of a against b, V(b) - V(a), from one pass over the
    same resamples."""
    wa, wb = _weights(rows, assign_a), _weights(rows, assign_b)
    va, vb = _hajek(wa, rows.cost), _hajek(wb, rows.cost)
    n = rows.rows
    ones = np.ones((1, n))
    a_hat, b_hat = float(va(ones)[0]), float(vb(ones)[0])
    a_values, b_values = [], []
    for counts in bootstrap_counts(n, resamples, seed) if n else ():
        a_values.append(va(counts))
        b_values.append(vb(counts))
    a_all = np.concatenate(a_values) if a_values else np.zeros(0)
    b_all = np.concatenate(b_values) if b_values else np.zeros(0)

    def interval(estimate: float, values: np.ndarray) -> Interval:
        return percentile_interval(estimate, values, level, resamples)

    return ValueComparison(
        a=PolicyValue(interval(a_hat, a_all), n, int((wa > 0).sum())),
        b=PolicyValue(interval(b_hat, b_all), n, int((wb > 0).sum())),
        saving=interval(b_hat - a_hat, b_all - a_all),
    )
