"""SQL literals for the statements DuckDB cannot take as bound parameters, and the one masking of
free text that may carry personal data.

View definitions (`CREATE VIEW ... AS SELECT * FROM read_parquet('<glob>')`) and settings
(`SET temp_directory = '<path>'`) accept no `?` parameter, so their values are written as literals.
Every other query binds its values (`con.execute(sql, [value])`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def literal(value: Any) -> str:
    """`value` as a SQL literal: NULL, TRUE/FALSE, a number, else its text quoted (quotes doubled)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(float(value))
    return "'" + str(value).replace("'", "''") + "'"


def literal_list(values: Iterable[Any]) -> str:
    """`[v1, v2, ...]`: a DuckDB list of literals (e.g. the globs of `read_parquet`)."""
    return "[" + ", ".join(literal(v) for v in values) + "]"


def masked(column: str) -> str:
    """SQL of a text column with what could be personal data masked: e-mails and digit runs of
    six or more (a document number, a phone) become `[redacted]` (quarantine reasons, in the
    `bi.quarantine` view and the ingest's data-quality report alike)."""
    return (
        f"regexp_replace(regexp_replace({column}, '[^\\s@]+@[^\\s@]+', '[redacted]', 'g'), "
        "'[0-9]{6,}', '[redacted]', 'g')"
    )
