"""Version 2's assignment file: validated and quarantined like every file, matched to early
delinquency at its cut, and the run's counts of arms, missing assignments and contamination."""

from __future__ import annotations

import copy

import pytest

from cobranza.console import UI
from cobranza.contract import STANDARD
from cobranza.ingest import ingest_extract
from cobranza.ingest.assignments import NOT_EARLY, V1_WARNING
from cobranza.lake import Lake
from tests.ingest.conftest import BASE_ROWS_V2, write_extract
from tests.ingest.test_validate import quarantine, raw_rows, raw_rows_q

# Three obligations over three month-end cuts; 2023-03-31 is the latest (today's decision).
CUTS = [
    ["2023-01-31", "O1", "5", "480000", "11500000"],  # early: HOLDOUT
    ["2023-01-31", "O2", "0", "0", "2100000"],  # current: an assignment here is refused
    ["2023-01-31", "O3", "12", "1300000", "50000000"],  # early, no assignment: missing
    ["2023-02-28", "O1", "35", "960000", "11300000"],  # 35 days: an assignment here is refused
    ["2023-02-28", "O2", "3", "150000", "2050000"],  # early: RULE
    ["2023-02-28", "O3", "20", "1300000", "49000000"],  # early: ASSIGNED
    ["2023-03-31", "O1", "0", "0", "11100000"],
    ["2023-03-31", "O2", "10", "150000", "2000000"],  # early at the latest cut, not decided
    ["2023-03-31", "O3", "15", "1300000", "48000000"],  # early at the latest cut: ASSIGNED
]
ASSIGNMENTS = [
    ["O1", "2023-01-31", "HOLDOUT", "holdout-2023"],  # line 2
    ["O2", "2023-01-31", "ASSIGNED", "bau-2023"],  # line 3: dpd 0 at that cut
    ["O1", "2023-02-28", "ASSIGNED", "bau-2023"],  # line 4: dpd 35 at that cut
    ["O2", "2023-02-28", "RULE", "bau-2023"],  # line 5
    ["O3", "2023-02-28", "ASSIGNED", "bau-2023"],  # line 6
    ["O3", "2023-03-31", "ASSIGNED", "bau-2023"],  # line 7
    ["O1", "2023-03-15", "HOLDOUT", "holdout-2023"],  # line 8: no cut on that date
]
ACTIONS = [
    ["X1", "O1", "2023-01-31 10:00:00", "CALL", "CONTACTED", "3200"],  # on d: not in the horizon
    ["X2", "O1", "2023-02-01 09:00:00", "SMS", "NO_CONTACT", "120"],  # HOLDOUT horizon
    ["X3", "O1", "2023-03-02 18:00:00", "CALL", "REFUSED", "3200"],  # d + 30: still inside
    ["X4", "O1", "2023-03-03 08:00:00", "CALL", "REFUSED", "3200"],  # d + 31: outside
    ["X5", "O2", "2023-03-01 11:00:00", "WHATSAPP", "CONTACTED", "250"],  # RULE horizon
    ["X6", "O3", "2023-02-05 11:00:00", "CALL", "PROMISE_TO_PAY", "3200"],  # missing: ASSIGNED
    ["X7", "O3", "2023-03-05 11:00:00", "CALL", "PROMISE_TO_PAY", "3200"],  # ASSIGNED
]


def _rows(**changes) -> dict:
    rows = copy.deepcopy(BASE_ROWS_V2)
    rows["portfolio_cuts"] = CUTS
    rows["collection_assignments"] = ASSIGNMENTS
    rows["collection_actions"] = ACTIONS
    rows.update(changes)
    return rows


@pytest.fixture
def report(tmp_path, settings):
    extract = write_extract(tmp_path / "x", rows=_rows(), version=2, as_of="2023-03-31")
    return ingest_extract(settings, extract, STANDARD)


def test_a_row_without_early_delinquency_at_its_cut_is_quarantined(report, settings):
    name = "collection_assignments.csv"
    q = {x for x in quarantine(settings) if x[0] == name}
    key = "obligation_id, cut_date"
    assert q == {(name, 3, key, NOT_EARLY), (name, 4, key, NOT_EARLY), (name, 8, key, NOT_EARLY)}
    values = {r["line"]: r["value"] for r in raw_rows_q(settings) if r["file"] == name}
    assert values == {3: "O2|2023-01-31", 4: "O1|2023-02-28", 8: "O1|2023-03-15"}
    assert report["files"][name] == {
        "rows_read": 7,
        "rows_accepted": 4,
        "rows_quarantined": 3,
        "duplicates_collapsed": 0,
    }
    assert [
        (r["obligation_id"], r["arm"]) for r in raw_rows(settings, "collection_assignments")
    ] == [
        ("O1", "HOLDOUT"),
        ("O2", "RULE"),
        ("O3", "ASSIGNED"),
        ("O3", "ASSIGNED"),
    ]


def test_arms_missing_assignments_and_the_undecided_latest_cut_are_counted(report):
    a = report["assignments"]
    assert a["contract_version"] == 2 and a["file"] == "collection_assignments.csv"
    assert a["latest_cut"] == "2023-03-31"
    assert a["arms"] == {"ASSIGNED": 2, "HOLDOUT": 1, "RULE": 1}
    assert a["missing"] == 1  # O3 at 2023-01-31, treated as ASSIGNED
    assert a["latest_cut_undecided"] == 1  # O2 at 2023-03-31: today's decision
    assert (
        "collection_assignments.csv: 1 early-delinquency row(s) at past cuts have no assignment; "
        "treated as ASSIGNED"
    ) in report["warnings"]


def test_actions_in_the_horizon_of_an_unmanaged_arm_count_as_contamination(report, settings):
    # X2 and X3 (O1 HOLDOUT at 2023-01-31, horizon to 2023-03-02) and X5 (O2 RULE at 2023-02-28);
    # X1 is on the cut day, X4 a day past the horizon, X6 and X7 on ASSIGNED rows.
    assert report["assignments"]["contamination"] == {"rows": 2, "actions": 3}
    assert (
        "collection_actions.csv: 3 action(s) dated in the 30-day horizon of 2 HOLDOUT or RULE "
        "row(s): contamination of the unmanaged arms, kept"
    ) in report["warnings"]
    assert len(raw_rows(settings, "collection_actions")) == len(ACTIONS)  # kept


def test_contamination_follows_the_configured_horizon(tmp_path):
    from cobranza.config import load_settings

    settings = load_settings(lake=tmp_path / "lake", duckdb_threads=1, horizon_days=29)
    extract = write_extract(tmp_path / "x", rows=_rows(), version=2, as_of="2023-03-31")
    report = ingest_extract(settings, extract, STANDARD)
    # with H = 29 the HOLDOUT horizon ends 2023-03-01: X3 (2023-03-02) is outside
    assert report["assignments"]["contamination"] == {"rows": 2, "actions": 2}
    assert report["assignments"]["horizon_days"] == 29


def test_the_counts_are_in_the_raw_record_and_the_log(tmp_path, settings, capsys):
    extract = write_extract(tmp_path / "x", rows=_rows(), version=2, as_of="2023-03-31")
    report = ingest_extract(settings, extract, STANDARD, ui=UI())
    info = Lake(settings.lake).run_info("raw")
    assert info["assignments"] == report["assignments"]
    assert info["contract_version"] == 2
    assert info["warnings"] == report["warnings"]
    log = " ".join(capsys.readouterr().err.split())
    assert (
        "assignments (contract version 2): ASSIGNED 2, HOLDOUT 1, RULE 1; 1 without assignment "
        "at past cuts (treated as ASSIGNED); 1 at the latest cut 2023-03-31 not yet decided; "
        "contamination: 3 action(s) on 2 HOLDOUT or RULE row(s)"
    ) in log


def test_assignment_rows_break_the_usual_rules_like_any_file(tmp_path, settings):
    name = "collection_assignments.csv"
    rows = _rows(
        collection_assignments=[
            ["O1", "2023-01-31", "HOLDOUT", "holdout-2023"],  # line 2: valid
            ["O3", "2023-02-28", "MANAGED", "bau-2023"],  # line 3: arm not allowed
            ["O2", "2023-02-28", "RULE", ""],  # line 4: policy_id missing
            ["O3", "2023-02-30", "ASSIGNED", "bau-2023"],  # line 5: not a date
            ["O9", "2023-02-28", "ASSIGNED", "bau-2023"],  # line 6: unknown obligation
            ["O3", "2023-03-31", "ASSIGNED", "bau-2023"],  # line 7: key shared with line 8
            ["O3", "2023-03-31", "HOLDOUT", "holdout-2023"],  # line 8
            ["O1", "2023-01-31", "HOLDOUT", "holdout-2023"],  # line 9: exact copy of line 2
        ]
    )
    extract = write_extract(tmp_path / "x", rows=rows, version=2, as_of="2023-03-31")
    report = ingest_extract(settings, extract, STANDARD)
    q = {x for x in quarantine(settings) if x[0] == name}
    key = "obligation_id, cut_date"
    assert q == {
        (name, 3, "arm", "not an allowed value"),
        (name, 4, "policy_id", "missing required value"),
        (name, 5, "cut_date", "not a valid date"),
        (
            name,
            6,
            "obligation_id",
            "references obligations.obligation_id that is missing or was quarantined",
        ),
        (name, 6, key, NOT_EARLY),
        (name, 7, key, "duplicate key with different values"),
        (name, 8, key, "duplicate key with different values"),
    }
    assert report["files"][name] == {
        "rows_read": 8,
        "rows_accepted": 1,
        "rows_quarantined": 6,
        "duplicates_collapsed": 1,
    }


def test_a_version_1_extract_counts_every_past_row_as_missing_and_warns_once(
    tmp_path, settings, capsys
):
    rows = _rows()
    rows["payments"] = copy.deepcopy(BASE_ROWS_V2["payments"])
    rows["payments"] = [r[:5] for r in rows["payments"]]
    del rows["collection_assignments"]
    extract = write_extract(tmp_path / "x", rows=rows, version=1, as_of="2023-03-31")
    report = ingest_extract(settings, extract, STANDARD, ui=UI())
    a = report["assignments"]
    assert a["contract_version"] == 1 and a["file"] is None
    assert a["arms"] == {"ASSIGNED": 0, "HOLDOUT": 0, "RULE": 0}
    assert a["missing"] == 4 and a["latest_cut_undecided"] == 2
    assert a["contamination"] == {"rows": 0, "actions": 0}
    assert report["warnings"] == [V1_WARNING]
    assert "\n" not in V1_WARNING
    log = " ".join(capsys.readouterr().err.split())  # the console may wrap long lines
    assert log.count(" ".join(V1_WARNING.split())) == 1
    assert Lake(settings.lake).run_info("raw")["warnings"] == [V1_WARNING]


def _tables(tmp_path, cuts, arms, actions) -> dict:
    """Hand-built raw tables (Parquet folders) of the three files the report reads."""
    import duckdb

    con = duckdb.connect()
    sources = {
        "portfolio_cuts": (
            "SELECT o AS obligation_id, CAST(d AS DATE) AS cut_date, dpd AS days_past_due "
            "FROM (VALUES {}) v(o, d, dpd)",
            cuts,
        ),
        "collection_assignments": (
            "SELECT o AS obligation_id, CAST(d AS DATE) AS cut_date, arm "
            "FROM (VALUES {}) v(o, d, arm)",
            arms,
        ),
        "collection_actions": (
            "SELECT a AS action_id, o AS obligation_id, CAST(ts AS TIMESTAMP) AS action_ts "
            "FROM (VALUES {}) v(a, o, ts)",
            actions,
        ),
    }
    tables = {}
    for stem, (sql, rows) in sources.items():
        folder = tmp_path / stem
        folder.mkdir()
        values = ", ".join(str(tuple(r)) for r in rows)
        con.execute(f"COPY ({sql.format(values)}) TO '{folder / 'part-0.parquet'}'")
        tables[stem] = folder
    return tables


def test_contamination_is_an_action_after_an_unmanaged_decision_and_before_the_next_managed_one(
    tmp_path,
):
    """Monthly cuts fall inside a 30-day horizon: an action after the next cut that managed the
    obligation follows that decision; one before it, or with no managed cut between, counts."""
    import duckdb

    from cobranza.ingest import assignments

    cuts = [
        ("O1", "2023-01-31", 5),  # HOLDOUT, then ASSIGNED at 02-28
        ("O1", "2023-02-28", 9),
        ("O2", "2023-01-31", 5),  # HOLDOUT, then no assignment at 02-28: treated as ASSIGNED
        ("O2", "2023-02-28", 9),
        ("O3", "2023-01-31", 5),  # HOLDOUT, then ASSIGNED at 02-28
        ("O3", "2023-02-28", 9),
        ("O4", "2023-01-31", 5),  # RULE, then HOLDOUT at 02-28
        ("O4", "2023-02-28", 9),
        ("O1", "2023-03-31", 0),
    ]
    arms = [
        ("O1", "2023-01-31", "HOLDOUT"),
        ("O1", "2023-02-28", "ASSIGNED"),
        ("O2", "2023-01-31", "HOLDOUT"),
        ("O3", "2023-01-31", "HOLDOUT"),
        ("O3", "2023-02-28", "ASSIGNED"),
        ("O4", "2023-01-31", "RULE"),
        ("O4", "2023-02-28", "HOLDOUT"),
    ]
    actions = [
        ("A1", "O1", "2023-03-01 10:00:00"),  # after O1's ASSIGNED cut: that decision's action
        ("A2", "O2", "2023-03-02 10:00:00"),  # after O2's cut treated as ASSIGNED: the same
        ("A3", "O3", "2023-02-10 10:00:00"),  # in the HOLDOUT horizon, before any later cut
        ("A4", "O3", "2023-02-28 10:00:00"),  # on the next cut's day: before its decision
        ("A5", "O4", "2023-03-01 10:00:00"),  # in the horizons of RULE and of HOLDOUT
    ]
    tables = _tables(tmp_path, cuts, arms, actions)
    con = duckdb.connect()
    a = assignments.report(con, tables, 2, "collection_assignments.csv", 30)
    # rows: O3 at 01-31 (A3, A4), O4 at 01-31 and at 02-28 (A5); A1 and A2 are managed ones
    assert a["contamination"] == {"rows": 3, "actions": 3}
    assert a["missing"] == 1  # O2 at 02-28
