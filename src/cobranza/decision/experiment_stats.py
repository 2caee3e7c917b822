"""The estimators of the experiment report (`decision/experiment_report.py`): differences between
two arms with their 95% intervals and p-values, their combination over cuts, and sample sizes.

Arm 1 = HOLDOUT, arm 0 = ASSIGNED:

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

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


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


# Below this the rows needed overflow any book (and mde**2 underflows to 0).
MIN_MDE = 1e-4


def sample_size(
    base_rate: float, mde: float, ratio: float = 1.0, alpha: float = 0.05, power: float = 0.8
) -> tuple[int, int]:
    """Rows of arm 1 and arm 0 (ratio = n0 / n1) to detect base_rate -> base_rate + mde
    (Fleiss' formula, the module docstring); rounded up."""
    if not MIN_MDE <= mde < 1.0 or ratio <= 0:
        raise ValueError(f"need {MIN_MDE} <= mde < 1 and ratio > 0, got mde={mde}, ratio={ratio}")
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
