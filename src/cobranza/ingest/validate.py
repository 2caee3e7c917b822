"""Validating one contract file inside DuckDB and writing its typed raw table.

Owns the per-file rules that need the whole file or another file: exact duplicates collapse,
rows sharing a key but differing are all quarantined, references are checked against the
accepted rows of the parent file, and an assignment row must match an early-delinquency cut
(`assignments`). Cell rules come from `rules`; bytes from `reader`. Everything is vectorized SQL
over a staged table, so memory stays bounded by DuckDB's limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from cobranza.contract import ASSIGNMENTS, Dialect, FileSpec
from cobranza.ingest import reader
from cobranza.ingest.assignments import quarantine_not_early
from cobranza.ingest.errors import IngestError
from cobranza.ingest.header import Header
from cobranza.ingest.numbers import NUMBER_CHECK, number_columns, number_unsure_sql
from cobranza.ingest.reader import Parsed, RecordTooLong, Undecodable, stream_batches
from cobranza.ingest.rules import (
    error_sql,
    quote_ident,
    quote_literal,
    reference_reason,
    typed_sql,
    value_sql,
)
from cobranza.ingest.scan import Fingerprint

QUARANTINE_DDL = (
    "CREATE TABLE IF NOT EXISTS quarantine "
    '(file VARCHAR, line BIGINT, "column" VARCHAR, value VARCHAR, reason VARCHAR)'
)
ROW_COLUMN = "*"  # quarantine column for problems of the whole row
MAX_LINES_LISTED = 10
# zstd's fastest level: a fifth less CPU than its default for a tenth more bytes (measured on
# debit_attempts, 2.4M rows: 1.75 against 2.21 CPU s, 33 against 30 MB)
ZSTD_LEVEL = "COMPRESSION_LEVEL 1"


@dataclass
class FileReport:
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    duplicates_collapsed: int = 0
    extra_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    line_drift: int = 0
    drift_from: int | None = None

    def counts(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "duplicates_collapsed": self.duplicates_collapsed,
        }


def stage_sql(spec: FileSpec, header: Header, dialect: Dialect, source: str) -> str:
    """SELECT turning the string stream into typed columns plus what the checks need.

    Output columns: `_line`, `_hash` (of the whole raw row, for exact duplicates), the contract
    columns typed, the extra columns as strings, and `_errs`: NULL for a clean row, else the list
    of broken cells as structs (col, value = original text, reason). One list column instead of
    a reason and a text column per contract column keeps the staged table narrow.
    """
    ncol = len(header.names)
    raw_cols = [f"c{i}" for i in range(ncol)]
    inner = ["_line", f"hash({', '.join(raw_cols)}) AS _hash"]
    screened = {bit for bit, _, _ in number_columns(spec, header, dialect)}
    for j, col in enumerate(spec.columns):
        pos = header.positions.get(col.name)
        raw = f"c{pos}" if pos is not None else "CAST(NULL AS VARCHAR)"
        inner.append(f"{raw} AS _r{j}")
        unsure = number_unsure_sql(j) if j in screened else None
        inner.append(f"{value_sql(raw, unsure)} AS _v{j}")
    for name, pos in header.extras:
        inner.append(f"NULLIF(c{pos}, '') AS {quote_ident(name)}")
    inner.append(NUMBER_CHECK)
    # A number or identifier cell the reader vouched for as plain skips the rule's regex.
    typed = ["*"] + [
        f"{typed_sql(col, dialect, f'_v{j}', number_unsure_sql(j))} AS _x{j}"
        for j, col in enumerate(spec.columns)
    ]
    checked = ["_line", "_hash"]
    checked += [f"_x{j}" for j in range(len(spec.columns))]
    checked += [quote_ident(name) for name, _ in header.extras]
    checked += [f"_r{j}" for j in range(len(spec.columns))]
    checked += [
        f"{error_sql(col, dialect, f'_v{j}', f'_x{j}', number_unsure_sql(j))} AS _e{j}"
        for j, col in enumerate(spec.columns)
    ]
    any_error = " OR ".join(f"_e{j} IS NOT NULL" for j in range(len(spec.columns)))
    cells = ", ".join(
        f"{{'col': {quote_literal(col.name)}, 'value': _r{j}, 'reason': _e{j}}}"
        for j, col in enumerate(spec.columns)
    )
    final = ["_line", "_hash"]
    final += [f"_x{j} AS {quote_ident(col.name)}" for j, col in enumerate(spec.columns)]
    final += [quote_ident(name) for name, _ in header.extras]
    final.append(
        f"CASE WHEN {any_error} THEN list_filter([{cells}], c -> c.reason IS NOT NULL) END AS _errs"
    )
    return (
        f"SELECT {', '.join(final)} FROM ("
        f"SELECT {', '.join(checked)} FROM ("
        f"SELECT {', '.join(typed)} FROM ("
        f"SELECT {', '.join(inner)} FROM {source})))"
    )


def _key_text(spec: FileSpec, dialect: Dialect, alias: str = "") -> str:
    """The key as the file spelled it (dates and timestamps in the dialect's format)."""
    parts = []
    for col in spec.columns:
        if col.name not in spec.key:
            continue
        ident = alias + quote_ident(col.name)
        if col.type == "date":
            parts.append(f"strftime({ident}, {quote_literal(dialect.date_format)})")
        elif col.type == "timestamp":
            parts.append(f"strftime({ident}, {quote_literal(dialect.timestamp_format)})")
        else:
            parts.append(f"CAST({ident} AS VARCHAR)")
    return parts[0] if len(parts) == 1 else "concat_ws('|', " + ", ".join(parts) + ")"


def validate_file(
    con: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    path: Path,
    header: Header,
    dialect: Dialect,
    fp: Fingerprint,
    out_dir: Path,
) -> FileReport:
    """Stage, check and write one file; quarantine rows go to the connection's `quarantine`.

    A record longer than the parser block fails the staging; it is staged again from the start
    with a larger block (rare, so the common case keeps the small block's memory), up to
    MAX_BLOCK, past which the file fails naming the record's line. A malformed record with bytes
    that are not valid UTF-8 is staged again the same way, with those bytes replaced.
    """
    table = f"t_{spec.stem}"
    con.execute(QUARANTINE_DDL)
    block = None  # the reader's own BLOCK
    replace_invalid = False  # parse the text with undecodable bytes replaced (`Undecodable`)
    while True:
        parsed = Parsed()
        try:
            _stage(con, spec, path, header, dialect, fp, parsed, table, block, replace_invalid)
            break
        except RecordTooLong as exc:
            if exc.block >= reader.MAX_BLOCK:
                raise
            block = min(exc.block * reader.BLOCK_GROWTH, reader.MAX_BLOCK)
        except Undecodable:
            if replace_invalid:
                raise
            replace_invalid = True
    try:
        return _check_and_write(con, spec, table, header, dialect, parsed, out_dir)
    finally:  # staging is per file: memory is bounded by the largest file, not the extract
        con.execute(
            f"DROP TABLE IF EXISTS {table}; DROP TABLE IF EXISTS _dupkeys; "
            "DROP TABLE IF EXISTS _cand; DROP TABLE IF EXISTS _collapsed; DROP TABLE IF EXISTS _bad"
        )


def _stage(
    con: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    path: Path,
    header: Header,
    dialect: Dialect,
    fp: Fingerprint,
    parsed: Parsed,
    table: str,
    block: int | None,
    replace_invalid: bool = False,
) -> None:
    names = [f"c{i}" for i in range(len(header.names))]
    schema = pa.schema(
        [
            *(pa.field(n, pa.string()) for n in names),
            pa.field("_line", pa.int64()),
            pa.field(NUMBER_CHECK, pa.int64()),
        ]
    )
    batches = stream_batches(
        path, spec, header, dialect, fp, parsed, block_size=block, replace_invalid=replace_invalid
    )
    stream = pa.RecordBatchReader.from_batches(schema, _keeping_error(batches, parsed))
    source = f"_stream_{spec.stem}"
    con.register(source, stream)
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {table} AS {stage_sql(spec, header, dialect, source)}"
        )
    except duckdb.Error:
        # DuckDB wraps what the stream raised into its own error text: raise the original.
        if parsed.error is not None:
            raise parsed.error from None
        raise
    finally:
        con.unregister(source)


def _check_and_write(
    con: duckdb.DuckDBPyConnection,
    spec: FileSpec,
    table: str,
    header: Header,
    dialect: Dialect,
    parsed: Parsed,
    out_dir: Path,
) -> FileReport:
    fname = quote_literal(spec.filename)
    report = FileReport(
        extra_columns=[n for n, _ in header.extras],
        missing_optional_columns=list(header.missing_optional),
    )
    if parsed.bad:
        ncol = len(header.names)
        rows = [
            (
                spec.filename,
                b.line,
                ROW_COLUMN,
                b.text,
                f"expected {ncol} fields as in the header, found {b.fields}",
            )
            for b in parsed.bad
        ]
        con.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?)", rows)
    _quarantine_keys(con, spec, table, dialect)
    _quarantine_cells_and_references(con, spec, table, dialect)

    columns = [quote_ident(c) for c in spec.column_names]
    columns += [quote_ident(n) for n, _ in header.extras]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _bad AS "
        f"SELECT DISTINCT line FROM quarantine WHERE file = {fname}"
    )
    accepted = (
        f"SELECT {', '.join(columns)}, _line FROM {table} t "
        f"ANTI JOIN _collapsed c ON t._line = c._line ANTI JOIN _bad b ON t._line = b.line "
        "WHERE _errs IS NULL"
    )
    report.rows_accepted = write_parquet(con, accepted, out_dir)
    report.rows_read = parsed.good_rows + len(parsed.bad)
    report.line_drift = parsed.line_drift
    report.drift_from = parsed.drift_from
    report.duplicates_collapsed = con.execute("SELECT count(*) FROM _collapsed").fetchone()[0]
    report.rows_quarantined = con.execute("SELECT count(*) FROM _bad").fetchone()[0]
    staged = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    if staged != parsed.good_rows or report.rows_read != (
        report.rows_accepted + report.rows_quarantined + report.duplicates_collapsed
    ):
        raise IngestError(
            f"{spec.filename}: internal check failed: rows read {report.rows_read} != accepted "
            f"{report.rows_accepted} + quarantined {report.rows_quarantined} + collapsed "
            f"{report.duplicates_collapsed}"
        )
    return report


def _quarantine_keys(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, table: str, dialect: Dialect
) -> None:
    """Exact duplicates collapse to their first line (`_collapsed`); rows sharing a key but
    differing are all quarantined."""
    fname = quote_literal(spec.filename)
    key_cols = ", ".join(quote_ident(k) for k in spec.key)
    key_ok = " AND ".join(f"{quote_ident(k)} IS NOT NULL" for k in spec.key)
    con.execute(
        # Grouping by a 64-bit hash of the key is far cheaper than by the key's strings; a
        # collision only adds a candidate, the windows below compare the real key.
        f"CREATE OR REPLACE TEMP TABLE _dupkeys AS SELECT hash({key_cols}) AS _kh FROM {table} "
        f"WHERE {key_ok} GROUP BY ALL HAVING count(*) > 1"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _cand AS SELECT _line, _hash, {key_cols}, "
        f"{_key_text(spec, dialect)} AS _key FROM {table} "
        f"WHERE {key_ok} AND hash({key_cols}) IN (SELECT _kh FROM _dupkeys)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _collapsed AS SELECT _line FROM ("
        f"SELECT _line, row_number() OVER (PARTITION BY {key_cols}, _hash ORDER BY _line) AS rn "
        "FROM _cand) WHERE rn > 1 UNION ALL "
        # Copies of a row whose key is itself broken: still one row, quarantined once.
        "SELECT _line FROM (SELECT _line, row_number() OVER (PARTITION BY _hash ORDER BY _line) "
        f"AS rn FROM {table} WHERE NOT ({key_ok})) WHERE rn > 1"
    )
    key_label = quote_literal(", ".join(spec.key))
    # Every line of the group is named, exact copies (collapsed, not quarantined) included, so
    # whoever fixes the extract sees all the rows behind one key.
    con.execute(
        f"INSERT INTO quarantine SELECT {fname}, _line, {key_label}, _key, "
        "'duplicate key with different values: ' || n || ' rows share it (lines ' "
        f"|| array_to_string(lines[1:{MAX_LINES_LISTED}], ', ') "
        f"|| CASE WHEN n > {MAX_LINES_LISTED} THEN ' and ' || (n - {MAX_LINES_LISTED}) "
        "|| ' more' ELSE '' END || ')' "
        "|| CASE WHEN n = distinct_rows + 1 THEN ', 1 of them an exact copy, collapsed' "
        "WHEN n > distinct_rows THEN ', ' || (n - distinct_rows) "
        "|| ' of them exact copies, collapsed' ELSE '' END FROM ("
        "SELECT _line, _key, count(*) OVER w AS n, count(DISTINCT _hash) OVER w AS distinct_rows, "
        "list(_line) OVER (w ORDER BY _line ROWS BETWEEN UNBOUNDED PRECEDING "
        f"AND UNBOUNDED FOLLOWING) AS lines FROM _cand WINDOW w AS (PARTITION BY {key_cols})"
        ") ANTI JOIN _collapsed USING (_line) WHERE distinct_rows > 1"
    )


def _quarantine_cells_and_references(
    con: duckdb.DuckDBPyConnection, spec: FileSpec, table: str, dialect: Dialect
) -> None:
    fname = quote_literal(spec.filename)
    # Cell rules: one quarantine row per broken (row, column); collapsed copies are not rows.
    con.execute(
        f"INSERT INTO quarantine SELECT {fname}, _line, e.col, e.value, e.reason FROM ("
        f"SELECT _line, unnest(_errs) AS e FROM {table} t WHERE _errs IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM _collapsed c WHERE c._line = t._line))"
    )

    # References against the accepted rows of the parent (a quarantined parent is missing).
    for col, parent, pcol in spec.references:
        reason = quote_literal(reference_reason(parent, pcol))
        con.execute(
            f"INSERT INTO quarantine SELECT {fname}, t._line, {quote_literal(col)}, "
            f"t.{quote_ident(col)}, {reason} FROM {table} t "
            f"ANTI JOIN _accepted_{parent} p ON t.{quote_ident(col)} = p.{quote_ident(pcol)} "
            f"ANTI JOIN _collapsed c ON t._line = c._line WHERE t.{quote_ident(col)} IS NOT NULL"
        )
    if spec.stem == ASSIGNMENTS:
        quarantine_not_early(con, table, spec.filename, _key_text(spec, dialect, "t."))


def keep_accepted_keys(con: duckdb.DuckDBPyConnection, spec: FileSpec, out_dir: Path) -> None:
    """Accepted keys of a parent file, for the reference checks of the files after it."""
    key = quote_ident(spec.key[0])
    glob = quote_literal(str(out_dir / "*.parquet"))
    # A plain table of the in-memory database, not TEMP: the files that reference it are
    # validated on other cursors, each a connection of its own.
    con.execute(
        f"CREATE OR REPLACE TABLE _accepted_{spec.stem} AS "
        f"SELECT DISTINCT {key} FROM read_parquet({glob})"
    )


def write_parquet(con: duckdb.DuckDBPyConnection, query: str, out_dir: Path) -> int:
    """COPY a query into `out_dir` as Parquet parts; an empty result still gets a typed file."""
    target = quote_literal(str(out_dir))
    res = con.execute(
        f"COPY ({query}) TO {target} (FORMAT parquet, COMPRESSION zstd, {ZSTD_LEVEL}, "
        "FILE_SIZE_BYTES '512MB', OVERWRITE_OR_IGNORE true, FILENAME_PATTERN 'part-{i}')"
    ).fetchone()
    rows = int(res[0]) if res else 0
    if not any(out_dir.glob("*.parquet")):
        import pyarrow.parquet as pq

        empty = con.execute(f"SELECT * FROM ({query}) LIMIT 0").fetch_arrow_table()
        pq.write_table(empty, out_dir / "part-0.parquet")
    return rows


def _keeping_error(batches: Iterator[pa.RecordBatch], parsed: Parsed) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except IngestError as exc:
        parsed.error = exc
        raise


__all__ = ["FileReport", "keep_accepted_keys", "validate_file", "write_parquet"]
