"""The experiment report's figures on hand-built labeled rows: per cut, pooled, sample size."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from cobranza.config import Costs
from cobranza.decision.experiment_report import figures, with_cost
from cobranza.decision.experiment_stats import rate_difference, sample_size, stratified

C1, C2, C3 = date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)
COSTS = Costs(
    collection_action=1000.0,
    provision_step={"CONSUMER_LOAN": 0.1},
    default_provision_step=0.1,
    later_collection_cost=500.0,
)


def rows(cut, arm, outcomes, balance=10_000.0):
    """One row per (self_cure_debit, cure_any, roll_31_plus) triple."""
    return [
        {
            "obligation_id": f"{arm}-{cut}-{i}",
            "cut_date": cut,
            "eligible": True,
            "arm": arm,
            "self_cure_debit": s,
            "cure_any": a,
            "roll_31_plus": r,
            "outstanding_balance": balance,
            "product": "CONSUMER_LOAN",
        }
        for i, (s, a, r) in enumerate(outcomes)
    ]


def frame() -> pd.DataFrame:
    data = (
        # C1: randomized. HOLDOUT rolls 2 of 4, ASSIGNED 1 of 5
        rows(C1, "HOLDOUT", [(1, 1, 0), (0, 0, 1), (0, 0, 1), (1, 1, 0)])
        + rows(C1, "ASSIGNED", [(0, 1, 0), (0, 1, 0), (1, 1, 0), (0, 0, 1), (0, 1, 0)])
        # C2: randomized. HOLDOUT rolls 1 of 3, ASSIGNED 2 of 3; a RULE row shown, never compared
        + rows(C2, "HOLDOUT", [(1, 1, 0), (0, 0, 1), (1, 1, 0)])
        + rows(C2, "ASSIGNED", [(0, 0, 1), (0, 0, 1), (0, 1, 0)])
        + rows(C2, "RULE", [(1, 1, 0)])
        # C3: ASSIGNED only, not randomized
        + rows(C3, "ASSIGNED", [(0, 1, 0), (0, 0, 1)])
    )
    return with_cost(pd.DataFrame(data), COSTS)


def test_realized_cost_is_the_action_when_assigned_plus_the_loss_when_rolled():
    f = frame()
    loss = 10_000.0 * 0.1 + 500.0  # balance x provision step + later collection cost
    by = f.set_index("obligation_id")["cost"]
    assert by[f"HOLDOUT-{C1}-1"] == loss  # unmanaged, rolled
    assert by[f"HOLDOUT-{C1}-0"] == 0.0  # unmanaged, cured
    assert by[f"ASSIGNED-{C1}-3"] == 1000.0 + loss  # managed and rolled all the same
    assert by[f"ASSIGNED-{C1}-0"] == 1000.0


def test_arms_and_effects_per_cut():
    cuts, pooled, _, _, _ = figures(frame(), mde=0.1)
    assert [c.cut_date for c in cuts] == ["2026-01-31", "2026-02-28", "2026-03-31"]
    assert [c.randomized for c in cuts] == [True, True, False]
    assert pooled == ["2026-01-31", "2026-02-28"]
    first = {a.arm: a for a in cuts[0].arms}
    assert (first["HOLDOUT"].rows, first["HOLDOUT"].roll_rate) == (4, 0.5)
    assert (first["ASSIGNED"].cure_debit_rate, first["ASSIGNED"].cure_any_rate) == (0.2, 0.8)
    assert first["HOLDOUT"].cost_per_obligation == 1500.0 * 2 / 4
    assert first["ASSIGNED"].cost_per_obligation == (5 * 1000.0 + 1500.0) / 5
    roll = next(e for e in cuts[0].effects if e.metric == "roll_rate")
    assert roll.difference == pytest.approx(0.5 - 0.2)
    assert roll.se == pytest.approx(math.sqrt(0.25 / 4 + 0.16 / 5))
    assert {a.arm for a in cuts[1].arms} == {"HOLDOUT", "ASSIGNED", "RULE"}
    assert cuts[2].effects == []


def test_pooled_arms_and_stratified_effects_over_randomized_cuts_only():
    _, _, arms, effects, size = figures(frame(), mde=0.1)
    holdout, assigned = arms
    assert (holdout.arm, holdout.rows, holdout.roll_rate) == ("HOLDOUT", 7, 3 / 7)
    assert (assigned.arm, assigned.rows, assigned.roll_rate) == ("ASSIGNED", 8, 3 / 8)  # not C3
    roll = next(e for e in effects if e.metric == "roll_rate")
    c1 = rate_difference("roll_rate", [0, 1, 1, 0], [0, 0, 0, 1, 0])
    c2 = rate_difference("roll_rate", [0, 1, 0], [1, 1, 0])
    expected = stratified("roll_rate", [c1, c2], [9, 6])  # RULE rows are not in C2's weight
    assert roll.difference == pytest.approx(0.6 * 0.3 + 0.4 * (1 / 3 - 2 / 3))
    assert (roll.ci_low, roll.ci_high, roll.p_value) == pytest.approx(
        (expected.ci_low, expected.ci_high, expected.p_value)
    )
    assert [e.metric for e in effects] == [
        "cure_debit_rate",
        "cure_any_rate",
        "roll_rate",
        "cost_per_obligation",
    ]
    # sizing from ASSIGNED's roll rate and the observed arm ratio
    assert (size.base_rate, size.ratio) == (3 / 8, 8 / 7)
    assert (size.holdout_rows, size.assigned_rows) == sample_size(3 / 8, 0.1, 8 / 7)
    assert size.cuts_needed == math.ceil(size.holdout_rows / 3.5)


def test_an_mde_no_rate_can_reach_gives_no_sample_size():
    """Base rate 3/8: neither 3/8 + 0.7 nor 3/8 - 0.7 is a rate, so no size is given."""
    _, _, _, _, size = figures(frame(), mde=0.7)
    assert (size.holdout_rows, size.assigned_rows, size.cuts_needed) == (None, None, None)
    assert size.base_rate == 3 / 8


def test_no_randomized_cut_gives_no_effects():
    f = frame()
    cuts, pooled, arms, effects, size = figures(f[f["arm"] != "HOLDOUT"], mde=0.1)
    assert len(cuts) == 3 and pooled == [] and arms == [] and effects == [] and size is None


def scoring_arms(f: pd.DataFrame, arm_of) -> pd.DataFrame:
    """The scoring's arm and deciding version of each row of `f`, from `arm_of(obligation_id)`."""
    out = f[["obligation_id", "cut_date"]].copy()
    out["arm"] = [arm_of(o) for o in out["obligation_id"]]
    out["model_version"] = ["7" if a == "CHALLENGER" else "6" for a in out["arm"]]
    return out


def test_challenger_arm_against_champion_arm_per_cut_and_pooled():
    """The scoring's CHALLENGER rows against its CHAMPION rows on the same closed rows, whatever
    the bank's arm (the cost still counts the action where the bank managed); the scoring's
    HOLDOUT rows and ineligible rows are no part of it."""
    from cobranza.decision.experiment_report import challenger_figures

    f = frame()
    f.loc[f["obligation_id"] == "ASSIGNED-2026-02-28-2", "eligible"] = False
    # the even-numbered rows of C1 and C2 went to the challenger; the last row of each cut's
    # HOLDOUT was the scoring's own control group
    picked = {
        "HOLDOUT-2026-01-31-0": "CHALLENGER",
        "HOLDOUT-2026-01-31-2": "CHALLENGER",
        "HOLDOUT-2026-01-31-3": "HOLDOUT",
        "ASSIGNED-2026-01-31-0": "CHALLENGER",
        "ASSIGNED-2026-01-31-2": "CHALLENGER",
        "ASSIGNED-2026-01-31-4": "CHALLENGER",
        "HOLDOUT-2026-02-28-0": "CHALLENGER",
        "HOLDOUT-2026-02-28-2": "HOLDOUT",
        "ASSIGNED-2026-02-28-0": "CHALLENGER",
        "ASSIGNED-2026-02-28-2": "CHALLENGER",  # ineligible: left out
    }
    scoring = scoring_arms(f, lambda o: picked.get(o, "CHAMPION"))
    result = challenger_figures(f, scoring)
    assert result is not None and result.comparison == "CHALLENGER - CHAMPION"
    assert result.challenger_versions == ["7"] and result.champion_versions == ["6"]
    eligible = f[f["eligible"]]
    arm = eligible["obligation_id"].map(lambda o: picked.get(o, "CHAMPION"))
    kept = eligible[arm != "HOLDOUT"].assign(arm=arm[arm != "HOLDOUT"])
    # C1: 5 challenger, 3 champion; C2: 2 challenger, 3 champion (a RULE row among them); C3:
    # champion only, not compared
    by_cut = {c.cut_date: c for c in result.cuts}
    assert [c.randomized for c in result.cuts] == [True, True, False]
    assert result.cuts_pooled == [str(C1), str(C2)]
    sizes, per_cut = [], []
    for cut in (C1, C2):
        here = kept[kept["cut_date"] == cut]
        one, other = here[here["arm"] == "CHALLENGER"], here[here["arm"] == "CHAMPION"]
        figures_of = {a.arm: a for a in by_cut[str(cut)].arms}
        assert figures_of["CHALLENGER"].rows == len(one)
        assert figures_of["CHAMPION"].rows == len(other)
        assert figures_of["CHALLENGER"].roll_rate == pytest.approx(one["roll_31_plus"].mean())
        assert figures_of["CHALLENGER"].cost_per_obligation == pytest.approx(one["cost"].mean())
        roll = next(e for e in by_cut[str(cut)].effects if e.metric == "roll_rate")
        expected = rate_difference("roll_rate", one["roll_31_plus"], other["roll_31_plus"])
        assert roll.difference == pytest.approx(expected.difference)
        assert roll.ci_low == pytest.approx(expected.ci_low)
        sizes.append(len(one) + len(other))
        per_cut.append(expected)
    pooled = {a.arm: a for a in result.arms}
    compared = kept[kept["cut_date"].isin([C1, C2])]
    assert pooled["CHALLENGER"].rows == (compared["arm"] == "CHALLENGER").sum() == 7
    assert pooled["CHAMPION"].rows == (compared["arm"] == "CHAMPION").sum() == 6
    roll = next(e for e in result.effects if e.metric == "roll_rate")
    total = stratified("roll_rate", per_cut, sizes)
    assert roll.difference == pytest.approx(total.difference)
    assert roll.ci_high == pytest.approx(total.ci_high)
    assert {e.metric for e in result.effects} == {
        "cure_debit_rate",
        "cure_any_rate",
        "roll_rate",
        "cost_per_obligation",
    }


def test_no_challenger_section_until_a_closed_row_was_routed():
    from cobranza.decision.experiment_report import challenger_figures

    f = frame()
    assert challenger_figures(f, scoring_arms(f, lambda o: "CHAMPION")) is None
    # routed rows of a cut whose horizon has not closed are not in the labeled rows
    later = pd.DataFrame(
        {
            "obligation_id": ["x-1"],
            "cut_date": [date(2026, 4, 30)],
            "arm": ["CHALLENGER"],
            "model_version": ["7"],
        }
    )
    champion_only = scoring_arms(f, lambda o: "CHAMPION")
    assert challenger_figures(f, pd.concat([champion_only, later])) is None
