"""`cobranza impact` on a real champion: figures add up, chart and table land in the lake."""

from __future__ import annotations

import duckdb
import pytest


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
    assert oot["actions_avoided_cost"] == pytest.approx(
        oot["actions_avoided"] * costs.collection_action
    )
    assert oot["net_savings"] == pytest.approx(oot["actions_avoided_cost"] - oot["leakage_cost"])
    assert oot["policy_cost"] == pytest.approx(oot["baseline_cost"] - oot["net_savings"])
    assert 0 <= oot["leakage"] <= oot["no_assign"]
    # ground truth present: oracle figures and the captured share
    assert oot["truth_rows"] == oot["rows"]
    assert oot["oracle_net_savings"] > 0
    assert oot["share_of_oracle_captured"] == pytest.approx(
        oot["net_savings"] / oot["oracle_net_savings"], abs=1e-5
    )
    assert current["scoring_run_id"] == decision_lake["second"].scoring_run_id
    assert current["no_assign"] == decision_lake["second"].no_assign
    assert current["expected_net_savings"] == pytest.approx(
        current["expected_actions_avoided_cost"] - current["expected_leakage_cost"]
    )
    with open(out.chart, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    lake = decision_lake["lake"]
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT scope, net_savings, expected_net_savings FROM ml_metadata.impact "
            "WHERE impact_run_id = ? ORDER BY scope",
            [out.impact_run_id],
        ).fetchall()
    finally:
        con.close()
    assert [r[0] for r in rows] == ["current", "out_of_time"]
    assert rows[1][1] == pytest.approx(oot["net_savings"])
    assert rows[0][2] == pytest.approx(current["expected_net_savings"])
