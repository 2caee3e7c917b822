"""The randomized experiment inside every scoring run: each row's arm, and the estimators of the
arms' differences.

Arms. Each eligible row (obligation, cut) gets a uniform number from a salted hash,

    u = int(sha256("salt|obligation_id|cut_date")[:8], big-endian) / 2**64      (cut as YYYY-MM-DD)

and its arm from that one number:

    HOLDOUT     u < h                                   (h = holdout_share)
    CHALLENGER  h <= u < h + (1 - h) x c                (c = challenger_share, only when a
                                                          challenger is registered)
    CHAMPION    otherwise.

The draw is deterministic (the same obligation and cut always land in the same arm, in batch
scoring, in online predict and when recomputed by an auditor holding the salt), independent of row
order and of everything the model sees, hence a randomized assignment. HOLDOUT is a control group:
decided NO_ASSIGN, never contacted, never counted in nor taken by the capacity.

The holdout is drawn among **eligible** obligations only (an active debit mandate): they are the
population the model decides for. Ineligible ones are ASSIGN by rule whatever the model says, so
leaving some unmanaged would measure nothing about the decision and cost recoveries the debit
cannot make; they are CHAMPION rows (the production policy, whose rule assigns them).

Estimators (the report, `decision/experiment_report.py`), arm 1 = HOLDOUT, arm 0 = ASSIGNED:

- a rate (cure, roll): d = p1 - p0 with the unpooled normal (Wald) standard error
  se = sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0); 95% CI d +- z se, p-value 2 (1 - Phi(|d| / se)).
  With hundreds of rows per arm and rates far from 0 and 1 the normal interval holds; Newcombe's
  would matter only for tiny arms, which the report flags by their row counts;
- a mean (cost per obligation): Welch, se = sqrt(s1^2 / n1 + s0^2 / n0) with the
  Welch-Satterthwaite degrees of freedom and Student's t (costs are skewed, variances unequal);
- pooled over cuts: stratified by cut, d = sum_k w_k d_k and se = sqrt(sum_k w_k^2 se_k^2) with
  w_k = n_k / n (the cut's rows over all rows), normal quantiles. The holdout share may differ by
  cut and base rates drift from month to month; a plain pooled difference would mix the two, the
  stratified one estimates the effect over all the pooled rows. Only randomized cuts (both arms
  present) are pooled.

Sample size: rows per arm to detect an absolute difference `mde` of the roll rate at level alpha
(two-sided) and power 1 - beta, with base rate p0, p1 = p0 + mde and arm ratio r = n0 / n1:

    n1 = [z(1 - alpha/2) sqrt(pbar qbar (1 + 1/r)) + z(1 - beta) sqrt(p1 q1 + p0 q0 / r)]^2 / mde^2

with pbar = (p1 + r p0) / (1 + r) (Fleiss, unequal groups), n0 = r n1.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

HOLDOUT = "HOLDOUT"
CHAMPION = "CHAMPION"
CHALLENGER = "CHALLENGER"
SCORING_ARMS = (CHAMPION, CHALLENGER, HOLDOUT)
CONFIDENCE = 0.95


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


# ---- estimators ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Effect:
    """arm 1 - arm 0 for one metric, with its standard error, 95% interval and two-sided p-value."""

    metric: str
    difference: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


def _normal_effect(metric: str, d: float, se: float) -> Effect:
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    if se == 0.0:
        return Effect(metric, d, 0.0, d, d, 1.0 if d == 0.0 else 0.0)
    p = float(2.0 * stats.norm.sf(abs(d) / se))
    return Effect(metric, d, se, d - z * se, d + z * se, p)


def rate_difference(metric: str, y1, y0) -> Effect:
    """Difference of proportions of 0/1 outcomes, unpooled normal interval."""
    a = np.asarray(y1, dtype=np.float64)
    b = np.asarray(y0, dtype=np.float64)
    _need_rows(metric, a, b, 1)
    p1, p0 = a.mean(), b.mean()
    se = math.sqrt(p1 * (1 - p1) / len(a) + p0 * (1 - p0) / len(b))
    return _normal_effect(metric, float(p1 - p0), se)


def mean_difference(metric: str, y1, y0) -> Effect:
    """Difference of means, Welch's interval and test (unequal variances, t distribution)."""
    a = np.asarray(y1, dtype=np.float64)
    b = np.asarray(y0, dtype=np.float64)
    _need_rows(metric, a, b, 2)
    v1, v0 = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    d = float(a.mean() - b.mean())
    se = math.sqrt(v1 + v0)
    if se == 0.0:
        return Effect(metric, d, 0.0, d, d, 1.0 if d == 0.0 else 0.0)
    df = (v1 + v0) ** 2 / (v1**2 / (len(a) - 1) + v0**2 / (len(b) - 1))
    q = stats.t.ppf(0.5 + CONFIDENCE / 2, df)
    p = float(2.0 * stats.t.sf(abs(d) / se, df))
    return Effect(metric, d, se, d - q * se, d + q * se, p)


def stratified(metric: str, effects: list[Effect], rows: list[int]) -> Effect:
    """Effects of several strata (cuts) combined with weights rows_k / sum(rows), normal quantiles."""
    if not effects or len(effects) != len(rows):
        raise ValueError("stratified needs one row count per stratum effect, at least one")
    w = np.asarray(rows, dtype=np.float64) / float(sum(rows))
    d = float(np.dot(w, [e.difference for e in effects]))
    se = math.sqrt(float(np.dot(w**2, [e.se**2 for e in effects])))
    return _normal_effect(metric, d, se)


def _need_rows(metric: str, a: np.ndarray, b: np.ndarray, least: int) -> None:
    if len(a) < least or len(b) < least:
        raise ValueError(f"{metric}: each arm needs at least {least} rows ({len(a)}, {len(b)})")


def sample_size(
    base_rate: float, mde: float, ratio: float = 1.0, alpha: float = 0.05, power: float = 0.8
) -> tuple[int, int]:
    """Rows of arm 1 and arm 0 (ratio = n0 / n1) to detect base_rate -> base_rate + mde
    (Fleiss' formula, the module docstring); rounded up."""
    if not 0.0 < mde < 1.0 or ratio <= 0:
        raise ValueError(f"need 0 < mde < 1 and ratio > 0, got mde={mde}, ratio={ratio}")
    p0 = float(base_rate)
    p1 = p0 + mde if p0 + mde < 1.0 else p0 - mde  # the detectable side that is a rate
    if not 0.0 < p1 < 1.0:
        raise ValueError(f"no rate differs from {p0} by {mde}")
    pbar = (p1 + ratio * p0) / (1.0 + ratio)
    za = stats.norm.ppf(1.0 - alpha / 2.0)
    zb = stats.norm.ppf(power)
    root = za * math.sqrt(pbar * (1 - pbar) * (1 + 1 / ratio)) + zb * math.sqrt(
        p1 * (1 - p1) + p0 * (1 - p0) / ratio
    )
    n1 = math.ceil(root**2 / mde**2)
    return n1, math.ceil(ratio * n1)
