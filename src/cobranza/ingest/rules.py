"""The contract's per-value rules as DuckDB SQL: typed value and first broken rule of each cell.

Pure functions from (`Column`, `Dialect`) to SQL text, so each rule is visible in one place and
can be tested on hand-built values. A value is the cell with surrounding spaces removed; an empty
value is missing. Reasons name the rule, never the value (values may be personal data).
"""

from __future__ import annotations

from cobranza.contract import (
    ID_PATTERN_TEXT,
    MAX_INTEGER_DIGITS,
    YEAR_MAX,
    YEAR_MIN,
    Column,
    Dialect,
)

SQL_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "decimal": "DOUBLE",
    "integer": "BIGINT",
}


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _human_format(fmt: str) -> str:
    return (
        fmt.replace("%Y", "yyyy")
        .replace("%m", "mm")
        .replace("%d", "dd")
        .replace("%H", "HH")
        .replace("%M", "MM")
        .replace("%S", "SS")
    )


def value_sql(raw: str, unsure: str | None = None) -> str:
    """The cell as a value: surrounding spaces removed, empty is NULL.

    `trim` builds a new string for every cell; padded cells are rare, so only they pay for it.
    `unsure`, for a column the reader screens (`numbers.number_columns`), is false where the
    reader vouched for the cell as plainly a number or an identifier: such a cell has no space at
    all, so it skips the search for one.
    """
    padded = (
        f"(CASE WHEN {raw} = '' THEN NULL "
        f"WHEN starts_with({raw}, ' ') OR ends_with({raw}, ' ') THEN NULLIF(trim({raw}), '') "
        f"ELSE {raw} END)"
    )
    if unsure is None:
        return padded
    return f"(CASE WHEN {unsure} THEN {padded} ELSE NULLIF({raw}, '') END)"


def typed_sql(column: Column, dialect: Dialect, v: str, unsure: str = "TRUE") -> str:
    """`v` (a value expression) cast to the column's type; NULL when it does not parse.

    Numbers must match the contract's pattern (`decimal_pattern`, `INTEGER_PATTERN`). `unsure`
    is a boolean expression, false where the reader vouched for the cell as plainly a number
    (`numbers.number_columns`): only the others pay for the regular expression.
    """
    if column.type == "string":
        return v
    if column.type == "date":
        return f"CAST(try_strptime({v}, {quote_literal(dialect.date_format)}) AS DATE)"
    if column.type == "timestamp":
        return f"CAST(try_strptime({v}, {quote_literal(dialect.timestamp_format)}) AS TIMESTAMP)"
    if column.type == "decimal":
        text = (
            v if dialect.decimal == "." else f"replace({v}, {quote_literal(dialect.decimal)}, '.')"
        )
        return (
            f"(CASE WHEN strlen({v}) > {MAX_DECIMAL_CHARS} THEN NULL "
            f"WHEN {unsure} AND NOT regexp_full_match({v}, "
            f"{quote_literal(decimal_pattern(dialect))}) THEN NULL "
            f"ELSE TRY_CAST({text} AS DOUBLE) END)"
        )
    if column.type == "integer":
        # At most 15 digits, so every accepted integer is also exact as a double downstream.
        return (
            f"(CASE WHEN strlen({v}) - starts_with({v}, '-')::INT > {MAX_INTEGER_DIGITS} "
            f"THEN NULL WHEN {unsure} AND NOT regexp_full_match({v}, "
            f"{quote_literal(INTEGER_PATTERN)}) THEN NULL ELSE TRY_CAST({v} AS BIGINT) END)"
        )
    raise ValueError(f"unknown column type {column.type!r}")


INTEGER_PATTERN = "-?[0-9]+"
MAX_DECIMAL_CHARS = 300  # a longer plain decimal would overflow a double to infinity


def decimal_pattern(dialect: Dialect) -> str:
    """A plain decimal: optional '-', digits, optionally the separator and more digits.

    DuckDB's own cast is lenient (1e3, 1_000, +5, .5, '12.', a trailing tab), and a lenient
    reading of money is a silent error; the pattern admits exactly what the contract spells. In
    a ',' dialect a '.' (a thousands separator there, so ambiguous) is refused with the rest.
    """
    return f"-?[0-9]+([{dialect.decimal}][0-9]+)?"


def type_reason(column: Column, dialect: Dialect) -> str:
    if column.type == "date":
        return f"not a valid date (expected {_human_format(dialect.date_format)})"
    if column.type == "timestamp":
        return f"not a valid timestamp (expected {_human_format(dialect.timestamp_format)})"
    if column.type == "decimal":
        return (
            f"not a valid decimal number (decimal separator '{dialect.decimal}'; "
            "only digits, a leading '-' and one separator between digits)"
        )
    if column.type == "integer":
        return f"not a valid integer (only digits, at most {MAX_INTEGER_DIGITS}, and a leading '-')"
    return "not a valid string"


def year_reasons(column: Column, dialect: Dialect) -> tuple[str, str]:
    """(reason for a year under 1000, reason for a four-digit year out of range).

    DuckDB's `%Y` reads 1 to 4 digits, so `26-05-01` or `0026-05-01` parse as the year 26.
    """
    fmt = dialect.date_format if column.type == "date" else dialect.timestamp_format
    kind = "date" if column.type == "date" else "timestamp"
    return (
        f"not a valid {kind} (expected {_human_format(fmt)} with a four-digit year)",
        f"year outside {YEAR_MIN}-{YEAR_MAX}",
    )


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def error_sql(column: Column, dialect: Dialect, v: str, x: str, unsure: str = "TRUE") -> str:
    """The first rule the cell breaks as a reason text, or NULL when it is valid.

    `v` is the value expression, `x` the typed one. Order: required, type, year, pattern, allowed,
    range. `unsure` is false where the reader vouched for an identifier cell as matching the
    contract's pattern (`numbers.number_columns`): only the others pay for the regex.
    """
    whens = []
    if column.required:
        whens.append(f"WHEN {v} IS NULL THEN 'missing required value'")
    else:
        whens.append(f"WHEN {v} IS NULL THEN NULL")
    if column.type != "string":
        whens.append(f"WHEN {x} IS NULL THEN {quote_literal(type_reason(column, dialect))}")
    if column.type in ("date", "timestamp"):
        sql_type = "DATE" if column.type == "date" else "TIMESTAMP"
        short, out = year_reasons(column, dialect)
        whens.append(
            f"WHEN {x} < {sql_type} '{YEAR_MIN:04d}-01-01' "
            f"OR {x} >= {sql_type} '{YEAR_MAX + 1:04d}-01-01' THEN "
            f"(CASE WHEN year({x}) < 1000 THEN {quote_literal(short)} "
            f"ELSE {quote_literal(out)} END)"
        )
    if column.pattern is not None:
        reason = f"not a valid identifier ({ID_PATTERN_TEXT})"
        whens.append(
            f"WHEN {unsure} AND NOT regexp_full_match({x}, {quote_literal(column.pattern)}) "
            f"THEN {quote_literal(reason)}"
        )
    if column.allowed:
        values = ", ".join(quote_literal(a) for a in column.allowed)
        reason = f"not an allowed value (allowed: {', '.join(column.allowed)})"
        whens.append(f"WHEN {x} NOT IN ({values}) THEN {quote_literal(reason)}")
    if column.minimum is not None:
        bound = _bound(column.minimum)
        if column.exclusive_minimum:
            whens.append(f"WHEN {x} <= {bound} THEN 'must be greater than {bound}'")
        else:
            whens.append(f"WHEN {x} < {bound} THEN 'below the minimum {bound}'")
    if column.maximum is not None:
        bound = _bound(column.maximum)
        whens.append(f"WHEN {x} > {bound} THEN 'above the maximum {bound}'")
    return "(CASE " + " ".join(whens) + " END)"


def reference_reason(parent: str, parent_column: str) -> str:
    return f"references {parent}.{parent_column} that is missing or was quarantined"
