"""The `bi` views of the DuckDB catalog: every view opens and reconciles with the results tables.

On a real ingested, trained, scored and monitored lake (three scoring runs, one of them
superseded) read through the catalog file as Power BI would (read-only), and on hand-built results
where a rule must hold exactly (the last run of a cut wins; the expected saving formula;
days-past-due bands). The quarantine view never carries a refused value.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import date

import duckdb
import pytest

from cobranza.decision.experiment import SCORING_ARMS
from cobranza.lake import Lake
from cobranza.lake.bi import bi_statements, bi_views
from cobranza.lake.catalog import refresh_catalog
from tests.api.conftest import POLICY, publish_results, results_frame
from tests.automations.lake import PAST_CUT, build_scored_lake
from tests.lake.lakes import python

PERSONAL = {"full_name", "document_number", "document_type", "email", "phone", "client_id"}
EXPECTED_VIEWS = {
    "scoring_runs",
    "fact_decisions",
    "fact_outcomes",
    "dim_date",
    "dim_product",
    "dim_segment",
    "dim_decision",
    "dim_arm",
    "dim_outcome",
    "model_performance",
    "savings",
    "monitoring_runs",
    "monitoring_drift",
    "monitoring_performance",
    "quarantine",
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory, sim_extract):
    return build_scored_lake(tmp_path_factory.mktemp("bi"), sim_extract)


@pytest.fixture(scope="module")
def cat(scored):
    con = duckdb.connect(str(scored["lake"].catalog_path), read_only=True)
    yield con
    con.close()


def one(con, sql, *params):
    return con.execute(sql, list(params)).fetchone()


def test_every_view_exists_and_opens_read_only(scored, cat):
    names = {
        r[0]
        for r in cat.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'bi' AND NOT internal"
        ).fetchall()
    }
    assert names == EXPECTED_VIEWS == set(bi_views(scored["lake"]))
    for name in names:
        assert one(cat, f"SELECT count(*) FROM bi.{name}")[0] > 0, name


def test_no_personal_data_in_any_view(cat):
    cols = {
        r[0].lower()
        for r in cat.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'bi'"
        ).fetchall()
    }
    assert cols and not cols & PERSONAL
    assert "client_key" in cols


def test_fact_decisions_one_row_per_obligation_and_cut(cat):
    rows, keys = one(
        cat,
        "SELECT count(*), count(DISTINCT (obligation_id, cut_date)) FROM bi.fact_decisions",
    )
    assert rows == keys
    distinct_scored = one(
        cat, "SELECT count(DISTINCT (obligation_id, cut_date)) FROM results.scores"
    )[0]
    assert rows == distinct_scored


def test_current_decisions_reconcile_with_latest(scored, cat):
    latest = scored["latest"]
    got = one(
        cat,
        "SELECT count(*), count(*) FILTER (WHERE decision = 'ASSIGN'), "
        "count(*) FILTER (WHERE decision = 'NO_ASSIGN'), sum(amount_past_due), "
        "min(scoring_run_id), max(scoring_run_id) FROM bi.fact_decisions WHERE is_current",
    )
    want = one(
        cat,
        "SELECT count(*), count(*) FILTER (WHERE decision = 'ASSIGN'), "
        "count(*) FILTER (WHERE decision = 'NO_ASSIGN'), sum(amount_past_due) FROM results.latest",
    )
    assert got[:3] == want[:3] == (latest.obligations, latest.assign, latest.no_assign)
    assert got[3] == pytest.approx(want[3])
    # the re-scored cut: only the last run's rows, never the superseded run's
    assert got[4] == got[5] == latest.scoring_run_id != scored["superseded"].scoring_run_id
    superseded = one(
        cat,
        "SELECT count(*) FROM bi.fact_decisions WHERE scoring_run_id = ?",
        scored["superseded"].scoring_run_id,
    )[0]
    assert superseded == 0


def test_expected_saving_equals_the_impact_of_the_current_run(scored, cat):
    current = scored["impact"].current
    total, no_assign = one(
        cat,
        "SELECT sum(expected_saving), count(*) FILTER (WHERE decision = 'NO_ASSIGN') "
        "FROM bi.fact_decisions WHERE is_current",
    )
    assert no_assign == current["no_assign"]
    assert total == pytest.approx(current["expected_net_savings"], abs=0.01)


def test_savings_split_todays_net_into_the_decisions_and_the_control_group(scored, cat):
    current = scored["impact"].current
    holdout, without, cost, net = one(
        cat,
        "SELECT holdout, expected_savings_without_holdout, expected_holdout_cost, "
        "expected_net_savings FROM bi.savings WHERE impact_run_id = ? AND scope = 'current'",
        scored["impact"].impact_run_id,
    )
    assert holdout == current["holdout"]
    assert without == pytest.approx(current["expected_savings_without_holdout"], abs=0.01)
    assert cost == pytest.approx(current["expected_holdout_cost"], abs=0.01)
    assert net == pytest.approx(without - cost, abs=1e-6)
    # the control group's cost is the benefit of managing its rows the policy would assign:
    # where managing pays, or every one when the effect is not identified (ASSIGN all)
    policy = scored["lake"].run_info("results")["policy"]
    pays = "expected_benefit >= 0" if policy.get("effect_identified", True) else "true"
    held = one(
        cat,
        f"SELECT sum(expected_benefit) FILTER (WHERE {pays}) FROM bi.fact_decisions "
        "WHERE is_current AND arm = 'HOLDOUT'",
    )[0]
    assert cost == pytest.approx(held or 0.0, abs=0.01)


def test_fact_outcomes_are_the_past_cut_with_its_realized_target(scored, cat):
    gold = scored["gold"]
    past = gold[gold["cut_date"] == PAST_CUT]
    rows, cures, cuts = one(
        cat,
        "SELECT count(*), sum(self_cure_debit), count(DISTINCT cut_date) FROM bi.fact_outcomes",
    )
    # only the past cut is labeled among the scored cuts; every one of its rows was scored
    assert cuts == 1 and rows == scored["past"].obligations == len(past)
    assert cures == int(past["self_cure_debit"].sum())
    # what the horizon showed, from gold's labels (this gold has no cure_any: a row that neither
    # rolled nor cured by the debit is `not_rolled`)
    got = dict(cat.execute("SELECT outcome, count(*) FROM bi.fact_outcomes GROUP BY 1").fetchall())
    rolled = past["roll_31_plus"].astype(int) == 1
    debit = ~rolled & (past["self_cure_debit"] == 1)
    want = {
        "rolled_31_plus": int(rolled.sum()),
        "cured_by_debit": int(debit.sum()),
        "not_rolled": int((~rolled & ~debit).sum()),
    }
    assert got == {k: v for k, v in want.items() if v}
    no_assign = one(cat, "SELECT count(*) FROM bi.fact_outcomes WHERE decision = 'NO_ASSIGN'")[0]
    assert no_assign == scored["past"].no_assign
    # the realized roll is gold's
    rolls = one(cat, "SELECT sum(roll_31_plus) FROM bi.fact_outcomes")[0]
    assert rolls == int(past["roll_31_plus"].sum())
    # realized saving of every NO_ASSIGN row by hand: the action saved minus the realized roll
    # beyond what management would have left, at the roll loss; ASSIGN rows save nothing
    rows = cat.execute(
        "SELECT o.decision, o.realized_saving, o.roll_31_plus, o.p_roll_action, o.roll_loss, "
        "d.collection_action FROM bi.fact_outcomes o JOIN bi.fact_decisions d "
        "USING (obligation_id, cut_date)"
    ).fetchall()
    assert {r[0] for r in rows} == {"ASSIGN", "NO_ASSIGN"}
    for decision, saving, rolled, p_act, loss, ca in rows:
        want = ca - (rolled - p_act) * loss if decision == "NO_ASSIGN" else 0
        assert saving == pytest.approx(want)


def test_dimensions_cover_the_facts(scored, cat):
    gold = scored["gold"]
    n, distinct, cut_days = one(
        cat,
        "SELECT count(*), count(DISTINCT date), count(*) FILTER (WHERE is_cut_date) FROM bi.dim_date",
    )
    assert n == distinct and cut_days == gold["cut_date"].nunique()
    orphans = one(
        cat,
        "SELECT count(*) FROM bi.fact_decisions f LEFT JOIN bi.dim_date d ON d.date = f.cut_date "
        "LEFT JOIN bi.dim_product p USING (product) LEFT JOIN bi.dim_segment s USING (segment) "
        "WHERE d.date IS NULL OR p.product IS NULL OR s.segment IS NULL",
    )[0]
    assert orphans == 0
    products = {r[0] for r in cat.execute("SELECT product FROM bi.dim_product").fetchall()}
    assert products == set(gold["product"])


def test_model_performance_and_savings(scored, cat):
    n_metrics = one(cat, "SELECT count(*) FROM ml_metadata.model_metrics")[0]
    assert one(cat, "SELECT count(*) FROM bi.model_performance")[0] == n_metrics
    champion = {
        r[0]
        for r in cat.execute(
            "SELECT DISTINCT model_version FROM bi.model_performance WHERE is_champion"
        ).fetchall()
    }
    assert champion == {str(scored["trained"].version)}
    auc = one(
        cat,
        "SELECT value FROM bi.model_performance WHERE part = 'oot' AND metric = 'auc'",
    )[0]
    assert auc == pytest.approx(scored["trained"].oot["auc"], abs=1e-4)
    oot = scored["impact"].out_of_time
    net, captured, beats, action = one(
        cat,
        "SELECT expected_net_savings, share_of_oracle_captured, beats_both_extremes, "
        "collection_action FROM bi.savings WHERE impact_run_id = ? AND scope = 'out_of_time'",
        scored["impact"].impact_run_id,
    )
    assert net == pytest.approx(oot["expected_net_savings"], abs=0.01)
    assert beats == oot["beats_both_extremes"]
    assert action == scored["settings"].costs.collection_action
    if oot.get("share_of_oracle_captured") is None:
        assert captured is None
    else:
        assert captured == pytest.approx(oot["share_of_oracle_captured"], abs=1e-6)


def test_views_follow_the_lake_state(tmp_path):
    lake = Lake(tmp_path / "lake").ensure()
    assert bi_views(lake) == {}
    assert refresh_catalog(lake)
    frame = results_frame(n=21, cut=date(2025, 6, 30))
    publish_results(lake.root, frame)
    assert set(bi_views(lake)) == {
        "scoring_runs",
        "fact_decisions",
        "dim_date",
        "dim_product",
        "dim_segment",
        "dim_decision",
        "dim_arm",
    }
    assert bi_statements(lake)[:2] == ["CREATE SCHEMA IF NOT EXISTS bi", "__DROP_VIEWS__ bi"]


def test_last_run_of_a_cut_wins_and_saving_formula_is_exact(tmp_path):
    lake_root = tmp_path / "lake"
    cut = date(2025, 6, 30)
    first = results_frame(n=14, cut=cut, seed=1)
    publish_results(lake_root, first)
    second = results_frame(n=14, cut=cut, seed=2)  # same obligations, other probabilities
    second_version = publish_results(lake_root, second)
    older = results_frame(n=7, cut=date(2025, 5, 31), seed=3)
    older["obligation_id"] = [f"OLD{i}" for i in range(7)]
    publish_results(lake_root, older)  # an older cut scored last: it does not replace June
    lake = Lake(lake_root)
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        got = con.execute(
            "SELECT obligation_id, probability, decision, results_version, expected_saving, "
            "dpd_band, days_past_due, is_current, product, provision_step, collection_action, "
            "later_collection_cost FROM bi.fact_decisions WHERE cut_date = ? "
            "ORDER BY obligation_id",
            [cut],
        ).df()
        runs = con.execute(
            "SELECT later_collection_cost, default_provision_step, provision_steps "
            "FROM bi.scoring_runs"
        ).fetchall()
        assert one(con, "SELECT count(*) FROM bi.fact_decisions")[0] == 21
    finally:
        con.close()
    assert list(got["obligation_id"]) == list(second["obligation_id"])
    assert set(got["results_version"]) == {second_version}
    assert not got["is_current"].any()
    merged = got.merge(second, on="obligation_id", suffixes=("", "_want"))
    assert (merged["decision"] == merged["decision_want"]).all()
    assert set(runs) == {(30000.0, 0.05, "CONSUMER_LOAN 8%, CREDIT_CARD 10%")}
    assert (got["collection_action"] == POLICY["collection_action"]).all()
    assert (got["later_collection_cost"] == POLICY["later_collection_cost"]).all()
    for _, r in merged.iterrows():
        assert r["provision_step"] == POLICY["provision_step"][r["product"]]
        # a NO_ASSIGN row saves what managing it would cost beyond the rolls it prevents
        want = -r["expected_benefit"] if r["decision"] == "NO_ASSIGN" else 0
        assert r["expected_saving"] == pytest.approx(want)
        lo, hi = (
            (1, 5)
            if r["days_past_due"] <= 5
            else (6, 10)
            if r["days_past_due"] <= 10
            else ((11, 15) if r["days_past_due"] <= 15 else (16, 30))
        )
        assert r["dpd_band"] == f"{lo:02d}-{hi:02d}"


def test_current_decisions_carry_the_arm_of_the_latest_run(scored, cat):
    """Every decision has its experiment arm, as the run wrote it; the control group is NO_ASSIGN
    and every arm in the facts is a row of dim_arm."""
    import pyarrow.parquet as pq

    lake = scored["lake"]
    latest = pq.read_table(lake.table_dir("results", "latest")).to_pandas()
    want = latest.groupby("arm").size().to_dict()
    got = dict(
        cat.execute(
            "SELECT arm, count(*) FROM bi.fact_decisions WHERE is_current GROUP BY 1"
        ).fetchall()
    )
    assert got == want and "HOLDOUT" in got
    holdout = {
        r[0]
        for r in cat.execute(
            "SELECT DISTINCT decision FROM bi.fact_decisions WHERE arm = 'HOLDOUT'"
        ).fetchall()
    }
    assert holdout == {"NO_ASSIGN"}
    orphans = one(
        cat,
        "SELECT count(*) FROM bi.fact_outcomes f LEFT JOIN bi.dim_arm a USING (arm) "
        "WHERE a.arm IS NULL",
    )[0]
    assert orphans == 0


def test_outcome_classes_follow_the_roll_then_the_channel_of_the_cure(tmp_path):
    """Rolled to 31+ first, then cured by the debit, cured otherwise, not cured; ASSIGN and
    NO_ASSIGN alike. Results without an arm column (scored before the experiment) read CHAMPION."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cut = date(2025, 6, 30)
    frame = results_frame(n=10, cut=cut)
    lake = Lake(tmp_path / "lake").ensure()
    # (self_cure_debit, cure_any, roll_31_plus) -> class, for the first 8 obligations
    labels = [
        ((0, 0, 1), "rolled_31_plus"),
        ((1, 1, 1), "rolled_31_plus"),  # a roll is the loss, whatever came later
        ((1, 1, 0), "cured_by_debit"),
        ((0, 1, 0), "cured_otherwise"),
        ((0, 0, 0), "not_cured"),
    ] * 2
    labels = labels[:8]
    gold = pa.table(
        {
            "obligation_id": list(frame["obligation_id"][:8]),
            "cut_date": pa.array([cut] * 8, pa.date32()),
            "product": list(frame["product"][:8]),
            "segment": list(frame["segment"][:8]),
            "self_cure_debit": [t[0] for t, _ in labels],
            "cure_any": [t[1] for t, _ in labels],
            "roll_31_plus": [t[2] for t, _ in labels],
        }
    )
    with lake.publish("gold") as pub:
        pq.write_table(gold, pub.table_dir("obligation_snapshots") / "part-0.parquet")
    publish_results(lake.root, frame, drop=("arm",))
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        got = con.execute(
            "SELECT obligation_id, outcome, arm, decision FROM bi.fact_outcomes "
            "ORDER BY obligation_id"
        ).fetchall()
    finally:
        con.close()
    assert [(r[0], r[1]) for r in got] == [
        (oid, want) for oid, (_, want) in zip(frame["obligation_id"][:8], labels, strict=True)
    ]
    assert {r[2] for r in got} == {"CHAMPION"}
    assert {r[3] for r in got} == {"ASSIGN", "NO_ASSIGN"}


def test_foreign_tables_never_break_the_catalog(tmp_path):
    """Results or gold without the expected columns: no BI facts, and the catalog still refreshes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = Lake(tmp_path / "lake").ensure()
    for zone, table in (("gold", "obligation_snapshots"), ("results", "scores")):
        with lake.publish(zone) as pub:
            pq.write_table(pa.table({"x": [1, 2]}), pub.table_dir(table) / "part-0.parquet")
            if zone == "results":
                pub.history_tables.add("scores")
    assert bi_views(lake) == {}
    assert refresh_catalog(lake)
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM results.scores").fetchone()[0] == 2
    finally:
        con.close()


def test_model_performance_without_registry_events(scored, tmp_path):
    """Model runs recorded but no registry event yet: the view opens, nobody is champion."""
    import shutil

    root = tmp_path / "lake"
    shutil.copytree(scored["lake"].root, root)
    shutil.rmtree(root / "ml_metadata" / "registry_events")
    lake = Lake(root)
    assert refresh_catalog(lake)
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        rows, champions = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_champion) FROM bi.model_performance"
        ).fetchone()
    finally:
        con.close()
    assert rows > 0 and champions == 0


def test_dimensions_carry_the_words_of_cobranza_labels(cat):
    from cobranza.labels import codes, label

    for kind in ("product", "segment", "decision", "outcome", "arm"):
        rows = cat.execute(
            f"SELECT {kind}, {kind}_label, {kind}_label_en FROM bi.dim_{kind}"
        ).fetchall()
        assert rows
        for code, es, en in rows:
            assert (es, en) == (label(kind, code, "es"), label(kind, code, "en")), code
    fixed = {r[0] for r in cat.execute("SELECT outcome FROM bi.dim_outcome").fetchall()}
    assert fixed == set(codes("outcome"))
    arms = {r[0] for r in cat.execute("SELECT arm FROM bi.dim_arm").fetchall()}
    assert arms == set(SCORING_ARMS)  # the experiment's arms, whatever the facts hold
    assert one(cat, "SELECT product_label FROM bi.dim_product WHERE product = 'CREDIT_CARD'") == (
        "Tarjeta de crédito",
    )


def test_monitoring_views_are_the_monitor_runs(scored, cat):
    result = scored["monitor"].to_json()
    run = one(
        cat,
        "SELECT status, status_label, features, score_psi, is_latest, current_cut "
        "FROM bi.monitoring_runs WHERE monitoring_run_id = ?",
        result["monitoring_run_id"],
    )
    assert run[0] == result["status"] and run[4] is True
    assert (
        run[2]
        == one(
            cat,
            "SELECT count(*) FROM bi.monitoring_drift WHERE NOT is_score AND monitoring_run_id = ?",
            result["monitoring_run_id"],
        )[0]
    )
    assert run[3] == pytest.approx(result["score_psi"], abs=1e-4)
    assert str(run[5]) == str(result["current_cut"])[:10]
    top = result["top_drift"][0]
    drift = one(
        cat,
        "SELECT psi, status, ks, js FROM bi.monitoring_drift WHERE feature = ? "
        "AND monitoring_run_id = ?",
        top["feature"],
        result["monitoring_run_id"],
    )
    assert drift == (top["psi"], top["status"], top["ks"], top["js"])
    performance = one(
        cat,
        "SELECT count(*), min(cut_date) FROM bi.monitoring_performance WHERE monitoring_run_id = ?",
        result["monitoring_run_id"],
    )
    assert performance[0] >= 1 and performance[1] == PAST_CUT


def test_quarantine_view_names_the_refused_cells_without_their_values(scored, cat):
    from cobranza.contract import PERSONAL_COLUMNS

    quarantined = one(cat, "SELECT count(*) FROM raw.quarantine")[0]
    assert quarantined > 0, "the simulated extract has refused rows"
    assert one(cat, "SELECT count(*) FROM bi.quarantine")[0] == quarantined
    columns = [
        r[0]
        for r in cat.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'bi' "
            "AND table_name = 'quarantine'"
        ).fetchall()
    ]
    assert "value" not in columns and {"file", "line", "column_name", "reason"} <= set(columns)
    # no refused value (a name, a document number, an e-mail) appears in any cell of the view
    values = {
        r[0]
        for r in cat.execute(
            "SELECT DISTINCT value FROM raw.quarantine WHERE length(value) >= 6"
        ).fetchall()
    }
    cells = set()
    for row in cat.execute("SELECT * FROM bi.quarantine").fetchall():
        cells |= {str(c) for c in row if c is not None}
    assert values and not any(v in cell for v in values for cell in cells)
    flagged = {
        (r[0], r[1])
        for r in cat.execute(
            "SELECT DISTINCT file_stem, column_name FROM bi.quarantine WHERE personal_column"
        ).fetchall()
    }
    personal = {(stem, col) for stem, cols in PERSONAL_COLUMNS.items() for col in cols}
    seen = {
        (r[0], r[1])
        for r in cat.execute("SELECT DISTINCT file_stem, column_name FROM bi.quarantine").fetchall()
    }
    assert flagged == seen & personal


@contextmanager
def raw_out_of_reach(lake: Lake):
    """The raw zone made unreadable (mode 000), as for a BI account without access to it; root
    reads through any mode, so for root the folder is moved away instead. Restored after."""
    raw = lake.root / "raw"
    if os.geteuid() != 0:
        mode = raw.stat().st_mode
        raw.chmod(0)
        try:
            yield
        finally:
            raw.chmod(mode)
    else:
        away = lake.root.parent / "raw-out-of-reach"
        raw.rename(away)
        try:
            yield
        finally:
            away.rename(raw)


# A BI tool in its own process: every `bi` and `ml_metadata` view of a read-only catalog counted
# (an error is reported as the view's answer), and whether raw itself answered.
BI_READER = """
import duckdb, json
con = duckdb.connect({path!r}, read_only=True)
out = {{}}
for schema, view in con.execute(
    "SELECT schema_name, view_name FROM duckdb_views() "
    "WHERE schema_name IN ('bi', 'ml_metadata') AND NOT internal"
).fetchall():
    try:
        out[schema + "." + view] = con.execute(f'SELECT count(*) FROM {{schema}}."{{view}}"').fetchone()[0]
    except duckdb.Error as exc:
        out[schema + "." + view] = str(exc).splitlines()[0]
try:
    con.execute("SELECT count(*) FROM raw.quarantine").fetchone()
    out["raw readable"] = True
except duckdb.Error:
    out["raw readable"] = False
print(json.dumps(out))
"""


def _bi_answers(lake: Lake) -> dict:
    done = python(BI_READER.format(path=str(lake.catalog_path)))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_bi_and_metadata_view_answers_without_the_raw_zone(scored):
    """A BI account that may not read raw queries every `bi` and `ml_metadata` view of a
    read-only catalog: all answer (the quarantine and the lake runs are copies in the metadata
    area), with the rows they had with raw in reach."""
    lake = scored["lake"]
    before = _bi_answers(lake)
    assert before.pop("raw readable") is True
    assert {"bi.quarantine", "ml_metadata.lake_runs"} <= set(before)
    assert len([n for n in before if n.startswith("bi.")]) == len(EXPECTED_VIEWS)
    assert all(isinstance(n, int) for n in before.values()), before
    with raw_out_of_reach(lake):
        after = _bi_answers(lake)
    assert after.pop("raw readable") is False  # raw itself is out of reach
    assert after == before and before["bi.quarantine"] > 0


def test_quarantine_reasons_never_carry_digits_or_emails(tmp_path):
    """Defence in depth: a reason that quoted a value would still not show it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = Lake(tmp_path / "lake").ensure()
    with lake.publish("raw") as pub:
        pq.write_table(
            pa.table(
                {
                    "file": ["clients.csv", "payments.csv.gz"],
                    "line": [2, 7],
                    "column": ["document_number", "amount"],
                    "value": ["1014929605", "x"],
                    "reason": ["duplicate 1014929605 of ana.perez@mail.com", "not a valid decimal"],
                }
            ),
            pub.table_dir("quarantine") / "part-0.parquet",
        )
    assert refresh_catalog(lake)
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT file_stem, column_name, personal_column, value_present, reason "
            "FROM bi.quarantine ORDER BY line"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        ("clients", "document_number", True, True, "duplicate [redacted] of [redacted]"),
        ("payments", "amount", False, True, "not a valid decimal"),
    ]


def test_a_repeated_reason_is_left_empty_in_fact_decisions(tmp_path):
    frame = results_frame(n=7, cut=date(2025, 6, 30))
    frame["reason_3_text"] = frame["reason_1_text"]  # two features that read the same
    frame.loc[0, "reason_2_code"] = frame.loc[0, "reason_1_code"]
    publish_results(tmp_path / "lake", frame)
    con = duckdb.connect(str(Lake(tmp_path / "lake").catalog_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT obligation_id, reason_1_text, reason_2_code, reason_2_text, reason_3_code, "
            "reason_3_text, reason_3_contribution FROM bi.fact_decisions ORDER BY obligation_id"
        ).fetchall()
    finally:
        con.close()
    first, second = rows[0], rows[1]
    assert first[1] == "reason 1 in words" and first[2] is None and first[3] is None
    assert second[2] == "feature_2" and second[3] == "reason 2 in words"
    assert all(r[4] is None and r[5] is None and r[6] is None for r in rows)
