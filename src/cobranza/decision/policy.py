"""The assignment policy: manage an obligation when managing is expected to pay.

Per eligible obligation the causal models give p_roll_no_action and p_roll_action, the
probabilities of rolling to 31+ days past due without and with collection management, and
`decision.loss` values a roll (provision step on the outstanding balance plus the later collection
cost). The expected net benefit of managing is

    benefit = (p_roll_no_action - p_roll_action) x roll_loss - collection_action

Rule: NO_ASSIGN iff benefit < 0 (a tie is ASSIGN: the bank's current practice is the safe side).
Ineligible obligations (no active mandate: the debit cannot pay them) are ASSIGN by rule. This is
the Bayes decision under the loss: it minimizes the expected cost row by row, so there is no
threshold to fit; the costs are the knobs.

The benefit rests on the roll model's effect of management, identified by the randomized
holdout: with a 95% interval [low, high] of that effect on the roll's log-odds (`ml.causal.Effect`),
the effect is identified iff high < 0. When it is not (too few control rows, or an interval
that does not show a reduction), p_roll_no_action - p_roll_action says nothing reliable, and
NO_ASSIGN on it would stop managing on no evidence: every eligible row is then ASSIGN (the bank's
status quo), whatever its benefit. The flag (`effect_identified`) and the interval are data of
the policy, logged with the model that estimated them.

Capacity (`costs.daily_capacity`, obligations the team can manage per cut) binds per scored cut:
when the ASSIGN set of a cut is larger than the capacity, the ineligible rows keep it first (by
rule), then the eligible rows with the largest expected benefit (larger roll loss first on ties);
the rest become NO_ASSIGN, flagged `capacity_limited`. Rows of the scoring holdout (`holdout`: the
randomized control group, `decision.experiment`) are NO_ASSIGN whatever their benefit, and neither
take nor count in the capacity.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from cobranza.config import Costs
from cobranza.errors import CobranzaError

ASSIGN = "ASSIGN"
NO_ASSIGN = "NO_ASSIGN"


class PolicyError(CobranzaError):
    """Inputs the policy cannot be applied on (lengths differ, missing probabilities...)."""


@dataclass(frozen=True)
class Policy:
    """The costs a model's decisions are taken under, and what they gave on its test rows.

    `provision_step` is a tuple of (product, step) pairs so that the policy stays hashable;
    `to_dict` is JSON-safe. `effect_identified`, `effect_low`, `effect_high`: whether the roll
    model's effect of management is identified, and its 95% interval on the log-odds (None when
    it could not be estimated at all). A policy logged before they were recorded reads as
    identified: its decisions stay what they were.
    """

    collection_action: float
    later_collection_cost: float
    provision_step: tuple[tuple[str, float], ...]
    default_provision_step: float
    capacity: int | None
    expected_cost_per_obligation: float
    baseline_cost_per_obligation: float
    no_assign_share: float
    n_fit: int
    effect_identified: bool = True
    effect_low: float | None = None
    effect_high: float | None = None

    @classmethod
    def of(cls, costs: Costs, **figures: Any) -> Policy:
        """The policy of these costs, with the given test figures (zeros when none) and effect
        (identified when not given)."""
        return cls(
            collection_action=float(costs.collection_action),
            later_collection_cost=float(costs.later_collection_cost),
            provision_step=tuple(
                sorted((str(k), float(v)) for k, v in costs.provision_step.items())
            ),
            default_provision_step=float(costs.default_provision_step),
            capacity=costs.daily_capacity,
            expected_cost_per_obligation=float(figures.get("expected_cost_per_obligation", 0.0)),
            baseline_cost_per_obligation=float(figures.get("baseline_cost_per_obligation", 0.0)),
            no_assign_share=float(figures.get("no_assign_share", 0.0)),
            n_fit=int(figures.get("n_fit", 0)),
            effect_identified=bool(figures.get("effect_identified", True)),
            effect_low=_finite_or_none(figures.get("effect_low")),
            effect_high=_finite_or_none(figures.get("effect_high")),
        )

    @property
    def costs(self) -> Costs:
        return Costs(
            collection_action=self.collection_action,
            later_collection_cost=self.later_collection_cost,
            provision_step=dict(self.provision_step),
            default_provision_step=self.default_provision_step,
            daily_capacity=self.capacity,
        )

    @property
    def savings_per_obligation(self) -> float:
        """Against the bank's current policy of assigning everyone."""
        return self.baseline_cost_per_obligation - self.expected_cost_per_obligation

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["provision_step"] = dict(self.provision_step)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        missing = known - values.keys() - set(EFFECT_FIELDS)
        if missing:
            raise PolicyError(
                f"policy record lacks {', '.join(sorted(missing))}: it was logged by a model "
                "trained before the effect-aware policy; retrain"
            )
        values["provision_step"] = tuple(
            sorted((str(k), float(v)) for k, v in dict(values["provision_step"]).items())
        )
        values["capacity"] = None if values["capacity"] is None else int(values["capacity"])
        for name in ("effect_low", "effect_high"):
            values[name] = _finite_or_none(values.get(name))
        values["effect_identified"] = bool(values.get("effect_identified", True))
        return cls(**values)


EFFECT_FIELDS = ("effect_identified", "effect_low", "effect_high")
COST_FIELDS = (
    "collection_action",
    "later_collection_cost",
    "provision_step",
    "default_provision_step",
    "capacity",
)


def _finite_or_none(value: Any) -> float | None:
    return None if value is None or not np.isfinite(float(value)) else float(value)


def champion_policy(
    champion: Any, capacity: int | None = None, costs: Costs | None = None
) -> Policy:
    """The champion's policy as a `Policy`; today's capacity and, when given, today's costs
    (the costs are the operational knobs: the models estimate probabilities, not pesos)."""
    policy = champion.policy
    if policy is None:
        raise PolicyError(
            f"champion version {champion.version} has no decision policy logged; retrain it"
        )
    if isinstance(policy, dict):
        policy = Policy.from_dict(policy)
    if costs is not None:
        today = Policy.of(costs)
        policy = dataclasses.replace(policy, **{k: getattr(today, k) for k in COST_FIELDS})
    if capacity is not None:
        policy = dataclasses.replace(policy, capacity=int(capacity))
    return policy


def _arrays(benefit, eligible, holdout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = np.asarray(benefit, dtype=np.float64).ravel()
    e = np.asarray(eligible, dtype=bool).ravel()
    h = np.zeros(len(b), dtype=bool) if holdout is None else np.asarray(holdout, dtype=bool).ravel()
    if not (len(b) == len(e) == len(h)):
        raise PolicyError(
            f"benefit, eligible and holdout differ in length ({len(b)}, {len(e)}, {len(h)})"
        )
    if np.isnan(b[e]).any():
        raise PolicyError(
            f"{int(np.isnan(b[e]).sum())} eligible obligations have no expected benefit (NaN)"
        )
    return b, e, h


def decide_with_flags(
    benefit, eligible, policy: Policy, holdout=None
) -> tuple[np.ndarray, np.ndarray]:
    """Decisions and the `capacity_limited` flag (NO_ASSIGN only because the team was full).

    Call it once per cut: the capacity is per cut. An effect that is not identified NO_ASSIGNs
    no eligible row on its benefit (see the module docstring); the capacity still binds.
    """
    b, e, h = _arrays(benefit, eligible, holdout)
    no_assign = (e & (b < 0) & policy.effect_identified) | h
    limited = np.zeros(len(b), dtype=bool)
    cap = policy.capacity
    if cap is not None:
        assign_idx = np.flatnonzero(~no_assign)
        if len(assign_idx) > cap:
            # Ineligible (rule) first, then the largest expected benefit.
            key = np.where(e[assign_idx], b[assign_idx], np.inf)
            ranked = assign_idx[np.argsort(-key, kind="stable")]
            overflow = ranked[cap:]
            overflow = overflow[e[overflow]]  # ineligible rows stay ASSIGN by rule
            no_assign[overflow] = True
            limited[overflow] = True
    return np.where(no_assign, NO_ASSIGN, ASSIGN).astype(object), limited


def decide_per_cut(
    benefit,
    eligible,
    cut_dates,
    policy: Policy,
    ineligible_per_cut: dict[Any, int] | None = None,
    holdout=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decisions and `capacity_limited` flags of rows of several cuts: `decide_with_flags` on the
    rows of each cut date, since the capacity is per cut.

    `ineligible_per_cut[cut]` counts obligations of that cut that are not among these rows and are
    ASSIGN by rule (impact decides on the eligible rows alone): with a capacity they take it first,
    exactly as they do when the whole cut is scored.
    """
    b = np.asarray(benefit, dtype=np.float64).ravel()
    e = np.asarray(eligible, dtype=bool).ravel()
    h = np.zeros(len(b), dtype=bool) if holdout is None else np.asarray(holdout, dtype=bool).ravel()
    days = np.asarray(cut_dates, dtype="datetime64[D]").ravel()
    decision = np.full(len(b), ASSIGN, dtype=object)
    limited = np.zeros(len(b), dtype=bool)
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
            np.concatenate([b[rows], np.full(extra, np.nan)]),
            np.concatenate([e[rows], np.zeros(extra, dtype=bool)]),
            policy,
            np.concatenate([h[rows], np.zeros(extra, dtype=bool)]),
        )
        decision[rows], limited[rows] = d[: len(rows)], lim[: len(rows)]
    return decision, limited


def decide(benefit, eligible, policy: Policy) -> np.ndarray:
    """ "ASSIGN"/"NO_ASSIGN" per row; ineligible rows always ASSIGN; capacity as documented above."""
    return decide_with_flags(benefit, eligible, policy)[0]
