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


NOT_INTEGER = "not a valid integer (only digits, at most 15, and a leading '-')"
NOT_DECIMAL = (
    "not a valid decimal number (decimal separator '.'; "
    "only digits, a leading '-' and one separator between digits)"
)
NOT_DECIMAL_COMMA = NOT_DECIMAL.replace("'.'", "','")

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
        ("-0", 0, "below the minimum 1"),
        ("015", 15, None),
        ("15.0", None, NOT_INTEGER),
        ("1e1", None, NOT_INTEGER),
        ("+15", None, NOT_INTEGER),
        ("1_5", None, NOT_INTEGER),
        ("15.", None, NOT_INTEGER),
        ("1.5", None, NOT_INTEGER),
        ("0x10", None, NOT_INTEGER),
        ("abc", None, NOT_INTEGER),
        ("9007199254740993", None, NOT_INTEGER),
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
        ("-10.25", -10.25, "must be greater than 0"),
        ("0010.50", 10.5, None),
        ("nan", None, NOT_DECIMAL),
        ("inf", None, NOT_DECIMAL),
        ("1,5", None, NOT_DECIMAL),
        ("1e3", None, NOT_DECIMAL),
        ("1E+3", None, NOT_DECIMAL),
        ("1_000", None, NOT_DECIMAL),
        ("+500", None, NOT_DECIMAL),
        (".5", None, NOT_DECIMAL),
        ("-.5", None, NOT_DECIMAL),
        ("12.", None, NOT_DECIMAL),
        ("1.2.3", None, NOT_DECIMAL),
        ("100\t", None, NOT_DECIMAL),
        ("--5", None, NOT_DECIMAL),
        ("1" * 400, None, NOT_DECIMAL),
    ],
)
def test_decimal_standard(raw, value, reason):
    assert check(DECIMAL, raw) == (value, reason)


@pytest.mark.parametrize(
    ("raw", "value", "reason"),
    [
        ("10,5", 10.5, None),
        ("10", 10.0, None),
        ("-0,5", -0.5, "must be greater than 0"),
        ("10.5", None, NOT_DECIMAL_COMMA),
        ("1.234,5", None, NOT_DECIMAL_COMMA),
        ("1e3", None, NOT_DECIMAL_COMMA),
        (",5", None, NOT_DECIMAL_COMMA),
        ("12,", None, NOT_DECIMAL_COMMA),
        ("+5", None, NOT_DECIMAL_COMMA),
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


TWO_DIGIT = "not a valid date (expected yyyy-mm-dd with a four-digit year)"
TWO_DIGIT_DMY = "not a valid date (expected dd/mm/yyyy with a four-digit year)"
TWO_DIGIT_TS = "not a valid timestamp (expected dd/mm/yyyy HH:MM:SS with a four-digit year)"


@pytest.mark.parametrize(
    ("raw", "dialect", "value", "reason"),
    [
        ("26-05-01", STANDARD, dt.date(26, 5, 1), TWO_DIGIT),  # DuckDB's %Y reads 1-4 digits
        ("0026-05-01", STANDARD, dt.date(26, 5, 1), TWO_DIGIT),
        ("926-05-01", STANDARD, dt.date(926, 5, 1), TWO_DIGIT),
        ("01/05/26", BANK_LATIN1, dt.date(26, 5, 1), TWO_DIGIT_DMY),
        ("1899-12-31", STANDARD, dt.date(1899, 12, 31), "year outside 1900-2100"),
        ("2101-01-01", STANDARD, dt.date(2101, 1, 1), "year outside 1900-2100"),
        ("1900-01-01", STANDARD, dt.date(1900, 1, 1), None),
        ("2100-12-31", STANDARD, dt.date(2100, 12, 31), None),
        ("31/12/2100", BANK_LATIN1, dt.date(2100, 12, 31), None),
    ],
)
def test_date_years_have_four_digits_in_range(raw, dialect, value, reason):
    """D2: a two-digit or zero-padded year is never the year 26."""
    assert check(DATE, raw, dialect) == (value, reason)


def test_timestamp_years_have_four_digits_in_range():
    assert check(TIMESTAMP, "03/05/26 05:14:18", BANK_LATIN1)[1] == TWO_DIGIT_TS
    assert check(TIMESTAMP, "26-05-03 05:14:18")[1].endswith("with a four-digit year)")
    assert check(TIMESTAMP, "2101-01-01 00:00:00")[1] == "year outside 1900-2100"
    assert check(TIMESTAMP, "2100-12-31 23:59:59") == (dt.datetime(2100, 12, 31, 23, 59, 59), None)


def _reasons(column: Column, dialect, raws: list[str]) -> dict[str, str | None]:
    """The rule's reason for each raw cell, the regular expression always applied."""
    v = value_sql("r")
    x = typed_sql(column, dialect, v)
    con = duckdb.connect()
    con.execute("CREATE TABLE s (r VARCHAR)")
    con.executemany("INSERT INTO s VALUES (?)", [[r] for r in raws])
    return dict(con.execute(f"SELECT r, {error_sql(column, dialect, v, x)} FROM s").fetchall())


@pytest.mark.parametrize("dialect", [STANDARD, BANK_LATIN1], ids=lambda d: d.name)
def test_the_reader_screen_and_the_rule_agree_on_every_spelling(tmp_path, settings, dialect):
    """U2: the bulk screen that spares most cells the regex lets through exactly what the rule
    does (a real file, real DuckDB: every short spelling over digits, '.', ',' and '-')."""
    import csv
    import io
    import itertools

    from cobranza.contract import FILES_BY_STEM
    from cobranza.ingest import ingest_extract
    from tests.ingest.conftest import write_extract
    from tests.ingest.test_validate import raw_rows_q

    spec = FILES_BY_STEM["account_monthly"]
    spellings = ["".join(p) for n in range(1, 5) for p in itertools.product("07.,-", repeat=n)]
    spellings += [
        "1e3",
        "+5",
        "1_0",
        " 12 ",
        "\t5",
        "5\t",
        "0x1f",
        "1" * 301,
        "1" * 16,
        "0" * 15 + "7",
    ]
    month = "01/01/2023" if dialect is BANK_LATIN1 else "2023-01-01"
    buf = io.StringIO()
    out = csv.writer(buf, delimiter=dialect.delimiter, lineterminator="\n")
    out.writerow(spec.column_names)
    for i, raw in enumerate(spellings):
        out.writerow([f"A{i}", month, raw, "0", "0", "0", "0", raw, "0"])
    extract = write_extract(tmp_path / "x", dialect=dialect, manifest=False)
    (extract / spec.filename).write_bytes(buf.getvalue().encode(dialect.encoding))
    ingest_extract(settings, extract, dialect)
    quarantined = {
        (q["line"], q["column"]) for q in raw_rows_q(settings) if q["file"] == spec.filename
    }
    for col in ("avg_balance", "n_inflows"):
        expected = _reasons(spec.column(col), dialect, spellings)
        got = {raw: (line, col) in quarantined for line, raw in enumerate(spellings, start=2)}
        assert got == {raw: reason is not None for raw, reason in expected.items()}, col
    assert sum(got.values()) < len(spellings)  # some spellings are numbers, most are not


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("C000123", True),
        ("0012-4471-88", True),
        ("PAY.2025.001", True),
        ("a_b", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("=1+2*3", False),
        ("+573001234567", False),
        ("-1", False),
        ("@SUM(A1)", False),
        ("O1 2", False),
        ('O"1', False),
        ("O1\tx", False),
        ("_O1", False),
    ],
)
def test_identifiers_follow_the_contract_pattern(value, valid):
    from cobranza.contract import FILES_BY_STEM
    from cobranza.ingest.rules import quote_literal

    column = FILES_BY_STEM["obligations"].column("obligation_id")
    v = quote_literal(value)
    reason = duckdb.sql(f"SELECT {error_sql(column, STANDARD, v, v)}").fetchone()[0]
    assert (reason is None) is valid, reason
    if not valid:
        assert reason.startswith("not a valid identifier")


IDENTIFIERS = [
    "C000123",
    "0012-4471-88",
    "PAY.2025.001",
    "a_b",
    "x" * 64,
    "x" * 65,
    "=1+2*3",
    "+573001234567",
    "-1",
    "@SUM(A1)",
    "O1 2",
    'O1"',
    "O1\tx",
    "_O1",
    " C1 ",
    "Ñ1",
    "C1Ñ",
    "9",
    ".",
]


def test_the_identifier_screen_vouches_only_for_identifiers_and_keeps_every_verdict():
    """The reader's bulk screen lets an identifier skip the regex only when it matches it, so
    every cell gets the same verdict as with the regex alone."""
    import pyarrow as pa

    from cobranza.contract import FILES_BY_STEM
    from cobranza.ingest.header import Header
    from cobranza.ingest.numbers import NUMBER_CHECK, number_columns, number_screen
    from cobranza.ingest.rules import quote_literal

    spec = FILES_BY_STEM["obligations"]
    j = spec.column_names.index("obligation_id")
    header = Header(
        names=("obligation_id",),
        positions={"obligation_id": 0},
        extras=(),
        missing_optional=(),
        has_bom=False,
    )
    screened = number_columns(spec, header, STANDARD)
    assert (j, 0, None) in screened
    batch = pa.RecordBatch.from_arrays([pa.array(IDENTIFIERS)], ["c0"])
    mask = number_screen(batch, screened)
    column = spec.column("obligation_id")
    con = duckdb.connect()
    vouched = 0
    for raw, bits in zip(IDENTIFIERS, mask.tolist(), strict=True):
        v, r = value_sql("r"), quote_literal(raw)
        screened_sql = error_sql(column, STANDARD, v, v, f"({NUMBER_CHECK} & {1 << j}) <> 0")
        alone, with_screen = con.execute(
            f"SELECT {error_sql(column, STANDARD, v, v)}, {screened_sql} "
            f"FROM (SELECT {r} AS r, {bits} AS {NUMBER_CHECK})"
        ).fetchone()
        assert with_screen == alone, raw
        vouched += not (bits >> j) & 1
        if not (bits >> j) & 1:
            assert alone is None, raw  # vouched for: a valid identifier
    assert vouched == 6  # the valid ones without spaces, at most 64 characters


def _header(*names: str):
    """A file header holding exactly `names`, in that order."""
    from cobranza.ingest.header import Header

    return Header(
        names=names,
        positions={n: i for i, n in enumerate(names)},
        extras=(),
        missing_optional=(),
        has_bom=False,
    )


NUMBER_SPELLINGS = ["12", "-3.5", "", " 12 ", "12 ", " 7", "1 2", "0.5", "-", " ", "\t5"]


def test_a_cell_the_screen_vouches_for_has_the_same_value_as_with_the_space_search():
    """The screen's verdict only spares a plain cell the search for surrounding spaces: every
    cell, plain, padded or empty, gets the same value with the screen as without it."""
    import pyarrow as pa

    from cobranza.contract import FILES_BY_STEM
    from cobranza.ingest.numbers import NUMBER_CHECK, number_columns, number_screen
    from cobranza.ingest.rules import quote_literal

    spec = FILES_BY_STEM["account_monthly"]
    screened = number_columns(spec, _header("account_id", "avg_balance"), STANDARD)
    cells = [*IDENTIFIERS, *NUMBER_SPELLINGS]
    batch = pa.RecordBatch.from_arrays([pa.array(cells), pa.array(cells)], ["c0", "c1"])
    mask = number_screen(batch, screened)
    con = duckdb.connect()
    assert len(screened) == 2
    for bit, _, _ in screened:
        unsure = f"({NUMBER_CHECK} & {1 << bit}) <> 0"
        spared = []
        for raw, bits in zip(cells, mask.tolist(), strict=True):
            plain, with_screen = con.execute(
                f"SELECT {value_sql('r')}, {value_sql('r', unsure)} "
                f"FROM (SELECT {quote_literal(raw)} AS r, {bits} AS {NUMBER_CHECK})"
            ).fetchone()
            assert with_screen == plain, (spec.columns[bit].name, raw)
            if not (bits >> bit) & 1:
                spared.append(raw)
        assert "12" in spared and "" in spared, spared  # plain cells and empty ones are spared
        assert not any(" " in raw or "\t" in raw for raw in spared), spared


@pytest.mark.parametrize("dialect", [STANDARD, BANK_LATIN1], ids=lambda d: d.name)
def test_the_number_screen_vouches_only_for_digits_the_sign_and_the_separator(dialect):
    """Every byte value between two digits: the screen vouches for the cell exactly when the
    byte is a digit, '-' (DuckDB's cast then refuses the cell) or the decimal separator (decimals
    only); any other byte leaves the cell to the contract's regular expression."""
    import pyarrow as pa

    from cobranza.contract import FILES_BY_STEM
    from cobranza.ingest.numbers import number_columns, number_screen

    spec = FILES_BY_STEM["account_monthly"]
    names = ("avg_balance", "n_inflows")
    screened = number_columns(spec, _header(*names), dialect)
    cells = [b"1" + bytes([b]) + b"1" for b in range(256)]
    column = pa.array(cells, type=pa.binary()).cast(pa.string(), safe=False)
    mask = number_screen(pa.RecordBatch.from_arrays([column, column], list("ab")), screened)
    for bit, pos, _ in screened:
        vouched = {b for b in range(256) if not (int(mask[b]) >> bit) & 1}
        expected = {*range(ord("0"), ord("9") + 1), ord("-")}
        if names[pos] == "avg_balance":
            expected.add(ord(dialect.decimal))
        assert vouched == expected, names[pos]
