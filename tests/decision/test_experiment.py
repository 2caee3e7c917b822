"""The arm of each scored row: a salted hash of obligation and cut, drawn among eligible rows."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from cobranza.decision.experiment import (
    CHALLENGER,
    CHAMPION,
    HOLDOUT,
    ArmDesign,
    arm_uniform,
    assign_arms,
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


def test_every_scoring_arm_has_words_for_people():
    from cobranza.labels import SCORING_ARMS, codes

    assert {*SCORING_ARMS, HOLDOUT} == {CHAMPION, CHALLENGER, HOLDOUT}
    assert {CHAMPION, CHALLENGER, HOLDOUT} <= set(codes("arm"))


def test_design_refuses_shares_out_of_range():
    with pytest.raises(ValueError, match="holdout_share"):
        ArmDesign(holdout_share=1.0)
    with pytest.raises(ValueError, match="challenger_share"):
        ArmDesign(challenger_share=-0.1)
