"""Each bad-input rule on hand-built files with defects at known lines, checked exactly."""

from __future__ import annotations

import copy

import duckdb
import pytest

from cobranza.contract import BANK_LATIN1, STANDARD
from cobranza.ingest import ingest_extract
from cobranza.lake import Lake
from tests.ingest.conftest import BASE_ROWS, write_extract


def raw_rows(settings, table: str) -> list[dict]:
    glob = Lake(settings.lake).table_glob("raw", table)
    con = duckdb.connect()
    rel = con.execute(f"SELECT * FROM read_parquet('{glob}') ORDER BY _line")
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def quarantine(settings) -> set[tuple]:
    return {
        (r["file"], r["line"], r["column"], r["reason"].split(" (")[0].split(":")[0])
        for r in raw_rows_q(settings)
    }


def raw_rows_q(settings) -> list[dict]:
    glob = Lake(settings.lake).table_glob("raw", "quarantine")
    con = duckdb.connect()
    rel = con.execute(f"SELECT * FROM read_parquet('{glob}') ORDER BY file, line")
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


@pytest.fixture
def defective(tmp_path):
    """BASE_ROWS plus one defect per rule; comments give the line (header = line 1)."""
    rows = copy.deepcopy(BASE_ROWS)
    c = rows["clients"]  # lines 2-4 valid
    good = c[0]
    c.append(["C4", "XX", *good[2:]])  # line 5: allowed value (document_type)
    c.append(["C5", *good[1:10], " abc ", *good[11:]])  # line 6: type (monthly_income)
    c.append(["C6", *good[1:8], "", *good[9:]])  # line 7: required missing (segment)
    c.append(["C7", *good[1:10], "-5", *good[11:]])  # line 8: range (monthly_income >= 0)
    c.append(["C8", *good[1:11], "2020-13-01", *good[12:]])  # line 9: unparseable date
    c.append(["C9", "CC", "1009"])  # line 10: wrong number of fields
    o = rows["obligations"]  # lines 2-4 valid
    o.append(["O4", "C4", *o[0][2:]])  # line 5: reference to a quarantined client
    o.append(["O5", "C99", *o[0][2:]])  # line 6: reference to a missing client
    o.append(list(o[0]))  # line 7: exact duplicate of line 2: collapsed
    o.append(["O6", "C1", *o[0][2:9], "32", *o[0][10:]])  # line 8: due_day above 31
    o.append(["O7", "C1", *o[0][2:5], "0", *o[0][6:]])  # line 9: original_amount must be > 0
    rows["debit_mandates"].append(["M3", "O4", *rows["debit_mandates"][0][2:]])  # line 4: chain
    p = rows["payments"]  # lines 2-3 valid
    p.append(["P3", "O1", "2023-03-01 09:00:00", "1000", "PSE"])  # line 4: key conflict
    p.append(["P3", "O1", "2023-03-01 09:00:00", "2000", "PSE"])  # line 5: key conflict
    p.append(["P3", "O1", "2023-03-01 09:00:00", "2000", "PSE"])  # line 6: exact dup of 5
    p.append(["P4", "O1", "2023-03-01 9h", "10", "PSE"])  # line 7: bad timestamp
    p.append(["P5", "O1", "2023-03-01 09:00:00", "10", "CASH"])  # line 8: channel not allowed
    cuts = rows["portfolio_cuts"]  # lines 2-4 valid
    cuts.append(["2023-03-31", "O2", "6", "150000", "2000000"])  # line 5: key clash with 4
    cuts.append(["2023-04-30", "O1", "3.5", "1", "1"])  # line 6: days_past_due not an integer
    return rows


EXPECTED = {
    ("clients.csv", 5, "document_type", "not an allowed value"),
    ("clients.csv", 6, "monthly_income", "not a valid decimal number"),
    ("clients.csv", 7, "segment", "missing required value"),
    ("clients.csv", 8, "monthly_income", "below the minimum 0"),
    ("clients.csv", 9, "customer_since", "not a valid date"),
    ("clients.csv", 10, "*", "expected 14 fields as in the header, found 3"),
    (
        "obligations.csv",
        5,
        "client_id",
        "references clients.client_id that is missing or was quarantined",
    ),
    (
        "obligations.csv",
        6,
        "client_id",
        "references clients.client_id that is missing or was quarantined",
    ),
    ("obligations.csv", 8, "due_day", "above the maximum 31"),
    ("obligations.csv", 9, "original_amount", "must be greater than 0"),
    (
        "debit_mandates.csv",
        4,
        "obligation_id",
        "references obligations.obligation_id that is missing or was quarantined",
    ),
    ("payments.csv", 4, "payment_id", "duplicate key with different values"),
    ("payments.csv", 5, "payment_id", "duplicate key with different values"),
    ("payments.csv", 7, "payment_ts", "not a valid timestamp"),
    ("payments.csv", 8, "channel", "not an allowed value"),
    ("portfolio_cuts.csv", 4, "cut_date, obligation_id", "duplicate key with different values"),
    ("portfolio_cuts.csv", 5, "cut_date, obligation_id", "duplicate key with different values"),
    ("portfolio_cuts.csv", 6, "days_past_due", "not a valid integer"),
}


@pytest.mark.parametrize("dialect", [STANDARD, BANK_LATIN1], ids=lambda d: d.name)
def test_each_rule_quarantines_exactly_the_defective_lines(tmp_path, settings, defective, dialect):
    extract = write_extract(tmp_path / "x", dialect=dialect, rows=defective)
    report = ingest_extract(settings, extract, dialect)

    assert quarantine(settings) == EXPECTED
    files = report["files"]
    assert files["clients.csv"] == {
        "rows_read": 9,
        "rows_accepted": 3,
        "rows_quarantined": 6,
        "duplicates_collapsed": 0,
    }
    assert files["obligations.csv"] == {
        "rows_read": 8,
        "rows_accepted": 3,
        "rows_quarantined": 4,
        "duplicates_collapsed": 1,
    }
    assert files["payments.csv"] == {
        "rows_read": 7,
        "rows_accepted": 2,
        "rows_quarantined": 4,
        "duplicates_collapsed": 1,
    }
    assert files["portfolio_cuts.csv"]["rows_accepted"] == 2
    for name, f in files.items():
        assert f["rows_read"] == (
            f["rows_accepted"] + f["rows_quarantined"] + f["duplicates_collapsed"]
        ), name
    # Accepted rows are the valid ones, typed; the collapsed duplicate is kept once.
    assert [r["obligation_id"] for r in raw_rows(settings, "obligations")] == ["O1", "O2", "O3"]
    assert [r["_line"] for r in raw_rows(settings, "payments")] == [2, 3]
    info = Lake(settings.lake).run_info("raw")
    assert info["files"] == files
    assert info["as_of"] == "2023-04-30"
    assert info["dialect"] == dialect.name


def test_quarantine_keeps_original_text_and_run_records_counts(tmp_path, settings, defective):
    extract = write_extract(tmp_path / "x", rows=defective)
    ingest_extract(settings, extract, STANDARD)
    by_line = {(r["file"], r["line"], r["column"]): r for r in raw_rows_q(settings)}
    assert by_line[("clients.csv", 6, "monthly_income")]["value"] == " abc "
    assert by_line[("clients.csv", 9, "customer_since")]["value"] == "2020-13-01"
    assert by_line[("clients.csv", 10, "*")]["value"] == "C9,CC,1009"
    conflict = by_line[("payments.csv", 4, "payment_id")]
    assert conflict["value"] == "P3"
    # U4: the exact copy (line 6, collapsed) is named too, so every line of the key is listed.
    assert conflict["reason"] == (
        "duplicate key with different values: 3 rows share it (lines 4, 5, 6), "
        "1 of them an exact copy, collapsed"
    )
    assert by_line[("payments.csv", 5, "payment_id")]["reason"] == conflict["reason"]
    assert ("payments.csv", 6, "payment_id") not in by_line
    assert by_line[("portfolio_cuts.csv", 5, "cut_date, obligation_id")]["value"] == (
        "2023-03-31|O2"
    )


def test_exact_duplicates_collapse_to_first_line(tmp_path, settings):
    rows = copy.deepcopy(BASE_ROWS)
    rows["installments"] = [rows["installments"][0]] * 3 + rows["installments"][1:]
    extract = write_extract(tmp_path / "x", rows=rows)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["installments.csv"] == {
        "rows_read": 5,
        "rows_accepted": 3,
        "rows_quarantined": 0,
        "duplicates_collapsed": 2,
    }
    assert [r["_line"] for r in raw_rows(settings, "installments")] == [2, 5, 6]


def test_exact_duplicates_of_a_bad_row_count_once_in_quarantine(tmp_path, settings):
    rows = copy.deepcopy(BASE_ROWS)
    bad = ["P9", "O1", "2023-03-01 09:00:00", "-1", "PSE"]
    rows["payments"] += [bad, bad]  # lines 4 and 5
    extract = write_extract(tmp_path / "x", rows=rows)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["payments.csv"] == {
        "rows_read": 4,
        "rows_accepted": 2,
        "rows_quarantined": 1,
        "duplicates_collapsed": 1,
    }
    assert quarantine(settings) == {("payments.csv", 4, "amount", "must be greater than 0")}


def test_types_of_raw_tables_follow_the_interface(tmp_path, settings):
    import pyarrow as pa
    import pyarrow.dataset as ds

    extract = write_extract(tmp_path / "x")
    ingest_extract(settings, extract, STANDARD)
    lake = Lake(settings.lake)
    schema = ds.dataset(lake.table_dir("raw", "payments")).schema
    assert schema.names == [
        "payment_id",
        "obligation_id",
        "payment_ts",
        "amount",
        "channel",
        "reversed_ts",  # every contract column of the current version, absent ones empty
        "_line",
    ]
    assert schema.types == [
        pa.string(),
        pa.string(),
        pa.timestamp("us"),
        pa.float64(),
        pa.string(),
        pa.timestamp("us"),
        pa.int64(),
    ]
    # a version-1 extract still gets the version-2 assignment table, empty and typed
    assignments = ds.dataset(lake.table_dir("raw", "collection_assignments")).to_table()
    assert assignments.num_rows == 0
    assert assignments.schema.names == ["obligation_id", "cut_date", "arm", "policy_id", "_line"]
    assert assignments.schema.field("cut_date").type == pa.date32()
    obligations = ds.dataset(lake.table_dir("raw", "obligations")).schema
    assert obligations.field("origination_date").type == pa.date32()
    assert obligations.field("term_months").type == pa.int64()
    q = ds.dataset(lake.table_dir("raw", "quarantine")).schema
    assert q.names == ["file", "line", "column", "value", "reason"]
    assert q.field("line").type == pa.int64()


def test_exact_duplicates_with_a_missing_key_collapse_too(tmp_path, settings):
    rows = copy.deepcopy(BASE_ROWS)
    bad = ["", "O1", "2023-03-01 09:00:00", "10", "PSE"]  # payment_id missing
    rows["payments"] += [bad, bad, ["", "O1", "2023-03-01 09:00:00", "11", "PSE"]]  # lines 4-6
    extract = write_extract(tmp_path / "x", rows=rows)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["payments.csv"] == {
        "rows_read": 5,
        "rows_accepted": 2,
        "rows_quarantined": 2,
        "duplicates_collapsed": 1,
    }
    assert quarantine(settings) == {
        ("payments.csv", 4, "payment_id", "missing required value"),
        ("payments.csv", 6, "payment_id", "missing required value"),
    }


def test_a_key_group_names_every_line_exact_copies_included(tmp_path, settings):
    """U4: two exact copies and a differing row: all three lines are named in the reason."""
    rows = copy.deepcopy(BASE_ROWS)
    a = ["P3", "O1", "2023-03-01 09:00:00", "1000", "PSE"]
    b = ["P3", "O1", "2023-03-01 09:00:00", "2000", "PSE"]
    rows["payments"] += [a, ["P4", "O1", "2023-03-01 09:00:00", "5", "PSE"], a, b]  # lines 4-7
    extract = write_extract(tmp_path / "x", rows=rows)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["payments.csv"] == {
        "rows_read": 6,
        "rows_accepted": 3,
        "rows_quarantined": 2,
        "duplicates_collapsed": 1,
    }
    reasons = {(r["line"], r["reason"]) for r in raw_rows_q(settings)}
    reason = (
        "duplicate key with different values: 3 rows share it (lines 4, 6, 7), "
        "1 of them an exact copy, collapsed"
    )
    assert reasons == {(4, reason), (7, reason)}


def test_a_large_key_group_lists_ten_lines_and_counts_the_rest(tmp_path, settings):
    rows = copy.deepcopy(BASE_ROWS)
    rows["payments"] += [
        ["P3", "O1", "2023-03-01 09:00:00", str(1000 + (i % 4)), "PSE"] for i in range(14)
    ]  # lines 4-17: 4 distinct rows, 10 exact copies
    extract = write_extract(tmp_path / "x", rows=rows)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["payments.csv"]["duplicates_collapsed"] == 10
    q = raw_rows_q(settings)
    assert [r["line"] for r in q] == [4, 5, 6, 7]
    assert q[0]["reason"] == (
        "duplicate key with different values: 14 rows share it "
        "(lines 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 and 4 more), 10 of them exact copies, collapsed"
    )


@pytest.mark.parametrize("dialect", [STANDARD, BANK_LATIN1], ids=lambda d: d.name)
def test_two_digit_years_are_quarantined_not_read_as_year_26(tmp_path, settings, dialect):
    """D2 end to end: `26-05-01` (or `01/05/26`) goes to quarantine with its line and column."""
    rows = copy.deepcopy(BASE_ROWS)
    rows["obligations"][2][3] = "2021-03-01"  # line 4 origination_date, respelled below
    extract = write_extract(tmp_path / "x", dialect=dialect, rows=rows)
    path = extract / "obligations.csv"
    good = "01/03/2021" if dialect is BANK_LATIN1 else "2021-03-01"
    short = "01/03/21" if dialect is BANK_LATIN1 else "21-03-01"
    path.write_bytes(path.read_bytes().replace(good.encode(), short.encode()))
    from tests.ingest.conftest import rewrite_manifest

    rewrite_manifest(extract)
    ingest_extract(settings, extract, dialect)
    q = [r for r in raw_rows_q(settings) if r["file"] == "obligations.csv"]
    assert [(r["line"], r["column"], r["value"]) for r in q] == [(4, "origination_date", short)]
    assert q[0]["reason"].endswith("with a four-digit year)")


def test_ids_a_spreadsheet_would_run_are_quarantined_with_file_line_and_column(tmp_path, settings):
    rows = copy.deepcopy(BASE_ROWS)
    poisoned = copy.deepcopy(rows["obligations"][0])
    poisoned[0] = "=1+2*3"
    rows["obligations"].append(poisoned)
    line = len(rows["obligations"]) + 1  # the header is line 1
    ingest_extract(settings, write_extract(tmp_path / "x", rows=rows), STANDARD)
    (row,) = [r for r in raw_rows_q(settings) if r["file"] == "obligations.csv"]
    assert (row["line"], row["column"]) == (line, "obligation_id")
    assert row["reason"].startswith("not a valid identifier")
    assert "=1+2*3" not in row["reason"]
    assert "=1+2*3" not in {r["obligation_id"] for r in raw_rows(settings, "obligations")}
