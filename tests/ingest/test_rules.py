"""Cell rules as DuckDB evaluates them, on hand-picked values where a rule must hold exactly."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from cobranza.contract import BANK_LATIN1, STANDARD, Column
from cobranza.ingest.rules import error_sql, typed_sql, value_sql


def check(column: Column, raw: str | None, dialect=STANDARD):
    """(typed value, reason) of one cell."""
    v = value_sql("r")
    x = typed_sql(column, dialect, v)
    sql = f"SELECT {x}, {error_sql(column, dialect, v, x)} FROM (SELECT CAST(? AS VARCHAR) AS r)"
    return duckdb.connect().execute(sql, [raw]).fetchone()


INTEGER = Column("due_day", "integer", required=True, minimum=1, maximum=31)
DECIMAL = Column("amount", "decimal", required=True, minimum=0, exclusive_minimum=True)
OPTIONAL_DECIMAL = Column("monthly_income", "decimal", minimum=0)
DATE = Column("cut_date", "date", required=True)
TIMESTAMP = Column("payment_ts", "timestamp", required=True)
ENUM = Column("segment", "string", required=True, allowed=("MASS", "SME"))


@pytest.mark.parametrize(
    ("raw", "value", "reason"),
    [
        ("15", 15, None),
        (" 15 ", 15, None),
        ("15.0", 15, None),
        ("1.5", None, "not a valid integer"),
        ("0x10", None, "not a valid integer"),
        ("abc", None, "not a valid integer"),
        ("0", 0, "below the minimum 1"),
        ("32", 32, "above the maximum 31"),
        ("", None, "missing required value"),
        ("   ", None, "missing required value"),
        (None, None, "missing required value"),
    ],
)
def test_integer(raw, value, reason):
    assert check(INTEGER, raw) == (value, reason)


@pytest.mark.parametrize(
    ("raw", "value", "reason"),
    [
        ("10.5", 10.5, None),
        ("0", 0.0, "must be greater than 0"),
        ("-3", -3.0, "must be greater than 0"),
        ("nan", None, "not a valid decimal number (decimal separator '.')"),
        ("inf", None, "not a valid decimal number (decimal separator '.')"),
        ("1,5", None, "not a valid decimal number (decimal separator '.')"),
    ],
)
def test_decimal_standard(raw, value, reason):
    assert check(DECIMAL, raw) == (value, reason)


@pytest.mark.parametrize(
    ("raw", "value", "reason"),
    [
        ("10,5", 10.5, None),
        ("10", 10.0, None),
        ("10.5", None, "not a valid decimal number (decimal separator ',')"),
        ("1.234,5", None, "not a valid decimal number (decimal separator ',')"),
    ],
)
def test_decimal_comma_dialect(raw, value, reason):
    assert check(DECIMAL, raw, BANK_LATIN1) == (value, reason)


def test_optional_empty_is_null_without_reason():
    assert check(OPTIONAL_DECIMAL, "") == (None, None)
    assert check(OPTIONAL_DECIMAL, "-1") == (-1.0, "below the minimum 0")


@pytest.mark.parametrize(
    ("raw", "dialect", "value"),
    [
        ("2024-01-31", STANDARD, dt.date(2024, 1, 31)),
        ("31/01/2024", BANK_LATIN1, dt.date(2024, 1, 31)),
        ("2024-02-30", STANDARD, None),
        ("31/01/2024", STANDARD, None),
        ("2024-01-31", BANK_LATIN1, None),
        ("2024-01-31 10:00:00", STANDARD, None),
    ],
)
def test_date(raw, dialect, value):
    reason = None if value else f"not a valid date (expected {_fmt(dialect.date_format)})"
    assert check(DATE, raw, dialect) == (value, reason)


def _fmt(f: str) -> str:
    return f.replace("%Y", "yyyy").replace("%m", "mm").replace("%d", "dd")


def test_timestamp():
    assert check(TIMESTAMP, "2024-01-31 10:20:30") == (dt.datetime(2024, 1, 31, 10, 20, 30), None)
    assert check(TIMESTAMP, "31/01/2024 10:20:30", BANK_LATIN1)[0] == dt.datetime(
        2024, 1, 31, 10, 20, 30
    )
    assert check(TIMESTAMP, "2024-01-31")[1].startswith("not a valid timestamp")
    assert check(TIMESTAMP, "2024-01-31 25:00:00")[1].startswith("not a valid timestamp")


def test_allowed_values_are_exact():
    assert check(ENUM, "MASS") == ("MASS", None)
    assert check(ENUM, " MASS ") == ("MASS", None)  # surrounding spaces are not part of a value
    assert check(ENUM, "mass")[1] == "not an allowed value (allowed: MASS, SME)"
    assert check(ENUM, "GOLD")[1] == "not an allowed value (allowed: MASS, SME)"
