"""The whole chain on a small simulated extract: ingest -> etl -> train -> score (twice) -> impact."""

from __future__ import annotations

import duckdb
import pytest

from cobranza.config import load_settings
from cobranza.contract import PERSONAL_COLUMNS, STANDARD
from cobranza.decision.reasons import CONTROL_GROUP, EFFECT_NOT_IDENTIFIED, NO_ACTIVE_MANDATE
from cobranza.lake import Lake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain(sim_extract, tmp_path_factory):
    from cobranza.decision.business_impact import impact
    from cobranza.decision.scoring import score
    from cobranza.ingest import ingest_extract
    from cobranza.ml.training import train
    from cobranza.transforms import run_etl

    root = tmp_path_factory.mktemp("decision-e2e")
    # The small extract gives a few hundred labeled rows: loosen the gate so that the first
    # version becomes champion (the gate itself is the ML layer's test). Reasons in English: the
    # decision-reason test reads their numbers. A larger scoring holdout than the default 5%, so
    # that the latest cut's few hundred eligible rows hold some.
    settings = load_settings(
        lake=root / "lake",
        gate={"max_ece": 1.0, "max_psi": 100.0},
        duckdb_threads=1,
        reason_language="en",
        experiment={"holdout_share": 0.3},
        # a fixed pseudonym key: the client split (a hash of client_key) and so every figure
        # below are the same each run (a lake otherwise makes its own random key)
        pseudonym_key="decision-e2e-tests-key-8a41c6f09e2d7b53",
    )
    ingest_extract(settings, sim_extract, STANDARD)
    run_etl(settings)
    trained = train(settings)
    first = score(settings)
    second = score(settings)
    return {
        "settings": settings,
        "lake": Lake(settings.lake),
        "trained": trained,
        "first": first,
        "second": second,
        "impact": impact(settings),
    }


def query(lake: Lake, sql: str) -> list[tuple]:
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_latest_covers_the_latest_cut_with_rules_and_no_pii(chain):
    lake = chain["lake"]
    (cut, n_gold, n_inel) = query(
        lake,
        "SELECT cut_date, count(*), count(*) FILTER (WHERE NOT eligible) "
        "FROM gold.obligation_snapshots WHERE cut_date = "
        "(SELECT max(cut_date) FROM gold.obligation_snapshots) GROUP BY 1",
    )[0]
    rows = query(
        lake,
        "SELECT count(*), count(DISTINCT obligation_id), min(cut_date), max(cut_date), "
        "count(*) FILTER (WHERE NOT eligible), "
        "count(*) FILTER (WHERE NOT eligible AND decision = 'ASSIGN' "
        f"  AND reason_1_code = '{NO_ACTIVE_MANDATE}' AND probability IS NULL), "
        "count(*) FILTER (WHERE eligible AND probability IS NULL), "
        "count(*) FILTER (WHERE (eligible AND expected_benefit IS NULL) OR model_version IS NULL) "
        "FROM results.latest",
    )[0]
    assert rows[0] == rows[1] == n_gold == chain["second"].obligations
    assert rows[2] == rows[3] == cut
    assert rows[4] == rows[5] == n_inel
    assert rows[6] == 0 and rows[7] == 0
    columns = {r[0] for r in query(lake, "DESCRIBE results.latest")}
    personal = {c for cols in PERSONAL_COLUMNS.values() for c in cols} | {"client_id"}
    assert not personal & columns
    assert chain["second"].model_version == chain["trained"].version


def test_reason_texts_come_from_the_feature_registry(chain):
    from cobranza.transforms.features import FEATURES

    texts = query(
        chain["lake"],
        "SELECT reason_2_code, reason_2_text FROM results.latest "
        "WHERE eligible AND reason_2_code IS NOT NULL",
    )
    assert texts
    names = {f.name.upper() for f in FEATURES}
    assert {code for code, _ in texts} <= names
    # registry wording, not the "<feature> = <value>" fallback
    assert sum(" = " not in text for _, text in texts) == len(texts)


def test_an_effect_the_holdout_does_not_identify_keeps_every_eligible_row_managed(chain):
    """This small extract's randomized holdout (about a hundred control rows before the
    out-of-time months) does not show that management lowers the roll: every eligible row but
    the holdout's is ASSIGN, its first reason says why with the interval, the model's own
    reasons after it; the holdout stays the control group."""
    effect = chain["trained"].effect
    assert effect["identified"] is False and effect["warning"]
    assert effect["log_odds_low"] < 0 < effect["log_odds_high"]
    rows = query(
        chain["lake"],
        "SELECT decision, reason_1_code, reason_1_text, reason_2_code FROM results.latest "
        "WHERE eligible AND arm <> 'HOLDOUT'",
    )
    assert rows
    for decision, code, text, second in rows:
        assert (decision, code) == ("ASSIGN", EFFECT_NOT_IDENTIFIED)
        assert "does not yet show what collection management changes" in text
        assert "(95% interval)" in text
        assert second is not None
    held = query(
        chain["lake"],
        "SELECT decision, reason_1_code, reason_2_code FROM results.latest WHERE arm = 'HOLDOUT'",
    )
    assert held, "the scoring holdout sets aside some eligible obligations"
    assert set(held) == {("NO_ASSIGN", CONTROL_GROUP, None)}


def test_scores_history_has_one_run_per_scoring(chain):
    runs = query(chain["lake"], "SELECT DISTINCT scoring_run_id FROM results.scores")
    assert {r[0] for r in runs} == {
        chain["first"].scoring_run_id,
        chain["second"].scoring_run_id,
    }


def test_impact_uses_the_extract_truth(chain):
    oot = chain["impact"].out_of_time
    assert oot["rows"] > 0
    assert oot["truth_rows"] > 0 and "oracle_net_savings" in oot
    assert oot["expected_net_savings"] == pytest.approx(
        oot["expected_baseline_cost"] - oot["expected_policy_cost"]
    )
    assert oot["share_of_oracle_captured"] > oot["no_model_share_of_oracle_captured"]
    assert chain["impact"].current["rows"] == chain["second"].obligations


def test_scored_period_tells_in_sample_cuts_from_held_out_ones(chain):
    """A cut of the model's training months has in-sample outcomes; the run says so."""
    from datetime import date

    from cobranza.decision.scoring import scored_period
    from cobranza.ml.registry import champion_oot_months, load_champion

    settings = chain["settings"]
    champion = load_champion(settings)
    oot = champion_oot_months(settings, str(champion.run_id))
    assert oot and chain["second"].scored_period == "after_training"
    first_oot = date.fromisoformat(oot[0] + "-01")
    before = date(first_oot.year - (first_oot.month == 1), (first_oot.month - 2) % 12 + 1, 28)
    assert scored_period(settings, champion, before) == "training"
    assert scored_period(settings, champion, first_oot) == "out_of_time"
    info = chain["lake"].run_info("results")
    assert info["scored_period"] == "after_training"


def test_experiment_report_json_compares_the_holdout_with_the_assigned_rows(chain):
    """`cobranza experiment report --json` on the simulated extract: the issue's keys, pooled arms
    that count gold's eligible labeled rows of the randomized cuts, an interval around each effect."""
    import json
    import subprocess

    lake = chain["lake"]
    out = subprocess.run(
        ["cobranza", "--lake", str(lake.root), "experiment", "report", "--json", "--mde", "0.1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    arms = {a["arm"]: a for a in report["arms"]}
    assert set(arms) == {"HOLDOUT", "ASSIGNED"}
    for a in report["arms"]:
        assert {"arm", "rows", "cure_debit_rate", "roll_rate", "cost_per_obligation"} <= set(a)
    assert [e["metric"] for e in report["effects"]] == [
        "cure_debit_rate",
        "cure_any_rate",
        "roll_rate",
        "cost_per_obligation",
    ]
    for e in report["effects"]:
        assert {"metric", "difference", "ci_low", "ci_high", "p_value"} <= set(e)
        assert e["ci_low"] < e["difference"] < e["ci_high"] and 0.0 <= e["p_value"] <= 1.0
    pooled = report["cuts_pooled"]
    assert pooled and report["population"] == "eligible"
    glob = lake.table_glob("gold", "obligation_snapshots")
    cuts = ", ".join(f"DATE '{c}'" for c in pooled)
    found = duckdb.sql(
        f"SELECT arm, count(*), avg(roll_31_plus::DOUBLE) FROM read_parquet('{glob}') "
        "WHERE eligible AND self_cure_debit IS NOT NULL AND roll_31_plus IS NOT NULL "
        f"AND cure_any IS NOT NULL AND cut_date IN ({cuts}) GROUP BY arm"
    ).fetchall()
    counted = {arm: (n, rate) for arm, n, rate in found}
    for arm in ("HOLDOUT", "ASSIGNED"):
        assert arms[arm]["rows"] == counted[arm][0]
        assert arms[arm]["roll_rate"] == pytest.approx(counted[arm][1])
    assert report["sample_size"]["mde"] == 0.1 and report["sample_size"]["holdout_rows"] > 0
