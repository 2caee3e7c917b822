"""Gold assembled in cut ranges: the ranges cover every cut once, in order and within the row
budget, and gold written in parts is the gold of one statement."""

from __future__ import annotations

from datetime import date

import pandas as pd

from cobranza.lake import Lake
from cobranza.transforms.gold import cut_ranges
from cobranza.transforms.schema import GOLD_TABLE
from tests.transforms.conftest import etl, read_gold

JAN, FEB, MAR, APR = date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)


def test_ranges_are_consecutive_cuts_within_the_row_budget():
    rows = [(MAR, 30), (JAN, 40), (APR, 50), (FEB, 20)]  # any order in, cut order out
    assert cut_ranges(rows, 60) == [(JAN, FEB), (MAR, MAR), (APR, APR)]
    assert cut_ranges(rows, 100) == [(JAN, MAR), (APR, APR)]


def test_a_cut_larger_than_the_budget_is_a_range_of_its_own_never_split():
    rows = [(JAN, 10), (FEB, 500), (MAR, 10)]
    assert cut_ranges(rows, 100) == [(JAN, JAN), (FEB, FEB), (MAR, MAR)]


def test_no_budget_or_a_budget_that_fits_everything_gives_one_range():
    rows = [(JAN, 10), (FEB, 20), (MAR, 30)]
    assert cut_ranges(rows, None) == [(JAN, MAR)]
    assert cut_ranges(rows, 60) == [(JAN, MAR)]
    assert cut_ranges([], 10) == []


def test_gold_written_in_parts_equals_gold_of_one_statement(tmp_path, duckdb_lake, small_extract):
    """The final join run over cut ranges (the memory bound of a large book) changes no row."""
    whole = read_gold(duckdb_lake)
    budget = max(1, len(whole) // 5)
    tables, as_of = small_extract
    summary = etl(tmp_path, tables, as_of, gold_part_rows=budget)
    lake = Lake(tmp_path)
    info = lake.run_info("gold", summary["gold_version"])
    parts = sorted(lake.table_dir("gold", GOLD_TABLE).glob("*.parquet"))
    assert info["parts"] == len(parts) >= 4
    assert Lake(duckdb_lake).run_info("gold")["parts"] == 1
    pd.testing.assert_frame_equal(read_gold(tmp_path), whole)


def test_a_budget_of_one_row_writes_each_cut_alone_and_every_row_once(
    tmp_path, duckdb_lake, small_extract
):
    tables, as_of = small_extract
    summary = etl(tmp_path, tables, as_of, gold_part_rows=1)
    gold = read_gold(tmp_path)
    parts = Lake(tmp_path).run_info("gold", summary["gold_version"])["parts"]
    assert parts == gold["cut_date"].nunique() > 1
    pd.testing.assert_frame_equal(gold, read_gold(duckdb_lake))
