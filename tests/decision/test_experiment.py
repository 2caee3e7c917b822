"""The arm of each scored row (a salted hash) and the estimators of the experiment report."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from scipy import stats

from cobranza.decision.experiment import (
    CHALLENGER,
    CHAMPION,
    HOLDOUT,
    ArmDesign,
    arm_uniform,
    assign_arms,
    mean_difference,
    rate_difference,
    sample_size,
    stratified,
)

IDS = np.array([f"OB{i:07d}" for i in range(40_000)], dtype=object)
CUTS = np.full(len(IDS), np.datetime64("2026-03-31"))


def test_arm_uniform_is_the_documented_hash():
    """u = first 8 bytes of sha256("salt|obligation_id|YYYY-MM-DD"), big-endian, over 2**64."""
    digest = hashlib.sha256(b"pepper|OB0000007|2026-03-31").digest()
    expected = int.from_bytes(digest[:8], "big") / 2.0**64
    u = arm_uniform(["OB0000007"], [np.datetime64("2026-03-31")], "pepper")
    assert u[0] == expected
    assert 0.0 <= u[0] < 1.0


def test_arms_are_deterministic_and_independent_of_row_order():
    design = ArmDesign(holdout_share=0.05, challenger_share=0.2, salt="s1")
    eligible = np.ones(len(IDS), dtype=bool)
    first = assign_arms(IDS, CUTS, eligible, design, challenger=True)
    again = assign_arms(IDS, CUTS, eligible, design, challenger=True)
    order = np.random.default_rng(3).permutation(len(IDS))
    shuffled = assign_arms(IDS[order], CUTS[order], eligible[order], design, challenger=True)
    assert np.array_equal(first, again)
    assert np.array_equal(first[order], shuffled)
    # a single row scored alone (online predict) lands in the same arm as in the batch
    for i in (0, 17, 3_999):
        alone = assign_arms(IDS[i : i + 1], CUTS[i : i + 1], [True], design, challenger=True)
        assert alone[0] == first[i]


def test_arm_shares_follow_the_design():
    design = ArmDesign(holdout_share=0.05, challenger_share=0.2, salt="s2")
    arm = assign_arms(IDS, CUTS, np.ones(len(IDS), dtype=bool), design, challenger=True)
    n = len(IDS)
    # binomial standard errors: 0.0011 for 5%, 0.0021 for 19%; four of them as tolerance
    assert abs((arm == HOLDOUT).mean() - 0.05) < 0.0044
    assert abs((arm == CHALLENGER).mean() - 0.95 * 0.2) < 0.0084
    assert (arm == CHAMPION).sum() == n - (arm == HOLDOUT).sum() - (arm == CHALLENGER).sum()


def test_holdout_is_drawn_among_eligible_rows_only():
    design = ArmDesign(holdout_share=0.3, salt="s3")
    eligible = np.arange(len(IDS)) % 3 != 0
    arm = assign_arms(IDS, CUTS, eligible, design)
    assert set(arm[~eligible]) == {CHAMPION}
    assert abs((arm[eligible] == HOLDOUT).mean() - 0.3) < 0.02
    # the eligible rows get the arm they would get if every row were eligible
    everyone = assign_arms(IDS, CUTS, np.ones(len(IDS), dtype=bool), design)
    assert np.array_equal(arm[eligible], everyone[eligible])


def test_no_challenger_rows_without_a_challenger_and_a_new_cut_redraws():
    design = ArmDesign(holdout_share=0.05, challenger_share=0.5, salt="s4")
    eligible = np.ones(len(IDS), dtype=bool)
    arm = assign_arms(IDS, CUTS, eligible, design, challenger=False)
    assert CHALLENGER not in set(arm)
    with_challenger = assign_arms(IDS, CUTS, eligible, design, challenger=True)
    # the holdout does not depend on whether a challenger exists
    assert np.array_equal(arm == HOLDOUT, with_challenger == HOLDOUT)
    next_cut = assign_arms(IDS, np.full(len(IDS), np.datetime64("2026-04-30")), eligible, design)
    overlap = ((arm == HOLDOUT) & (next_cut == HOLDOUT)).sum()
    assert overlap < 0.2 * (arm == HOLDOUT).sum()  # independent draws: about 5% overlap
    assert (assign_arms(IDS, CUTS, eligible, ArmDesign(0.0, 0.0)) == CHAMPION).all()


def test_design_refuses_shares_out_of_range():
    with pytest.raises(ValueError, match="holdout_share"):
        ArmDesign(holdout_share=1.0)
    with pytest.raises(ValueError, match="challenger_share"):
        ArmDesign(challenger_share=-0.1)


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
