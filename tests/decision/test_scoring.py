"""Batch scoring on a real champion: one row per obligation of the cut, rules, reasons, history."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from cobranza.config import load_settings
from cobranza.contract import PERSONAL_COLUMNS
from cobranza.decision.attribution import PathTable, probability_and_contributions
from cobranza.decision.experiment import ArmDesign
from cobranza.decision.policy import Policy
from cobranza.decision.reasons import (
    CONTROL_GROUP,
    MANAGEMENT_DOES_NOT_PAY,
    MANAGEMENT_PAYS,
    NO_ACTIVE_MANDATE,
)
from cobranza.decision.scoring import OUTPUT_COLUMNS, ScoringError, read_cut, score, score_frame
from cobranza.errors import CobranzaError
from cobranza.lake import Lake
from tests.ml.gold import make_gold, publish_gold


def latest(lake: Lake) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT * FROM read_parquet('{lake.table_glob('results', 'latest')}')"
        ).df()
    finally:
        con.close()


def test_latest_has_one_row_per_obligation_of_the_latest_cut(decision_lake):
    gold, lake = decision_lake["gold"], decision_lake["lake"]
    cut = max(gold["cut_date"])
    expected = gold.loc[gold["cut_date"] == cut]
    out = latest(lake)
    assert list(out.columns) == OUTPUT_COLUMNS
    assert len(out) == len(expected) == decision_lake["second"].obligations
    assert set(out["obligation_id"]) == set(expected["obligation_id"])
    assert out["obligation_id"].is_unique
    assert (pd.to_datetime(out["cut_date"]).dt.date == cut).all()
    assert decision_lake["second"].cut_date == str(cut)


def test_no_assign_exactly_when_managing_is_expected_not_to_pay(decision_lake):
    out = latest(decision_lake["lake"])
    champion = decision_lake["champion"]
    costs = decision_lake["settings"].costs
    inel = out.loc[~out["eligible"]]
    assert len(inel) > 0
    assert (inel["decision"] == "ASSIGN").all()
    assert (inel["reason_1_code"] == NO_ACTIVE_MANDATE).all()
    assert inel["probability"].isna().all()
    assert out.loc[out["eligible"], "probability"].between(0, 1).all()
    # the model decides every eligible row but the experiment's holdout (test_holdout_rows_...)
    el = out.loc[out["eligible"] & (out["arm"] == "CHAMPION")]
    assert (el["p_roll_action"] <= el["p_roll_no_action"]).all()
    # the columns are the loss of decision.loss and the rule of decision.policy
    benefit = (el["p_roll_no_action"] - el["p_roll_action"]) * el[
        "roll_loss"
    ] - costs.collection_action
    assert np.allclose(benefit, el["expected_benefit"])
    assert ((el["expected_benefit"] < 0) == (el["decision"] == "NO_ASSIGN")).all()
    assert (el["roll_loss"] >= costs.later_collection_cost).all()
    codes = np.where(el["decision"] == "ASSIGN", MANAGEMENT_PAYS, MANAGEMENT_DOES_NOT_PAY)
    assert (el["reason_1_code"].to_numpy() == codes).all()
    assert (out["model_version"] == champion.version).all()
    assert out["scoring_run_id"].nunique() == 1
    assert out["scoring_run_id"].iloc[0] == decision_lake["second"].scoring_run_id
    assert not out["capacity_limited"].any()


def test_reason_direction_follows_the_decision(decision_lake):
    out = latest(decision_lake["lake"])
    el = out.loc[out["eligible"] & (out["arm"] == "CHAMPION")]  # the rows the model decided
    no, yes = el.loc[el["decision"] == "NO_ASSIGN"], el.loc[el["decision"] == "ASSIGN"]
    assert len(no) > 0 and len(yes) > 0
    for i in (2, 3):
        c_no = no[f"reason_{i}_contribution"].dropna()
        c_yes = yes[f"reason_{i}_contribution"].dropna()
        assert (c_no > 0).all() and (c_yes < 0).all()
    # the decision's reason first, then the model's strongest reasons, strongest first
    assert el["reason_1_contribution"].isna().all()
    model = el.dropna(subset=["reason_3_contribution"])
    assert (model["reason_2_contribution"].abs() >= model["reason_3_contribution"].abs()).all()
    assert el["reason_1_text"].notna().all()
    assert el["reason_1_text"].str.contains("%").all()
    codes = set(el["reason_2_code"].dropna())
    features = set(decision_lake["champion"].features)
    assert codes <= {f.upper() for f in features}


def test_holdout_rows_are_a_control_group_left_unmanaged(decision_lake):
    """Every scoring run sets aside about 5% of the eligible obligations (settings' default), by
    the salted hash: NO_ASSIGN, the control group as their only reason, recorded in results."""
    from cobranza.decision.experiment import assign_arms

    out = latest(decision_lake["lake"])
    settings = decision_lake["settings"]
    held = out["arm"] == "HOLDOUT"
    assert set(out["arm"]) == {"CHAMPION", "HOLDOUT"}  # no challenger registered
    assert held.sum() == decision_lake["second"].holdout > 0
    assert out.loc[held, "eligible"].all()
    assert abs(held.sum() / out["eligible"].sum() - 0.05) < 0.04
    assert (out.loc[held, "decision"] == "NO_ASSIGN").all()
    assert (out.loc[held, "reason_1_code"] == CONTROL_GROUP).all()
    assert out.loc[held, ["reason_2_code", "reason_3_code"]].isna().all().all()
    assert out.loc[held, "probability"].between(0, 1).all()  # the model's view is kept
    expected = assign_arms(
        out["obligation_id"],
        pd.to_datetime(out["cut_date"]).dt.date.to_numpy(),
        out["eligible"],
        ArmDesign.from_settings(settings.experiment),
    )
    assert list(out["arm"]) == list(expected)
    scores = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{decision_lake['lake'].table_glob('results', 'scores')}') "
        "WHERE arm = 'HOLDOUT'"
    ).fetchone()[0]
    assert scores >= held.sum()  # the history carries the arm too


def test_no_personal_data_in_results(decision_lake):
    out = latest(decision_lake["lake"])
    personal = {c for cols in PERSONAL_COLUMNS.values() for c in cols} | {"client_id"}
    assert not personal & set(out.columns)
    assert out["client_key"].notna().all()


def test_scores_history_grows_by_one_run_per_scoring(decision_lake):
    lake, settings = decision_lake["lake"], decision_lake["settings"]
    runs_before = [
        decision_lake["first"].scoring_run_id,
        decision_lake["second"].scoring_run_id,
    ]
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        before = con.execute("SELECT DISTINCT scoring_run_id FROM results.scores").fetchall()
    finally:
        con.close()
    assert {r[0] for r in before} >= set(runs_before)
    third = score(settings)
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        after = con.execute(
            "SELECT scoring_run_id, count(*) FROM results.scores GROUP BY 1"
        ).fetchall()
        latest_runs = con.execute("SELECT DISTINCT scoring_run_id FROM results.latest").fetchall()
    finally:
        con.close()
    assert len(after) == len(before) + 1
    assert dict(after)[third.scoring_run_id] == third.obligations
    assert latest_runs == [(third.scoring_run_id,)]
    info = lake.run_info("results")
    assert info["policy"]["collection_action"] == decision_lake["settings"].costs.collection_action
    assert info["model_version"] == decision_lake["champion"].version
    assert info["as_of"] == third.cut_date
    assert "scores" in info["history_tables"]


def test_as_of_scores_an_earlier_cut_and_rejects_an_unknown_one(decision_lake):
    lake, settings, gold = decision_lake["lake"], decision_lake["settings"], decision_lake["gold"]
    cuts = sorted(set(gold["cut_date"]))
    frame, cut = read_cut(lake, cuts[-3])
    assert cut == cuts[-3] and len(frame) == int((gold["cut_date"] == cuts[-3]).sum())
    with pytest.raises(ScoringError, match="no rows for cut date 2001-01-31"):
        score(settings, as_of=date(2001, 1, 31))


def test_no_gold_or_no_champion_is_a_clear_error(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    with pytest.raises(CobranzaError, match="no published version yet; run `cobranza etl`"):
        score(settings)
    publish_gold(Lake(settings.lake).ensure(), make_gold(clients=50, months=3, seed=1))
    with pytest.raises(CobranzaError, match="no champion"):
        score(settings)
    assert Lake(settings.lake).current_version("results") is None  # nothing published


def test_capacity_from_settings_limits_assign(decision_lake):
    champion = decision_lake["champion"]
    gold = decision_lake["gold"]
    frame = gold.loc[gold["cut_date"] == max(gold["cut_date"])].drop(columns=["_p_true"])
    n_inel = int((~frame["eligible"]).sum())
    policy = dataclasses.replace(champion.policy, capacity=n_inel + 10)
    out = score_frame(champion, frame, policy=policy)
    assign = out.loc[out["decision"] == "ASSIGN"]
    assert len(assign) == n_inel + 10
    el = out.loc[out["eligible"]]
    kept = el.loc[el["decision"] == "ASSIGN", "expected_benefit"]
    freed = el.loc[el["capacity_limited"], "expected_benefit"]
    # the largest expected benefits keep the capacity; the freed ones would still have paid
    assert len(freed) > 0 and kept.min() >= freed.max() and (freed >= 0).all()
    assert (el.loc[el["capacity_limited"], "reason_1_code"] == "CAPACITY_LIMITED").all()
    assert (out.loc[~out["eligible"], "decision"] == "ASSIGN").all()


def test_online_path_matches_batch_for_the_same_rows(decision_lake):
    champion, lake = decision_lake["champion"], decision_lake["lake"]
    batch = latest(lake).set_index("obligation_id")
    frame, _ = read_cut(lake)
    some = frame.sample(25, random_state=1)
    design = ArmDesign.from_settings(decision_lake["settings"].experiment)
    online = score_frame(champion, some, design=design).set_index("obligation_id")
    ref = batch.loc[online.index]
    np.testing.assert_allclose(online["probability"], ref["probability"], equal_nan=True)
    assert (online["decision"] == ref["decision"]).all()
    assert (online["arm"] == ref["arm"]).all()
    assert (online["reason_1_code"].fillna("") == ref["reason_1_code"].fillna("")).all()


@pytest.mark.parametrize("method", ["path", "treeshap"])
def test_contributions_add_up_to_the_model_log_odds(decision_lake, method):
    model = decision_lake["champion"].model
    frame, _ = read_cut(decision_lake["lake"])
    X = frame.loc[frame["eligible"], model.feature_names_]
    proba, contrib = probability_and_contributions(model, X, list(model.feature_names_), method)
    np.testing.assert_allclose(proba, model.predict_proba(X)[:, 1], atol=1e-12)
    raw = model.raw_score(X)
    bias = PathTable(model.booster_, model.best_iteration_).bias
    if method == "treeshap":
        bias = model.contributions(X)["bias"].to_numpy()
    # path credits are float32 (ranking needs no more); TreeSHAP is float64
    np.testing.assert_allclose(
        contrib.sum(axis=1) + bias, raw, atol=1e-4 if method == "path" else 1e-9
    )


def test_policy_from_training_round_trips(decision_lake):
    policy = decision_lake["champion"].policy
    assert isinstance(policy, Policy)
    again = Policy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert again == policy
    assert math.isfinite(policy.expected_cost_per_obligation)
