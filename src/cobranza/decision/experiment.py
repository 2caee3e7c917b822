"""The randomized experiment inside every scoring run: each row's arm, and the estimators of the
arms' differences.

Arms. Each eligible row (obligation, cut) gets a uniform number from a salted hash,

    u = int(sha256("salt|obligation_id|cut_date")[:8], big-endian) / 2**64      (cut as YYYY-MM-DD)

and its arm from that one number:

    HOLDOUT     u < h                                   (h = holdout_share)
    CHALLENGER  h <= u < h + (1 - h) x c                (c = challenger_share, only when a
                                                          challenger is registered)
    CHAMPION    otherwise.

Scoring draws with `challenger=True` only when a challenger model is registered (the registry's
`challenger` alias, on a version other than the champion's) and `challenger_share > 0`; otherwise
every non-holdout row is CHAMPION. A CHALLENGER row is decided by the challenger model (its own
estimates and reasons, the same rule and today's costs, `decision.scoring`). The holdout is the
same with or without a challenger: it depends on u and h only, never on c.

The draw is deterministic (the same obligation and cut always land in the same arm, in batch
scoring, in online predict and when recomputed by an auditor holding the salt), independent of row
order and of everything the model sees, hence a randomized assignment. HOLDOUT is a control group:
decided NO_ASSIGN, never contacted, never counted in nor taken by the capacity.

The holdout is drawn among **eligible** obligations only (an active debit mandate): they are the
population the model decides for. Ineligible ones are ASSIGN by rule whatever the model says, so
leaving some unmanaged would measure nothing about the decision and cost recoveries the debit
cannot make; they are CHAMPION rows (the production policy, whose rule assigns them).

The report's estimators are in `decision/experiment_stats.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

HOLDOUT = "HOLDOUT"
CHAMPION = "CHAMPION"
CHALLENGER = "CHALLENGER"
SCORING_ARMS = (CHAMPION, CHALLENGER, HOLDOUT)


@dataclass(frozen=True)
class ArmDesign:
    """How rows are split between arms: the holdout's share, the challenger's, the hash's salt."""

    holdout_share: float = 0.05
    challenger_share: float = 0.0
    salt: str = "cobranza-holdout"

    def __post_init__(self) -> None:
        if not 0.0 <= self.holdout_share < 1.0:
            raise ValueError(f"holdout_share must be within [0, 1), got {self.holdout_share}")
        if not 0.0 <= self.challenger_share <= 1.0:
            raise ValueError(f"challenger_share must be within [0, 1], got {self.challenger_share}")

    @classmethod
    def from_settings(cls, experiment) -> ArmDesign:
        """From `config.Experiment` (the settings' `experiment` section)."""
        return cls(
            holdout_share=float(experiment.holdout_share),
            challenger_share=float(experiment.challenger_share),
            salt=str(experiment.salt),
        )


def arm_uniform(obligation_id, cut_date, salt: str) -> np.ndarray:
    """u in [0, 1) per row from sha256(salt|obligation_id|cut_date) (see the module docstring)."""
    ids = np.asarray(obligation_id, dtype=object).ravel()
    days, inverse = np.unique(
        np.asarray(cut_date, dtype="datetime64[D]").ravel(), return_inverse=True
    )
    cuts = days.astype(str)[inverse]  # formatted once per distinct cut, not per row
    if len(ids) != len(cuts):
        raise ValueError(f"obligation_id and cut_date differ in length ({len(ids)}, {len(cuts)})")
    sha = hashlib.sha256
    head = b"".join(
        [
            sha(f"{salt}|{oid}|{cut}".encode()).digest()[:8]
            for oid, cut in zip(ids.tolist(), cuts.tolist(), strict=True)
        ]
    )
    return np.frombuffer(head, dtype=">u8").astype(np.float64) / 2.0**64


def assign_arms(
    obligation_id, cut_date, eligible, design: ArmDesign, challenger: bool = False
) -> np.ndarray:
    """The scoring arm of each row (HOLDOUT, CHALLENGER, CHAMPION); ineligible rows CHAMPION.

    `challenger`: a challenger model is registered; without one no row is CHALLENGER.
    """
    e = np.asarray(eligible, dtype=bool).ravel()
    arm = np.full(len(e), CHAMPION, dtype=object)
    rows = np.flatnonzero(e)
    if len(rows) == 0 or (design.holdout_share == 0 and not challenger):
        return arm
    ids = np.asarray(obligation_id, dtype=object).ravel()[rows]
    cuts = np.asarray(cut_date, dtype="datetime64[D]").ravel()[rows]
    u = arm_uniform(ids, cuts, design.salt)
    h = design.holdout_share
    if challenger and design.challenger_share > 0:
        arm[rows[(u >= h) & (u < h + (1.0 - h) * design.challenger_share)]] = CHALLENGER
    arm[rows[u < h]] = HOLDOUT
    return arm
