"""Challenger routing: with a registered challenger, a share of the rows is decided by it.

On a real lake with a champion and a challenger (both trained and registered in a real MLflow
store, `challenger_lake`): the CHALLENGER arm's share follows the setting, its rows carry the
challenger's version and exactly the decisions the challenger alone gives them, the holdout does
not move, the capacity ranks both arms together, and without a challenger nothing changes.
"""

from __future__ import annotations

import dataclasses
import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from cobranza.decision.experiment import CHALLENGER, CHAMPION, HOLDOUT, ArmDesign
from cobranza.decision.policy import champion_policy
from cobranza.decision.scoring import (
    ESTIMATE_COLUMNS,
    REASON_COLUMNS,
    challenger_for,
    read_cut,
    score_frame,
)
from cobranza.lake import Lake
from tests.decision.conftest import CHALLENGER_SHARE

COMPARED = ["probability", "decision", "capacity_limited", *ESTIMATE_COLUMNS, *REASON_COLUMNS]


def latest(lake: Lake) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT * FROM read_parquet('{lake.table_glob('results', 'latest')}') "
            "ORDER BY obligation_id"
        ).df()
    finally:
        con.close()


def every_cut(lake: Lake) -> pd.DataFrame:
    """All gold rows of every cut: enough rows for the shares' tolerances."""
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT * FROM read_parquet('{lake.table_glob('gold', 'obligation_snapshots')}') "
            "ORDER BY cut_date, obligation_id"
        ).df()
    finally:
        con.close()


def run(lake_data, holder, frame, **kw) -> pd.DataFrame:
    """`score_frame` in the lake's reason language, as `cobranza score` calls it."""
    return score_frame(holder, frame, language=lake_data["settings"].reason_language, **kw)


def assert_rows_equal(a: pd.DataFrame, b: pd.DataFrame, columns=COMPARED) -> None:
    for name in columns:
        x, y = a[name].to_numpy(), b[name].to_numpy()
        if x.dtype.kind == "f" or name == "probability" or name in ESTIMATE_COLUMNS:
            np.testing.assert_allclose(
                x.astype(float), y.astype(float), rtol=0, atol=1e-12, equal_nan=True
            )
        else:
            assert [None if v is None or v is pd.NA else v for v in x] == [
                None if v is None or v is pd.NA else v for v in y
            ], name


@pytest.fixture(scope="module")
def setup(challenger_lake):
    s = challenger_lake["settings"]
    policy = champion_policy(challenger_lake["champion"], s.costs.daily_capacity, s.costs)
    design = ArmDesign.from_settings(s.experiment)
    return challenger_lake, policy, design


def test_a_refused_training_is_the_challenger_and_the_champion_stays(challenger_lake):
    champion, challenger = challenger_lake["champion"], challenger_lake["challenger"]
    assert challenger is not None and challenger.version != champion.version
    scored = challenger_lake["scored"]
    assert scored.model_version == champion.version
    assert scored.challenger_version == challenger.version and scored.challenger_skipped is None
    assert scored.challenger > 0


def test_challenger_rows_carry_its_version_and_its_own_decisions(setup):
    lake_data, policy, _ = setup
    champion, challenger = lake_data["champion"], lake_data["challenger"]
    out = latest(lake_data["lake"])
    routed = out["arm"] == CHALLENGER
    assert routed.sum() == lake_data["scored"].challenger > 0
    assert (out.loc[routed, "model_version"] == challenger.version).all()
    assert (out.loc[~routed, "model_version"] == champion.version).all()
    assert out.loc[routed, "eligible"].all()

    frame, _ = read_cut(lake_data["lake"])
    frame = frame.set_index("obligation_id", drop=False)
    mine = out.loc[routed].reset_index(drop=True)
    # the challenger's own probability, estimates under today's costs, decision and reasons
    alone_today = run(lake_data, challenger, frame.loc[mine["obligation_id"]], policy=policy)
    assert_rows_equal(mine, alone_today)
    # its probabilities are its own, not the champion's
    by_champion = run(lake_data, champion, frame.loc[mine["obligation_id"]], policy=policy)
    assert not np.allclose(mine["probability"], by_champion["probability"])

    # the champion's rows are what the champion alone gives them
    theirs = out.loc[~routed & (out["arm"] == CHAMPION)].reset_index(drop=True)
    champion_alone = run(lake_data, champion, frame.loc[theirs["obligation_id"]], policy=policy)
    assert_rows_equal(theirs, champion_alone)


def test_routed_share_follows_the_setting_within_binomial_tolerance(setup):
    lake_data, policy, design = setup
    frame = every_cut(lake_data["lake"])
    out = run(
        lake_data,
        lake_data["champion"],
        frame,
        policy=policy,
        design=design,
        challenger=lake_data["challenger"],
    )
    eligible = out["eligible"].to_numpy(dtype=bool)
    arm = out["arm"].to_numpy()
    assert set(arm[~eligible]) == {CHAMPION}
    n_el = int(eligible.sum())
    held = int((arm == HOLDOUT).sum())
    routed = int((arm == CHALLENGER).sum())
    # HOLDOUT ~ Bin(n, h); CHALLENGER ~ Bin(n - holdout, c) among the rest
    h, c = design.holdout_share, CHALLENGER_SHARE
    assert n_el > 2000
    assert abs(held - n_el * h) <= 4 * math.sqrt(n_el * h * (1 - h))
    rest = n_el - held
    assert abs(routed - rest * c) <= 4 * math.sqrt(rest * c * (1 - c))


def test_holdout_is_the_same_with_and_without_a_challenger(setup):
    lake_data, policy, design = setup
    champion, challenger = lake_data["champion"], lake_data["challenger"]
    frame = every_cut(lake_data["lake"])
    without = run(lake_data, champion, frame, policy=policy, design=design)
    assert set(without["arm"]) == {CHAMPION, HOLDOUT}
    for share in (CHALLENGER_SHARE, 0.8, 1.0):
        routed = dataclasses.replace(design, challenger_share=share)
        out = run(lake_data, champion, frame, policy=policy, design=routed, challenger=challenger)
        held = out["arm"] == HOLDOUT
        assert held.equals(without["arm"] == HOLDOUT), share
        # the same control group, decided and explained exactly as without a challenger
        assert_rows_equal(out.loc[held], without.loc[held])
        assert (out.loc[held, "model_version"] == champion.version).all()
        assert (out.loc[held, "decision"] == "NO_ASSIGN").all()
    everyone = run(
        lake_data,
        champion,
        frame,
        policy=policy,
        design=dataclasses.replace(design, challenger_share=1.0),
        challenger=challenger,
    )
    rest = everyone["eligible"] & (everyone["arm"] != HOLDOUT)
    assert (everyone.loc[rest, "arm"] == CHALLENGER).all()


def test_capacity_ranks_both_arms_together_by_expected_benefit(setup):
    lake_data, policy, design = setup
    frame, _ = read_cut(lake_data["lake"])
    free = run(
        lake_data,
        lake_data["champion"],
        frame,
        policy=policy,
        design=design,
        challenger=lake_data["challenger"],
    )
    wanted = int((free["decision"] == "ASSIGN").sum())
    ineligible = int((~free["eligible"]).sum())
    cap = ineligible + (wanted - ineligible) // 2
    out = run(
        lake_data,
        lake_data["champion"],
        frame,
        policy=dataclasses.replace(policy, capacity=cap),
        design=design,
        challenger=lake_data["challenger"],
    )
    assert (out["decision"] == "ASSIGN").sum() == cap
    assert out["arm"].equals(free["arm"])
    decided = out["eligible"] & (out["arm"] != HOLDOUT)
    kept = out.loc[decided & (out["decision"] == "ASSIGN")]
    freed = out.loc[out["capacity_limited"]]
    # one ranking over both arms, each row's benefit from the model that decides it
    assert set(kept["arm"]) == {CHAMPION, CHALLENGER}
    assert set(freed["arm"]) == {CHAMPION, CHALLENGER}
    assert kept["expected_benefit"].min() >= freed["expected_benefit"].max()
    assert not out.loc[out["arm"] == HOLDOUT, "capacity_limited"].any()
    # the estimates do not depend on the capacity
    np.testing.assert_array_equal(out["expected_benefit"], free["expected_benefit"])


def test_without_a_challenger_scoring_is_what_the_champion_alone_gives(decision_lake):
    """The decision lake has no challenger: the default challenger share routes nothing, and the
    published rows are the champion-only scoring of the same cut, column for column."""
    settings = decision_lake["settings"]
    assert settings.experiment.challenger_share > 0
    frame, _ = read_cut(decision_lake["lake"])
    design = ArmDesign.from_settings(settings.experiment)
    assert challenger_for(settings, design, frame.columns) == (None, None)
    assert decision_lake["second"].challenger == 0
    assert decision_lake["second"].challenger_version is None
    champion = decision_lake["champion"]
    policy = champion_policy(champion, settings.costs.daily_capacity, settings.costs)
    only = ArmDesign(settings.experiment.holdout_share, 0.0, settings.experiment.salt)
    expected = run(decision_lake, champion, frame, policy=policy, design=only)
    out = latest(decision_lake["lake"])
    expected = expected.sort_values("obligation_id").reset_index(drop=True)
    assert_rows_equal(out, expected, [*COMPARED, "arm", "model_version", "obligation_id"])
    assert set(out["arm"]) == {CHAMPION, HOLDOUT}


def test_a_challenger_that_cannot_decide_routes_nothing_and_says_why(setup):
    lake_data, _, design = setup
    settings = lake_data["settings"]
    frame, _ = read_cut(lake_data["lake"])
    challenger = lake_data["challenger"]
    found, why = challenger_for(settings, design, frame.columns)
    assert found is not None and found.version == challenger.version and why is None
    lacking = [c for c in frame.columns if c != challenger.features[0]]
    found, why = challenger_for(settings, design, lacking)
    assert found is None
    assert f"challenger model {challenger.version} decides no row" in why
    assert challenger.features[0] in why
    off = dataclasses.replace(design, challenger_share=0.0)
    assert challenger_for(settings, off, frame.columns) == (None, None)


def test_experiment_report_shows_the_challenger_arm_of_closed_cuts(challenger_lake):
    """Once a scored cut has closed, the report puts the CHALLENGER arm beside the CHAMPION arm
    (rows, rates, cost) with their differences and intervals, read from results.scores."""
    from cobranza.decision.experiment_report import report
    from cobranza.decision.scoring import score

    settings = challenger_lake["settings"]
    assert report(settings).challenger is None  # only the open latest cut was scored
    gold = challenger_lake["gold"]
    closed = sorted(gold.loc[gold["roll_31_plus"].notna(), "cut_date"].unique())[-3:]
    scored = [score(settings, as_of=pd.Timestamp(c).date()) for c in closed]
    assert all(s.challenger > 0 for s in scored)
    result = report(settings)
    c = result.challenger
    assert c is not None and c.comparison == "CHALLENGER - CHAMPION"
    assert c.challenger_versions == [challenger_lake["challenger"].version]
    assert c.champion_versions == [challenger_lake["champion"].version]
    assert c.cuts_pooled == [str(pd.Timestamp(x).date()) for x in closed]
    arms = {a.arm: a for a in c.arms}
    assert arms["CHALLENGER"].rows == sum(s.challenger for s in scored)
    eligible_held = sum(s.holdout for s in scored)
    assert (
        arms["CHAMPION"].rows
        == sum(s.eligible for s in scored) - arms["CHALLENGER"].rows - eligible_held
    )
    for e in c.effects:
        assert e.ci_low <= e.difference <= e.ci_high and 0 <= e.p_value <= 1
    body = result.to_json()["challenger"]
    assert {a["arm"] for a in body["arms"]} == {"CHALLENGER", "CHAMPION"}
    assert any("challenger" in heading for heading, _, _ in result.sections())
    score(settings)  # results.latest back on the latest cut, as the other tests read it
