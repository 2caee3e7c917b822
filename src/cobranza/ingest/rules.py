"""The contract's per-value rules as DuckDB SQL: typed value and first broken rule of each cell.

Pure functions from (`Column`, `Dialect`) to SQL text, so each rule is visible in one place and
can be tested on hand-built values. A value is the cell with surrounding spaces removed; an empty
value is missing. Reasons name the rule, never the value (values may be personal data).
"""

from __future__ import annotations

from cobranza.contract import Column, Dialect

SQL_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "decimal": "DOUBLE",
    "integer": "BIGINT",
}
_MAX_EXACT_INT = 2**53


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


def value_sql(raw: str) -> str:
    """The cell as a value: surrounding spaces removed, empty is NULL.

    `trim` builds a new string for every cell; padded cells are rare, so only they pay for it.
    """
    return (
        f"(CASE WHEN {raw} = '' THEN NULL "
        f"WHEN starts_with({raw}, ' ') OR ends_with({raw}, ' ') THEN NULLIF(trim({raw}), '') "
        f"ELSE {raw} END)"
    )


def typed_sql(column: Column, dialect: Dialect, v: str) -> str:
    """`v` (a value expression) cast to the column's type; NULL when it does not parse."""
    if column.type == "string":
        return v
    if column.type == "date":
        return f"CAST(try_strptime({v}, {quote_literal(dialect.date_format)}) AS DATE)"
    if column.type == "timestamp":
        return f"CAST(try_strptime({v}, {quote_literal(dialect.timestamp_format)}) AS TIMESTAMP)"
    number = _number_sql(dialect, v)
    if column.type == "decimal":
        return f"(CASE WHEN isfinite({number}) THEN {number} END)"
    if column.type == "integer":
        return (
            f"(CASE WHEN {number} = round({number}) AND abs({number}) < {_MAX_EXACT_INT} "
            f"THEN CAST({number} AS BIGINT) END)"
        )
    raise ValueError(f"unknown column type {column.type!r}")


def _number_sql(dialect: Dialect, v: str) -> str:
    if dialect.decimal == ".":
        return f"TRY_CAST({v} AS DOUBLE)"
    # A '.' in a ','-decimal dialect would be a thousands separator: ambiguous, so not a number.
    sep = quote_literal(dialect.decimal)
    return (
        f"(CASE WHEN NOT contains({v}, '.') THEN TRY_CAST(replace({v}, {sep}, '.') AS DOUBLE) END)"
    )


def type_reason(column: Column, dialect: Dialect) -> str:
    if column.type == "date":
        return f"not a valid date (expected {_human_format(dialect.date_format)})"
    if column.type == "timestamp":
        return f"not a valid timestamp (expected {_human_format(dialect.timestamp_format)})"
    if column.type == "decimal":
        return f"not a valid decimal number (decimal separator '{dialect.decimal}')"
    if column.type == "integer":
        return "not a valid integer"
    return "not a valid string"


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def error_sql(column: Column, dialect: Dialect, v: str, x: str) -> str:
    """The first rule the cell breaks as a reason text, or NULL when it is valid.

    `v` is the value expression, `x` the typed one. Order: required, type, allowed, range.
    """
    whens = []
    if column.required:
        whens.append(f"WHEN {v} IS NULL THEN 'missing required value'")
    else:
        whens.append(f"WHEN {v} IS NULL THEN NULL")
    if column.type != "string":
        whens.append(f"WHEN {x} IS NULL THEN {quote_literal(type_reason(column, dialect))}")
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
