"""The experiment report's estimators on hand-built data: exact figures."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from cobranza.decision.experiment_stats import (
    mean_difference,
    rate_difference,
    sample_size,
    stratified,
)


def test_rate_difference_is_the_unpooled_normal_interval():
    # p1 = 2/4 = 0.5, p0 = 1/5 = 0.2: d = 0.3, se = sqrt(0.25/4 + 0.16/5) = sqrt(0.0945)
    e = rate_difference("roll_rate", [1, 1, 0, 0], [1, 0, 0, 0, 0])
    se = math.sqrt(0.0945)
    z = 1.959963984540054
    assert e.difference == pytest.approx(0.3, abs=1e-12)
    assert e.se == pytest.approx(se, rel=1e-12)
    assert e.ci_low == pytest.approx(0.3 - z * se, rel=1e-9)
    assert e.ci_high == pytest.approx(0.3 + z * se, rel=1e-9)
    assert e.p_value == pytest.approx(math.erfc(0.3 / se / math.sqrt(2)), rel=1e-9)


def test_mean_difference_is_welch():
    e = mean_difference("cost_per_obligation", [1, 2, 3, 4], [2, 4, 6])
    # means 2.5 and 4; variances of the means (5/3)/4 and 4/3: se = sqrt(1.75)
    assert e.difference == pytest.approx(-1.5)
    assert e.se == pytest.approx(math.sqrt(1.75))
    reference = stats.ttest_ind([1, 2, 3, 4], [2, 4, 6], equal_var=False)
    assert e.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    df = 1.75**2 / ((5 / 12) ** 2 / 3 + (4 / 3) ** 2 / 2)
    q = stats.t.ppf(0.975, df)
    assert (e.ci_low, e.ci_high) == pytest.approx(
        (-1.5 - q * math.sqrt(1.75), -1.5 + q * 1.75**0.5)
    )


def test_equal_arms_give_no_difference_and_p_value_one():
    e = rate_difference("roll_rate", [0, 0, 0], [0, 0])
    assert (e.difference, e.ci_low, e.ci_high, e.p_value) == (0.0, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="at least 2 rows"):
        mean_difference("cost_per_obligation", [1.0], [1.0, 2.0])


def test_stratified_weights_strata_by_rows():
    a = rate_difference("roll_rate", [1, 1, 0, 0], [1, 0, 0, 0, 0])  # d 0.3, 9 rows
    b = rate_difference("roll_rate", [1, 0, 0], [1, 1, 0])  # d -1/3, 6 rows
    pooled = stratified("roll_rate", [a, b], [9, 6])
    assert pooled.difference == pytest.approx(0.6 * 0.3 + 0.4 * (-1 / 3))
    assert pooled.se == pytest.approx(math.sqrt(0.36 * a.se**2 + 0.16 * b.se**2))
    assert pooled.ci_low < pooled.difference < pooled.ci_high


def test_sample_size_matches_fleiss():
    # 20% vs 25%, equal arms, alpha 0.05, power 0.8: 1094 per arm (Fleiss, no continuity correction)
    assert sample_size(0.20, 0.05) == (1094, 1094)
    n1, n0 = sample_size(0.20, 0.05, ratio=19.0)
    assert n0 == math.ceil(19.0 * n1)
    assert n1 < 1094 < n0  # a small holdout beside a large assigned arm needs fewer holdout rows
    with pytest.raises(ValueError):
        sample_size(0.2, 0.0)


def test_an_effect_too_small_to_size_is_refused_not_a_crash():
    """An MDE near zero would need more rows than any book: a ValueError the report turns into
    a null sample size, never a division by zero."""
    from cobranza.decision.experiment_stats import MIN_MDE, sample_size

    with pytest.raises(ValueError, match="mde"):
        sample_size(0.4, 5e-324)
    assert sample_size(0.4, MIN_MDE)[0] > 10_000_000
