"""`cobranza impact` on a real champion: figures add up, chart and table land in the lake."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from cobranza.config import Costs
from cobranza.decision.business_impact import held_out_no_assign
from cobranza.decision.experiment import HOLDOUT
from cobranza.decision.policy import Policy


def test_impact_figures_chart_and_table(decision_lake):
    out = decision_lake["impact"]
    oot, current = out.out_of_time, out.current
    costs = decision_lake["champion"].policy.costs
    assert oot["rows"] > 0 and len(oot["months"]) == decision_lake["settings"].oot_months
    assert oot["months_from"] == "champion training run"
    gold = decision_lake["gold"]
    labeled_months = sorted(
        {str(d)[:7] for d in gold.loc[gold["self_cure_debit"].notna(), "cut_date"]}
    )
    assert oot["months"] == labeled_months[-decision_lake["settings"].oot_months :]
    in_oot = gold["cut_date"].map(lambda d: str(d)[:7] in oot["months"])
    assert oot["rows"] == int((in_oot & gold["eligible"] & gold["self_cure_debit"].notna()).sum())
    assert oot["actions_avoided_cost"] == pytest.approx(oot["no_assign"] * costs.collection_action)
    assert oot["expected_net_savings"] == pytest.approx(
        oot["expected_baseline_cost"] - oot["expected_policy_cost"]
    )
    assert oot["expected_net_savings"] == pytest.approx(
        oot["actions_avoided_cost"] - oot["expected_extra_roll_cost"], abs=0.05
    )
    # the policy is the Bayes rule on the model's own probabilities: it never expects to lose
    assert oot["expected_net_savings"] >= 0
    # ground truth present: every rule valued with the true potential outcomes
    assert oot["truth_rows"] == oot["rows"]
    assert oot["oracle_net_savings"] > 0
    for prefix in ("", "naive_", "no_model_"):
        assert oot[f"{prefix}share_of_oracle_captured"] == pytest.approx(
            oot[f"{prefix}true_net_savings"] / oot["oracle_net_savings"], abs=1e-5
        )
        assert oot[f"{prefix}share_of_oracle_captured"] <= 1.0 + 1e-9
    assert oot["share_of_oracle_captured"] > oot["no_model_share_of_oracle_captured"]
    assert isinstance(oot["beats_both_extremes"], bool)
    assert current["scoring_run_id"] == decision_lake["second"].scoring_run_id
    assert current["no_assign"] == decision_lake["second"].no_assign
    assert current["expected_net_savings"] == pytest.approx(
        current["expected_baseline_cost"] - current["expected_policy_cost"]
    )
    with open(out.chart, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    lake = decision_lake["lake"]
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT scope, true_net_savings, expected_net_savings FROM ml_metadata.impact "
            "WHERE impact_run_id = ? ORDER BY scope",
            [out.impact_run_id],
        ).fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == ["current", "out_of_time"]
    assert rows[1][1] == pytest.approx(oot["true_net_savings"])
    assert rows[0][2] == pytest.approx(current["expected_net_savings"])


def test_impact_json_splits_todays_net_savings_into_the_policys_and_the_holdouts(decision_lake):
    out = decision_lake["impact"].to_json()
    lake = decision_lake["lake"]
    con = duckdb.connect()
    try:
        latest = con.execute(
            "SELECT arm, expected_benefit FROM read_parquet(?) WHERE eligible",
            [lake.table_glob("results", "latest")],
        ).df()
    finally:
        con.close()
    held = latest.loc[latest["arm"] == HOLDOUT, "expected_benefit"]
    identified = decision_lake["champion"].policy.effect_identified
    lost = held[held >= 0].sum() if identified else held.sum()
    for scope in ("current", "out_of_time"):
        figures = out[scope]
        assert figures["expected_net_savings"] == pytest.approx(
            figures["expected_savings_without_holdout"] - figures["expected_holdout_cost"],
            abs=1e-6,
        )
    current = out["current"]
    assert current["holdout"] == len(held) > 0
    assert current["expected_holdout_cost"] == pytest.approx(lost, abs=0.01)
    # out of time the policy re-decides every row: no holdout there
    assert out["out_of_time"]["holdout"] == 0
    assert out["out_of_time"]["expected_holdout_cost"] == 0.0


def test_a_held_out_row_is_valued_at_the_policys_own_rule_without_the_capacity():
    benefit = np.array([-3.0, 0.0, 2.0, 5.0])
    # a capacity of 1 would leave all but one row; a held-out row is valued on its own benefit
    identified = Policy.of(Costs(daily_capacity=1))
    assert held_out_no_assign(benefit, identified).tolist() == [True, False, False, False]
    not_identified = Policy.of(Costs(daily_capacity=1), effect_identified=False)
    assert held_out_no_assign(benefit, not_identified).tolist() == [False] * 4


def test_sensitivity_values_todays_decisions_over_a_grid_of_costs(decision_lake):
    from cobranza.decision.business_impact import impact

    out = impact(decision_lake["settings"], sensitivity=True)
    grid = out.sensitivity
    assert grid is not None and grid["valued_with"] == "truth"
    assert len(grid["grid"]) == 15
    today = next(
        r
        for r in grid["grid"]
        if r["provision_factor"] == 1.0
        and r["collection_action"] == decision_lake["settings"].costs.collection_action
    )
    assert today["todays_decisions_net_savings"] == pytest.approx(
        out.out_of_time["true_net_savings"], abs=0.05
    )
    # today's savings are linear in the provision factor: positive below the break-even, negative
    # above it (the NO_ASSIGN rows' true effects are positive in the synthetic gold)
    be = grid["break_even"]["provision_factor"]
    assert be is not None
    same_action = [r for r in grid["grid"] if r["collection_action"] == today["collection_action"]]
    for r in same_action:
        assert (r["todays_decisions_net_savings"] > 0) == (r["provision_factor"] < be)
