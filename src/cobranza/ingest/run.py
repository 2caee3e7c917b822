"""`ingest_extract`: one extract folder in, one new raw version out (or nothing, on a fatal problem).

Owns the order of the run: every header and the manifest are checked before any heavy work;
a file is validated once the files it references are done (clients -> obligations ->
debit_mandates -> the rest), so references are checked against accepted parent rows. Files with
no pending parent run side by side, largest first, one serial parse each (which keeps line numbers
exact) on DuckDB cursors of one database; hashing runs in a thread ahead of them. Staging is an in-memory DuckDB that spills to
`<lake>/_tmp/` past `duckdb_memory_limit`; that folder is locked by its run and removed at its end,
or by the next run when this one was killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict
from pathlib import Path

import duckdb

from cobranza.config import Settings
from cobranza.contract import FILES, Dialect, DialectError, FileSpec, check_dialect
from cobranza.ingest.manifest import Manifest, load_manifest
from cobranza.ingest.reader import Fingerprint, Header, IngestError, fingerprint, read_header
from cobranza.ingest.rules import quote_literal
from cobranza.ingest.validate import (
    QUARANTINE_DDL,
    FileReport,
    keep_accepted_keys,
    validate_file,
    write_parquet,
)
from cobranza.lake import Lake, Publication, new_run_id

QUARANTINE_TABLE = "quarantine"
SUSPICIOUS_SHARE = 0.5  # a column failing its type this often suggests a wrong dialect
MAX_WORKERS = 4  # files validated at once; more only adds memory on this kind of machine
# Resident memory past DuckDB's limit per file validated at once (its Arrow scan of the parse,
# query state outside the buffer pool): measured 2.05 GiB for 2 files at 1M clients.
OUTSIDE_DUCKDB_PER_WORKER = 2**30


def ordered_files() -> list[FileSpec]:
    """Contract files with every referenced parent before its children."""
    done: list[FileSpec] = []
    pending = list(FILES)
    while pending:
        for spec in pending:
            parents = {p for _, p, _ in spec.references}
            if parents <= {d.stem for d in done}:
                done.append(spec)
                pending.remove(spec)
                break
        else:  # pragma: no cover - the contract has no cycles
            raise IngestError("the contract's references form a cycle")
    return done


def _connect(settings: Settings, tmp: Path) -> duckdb.DuckDBPyConnection:
    # In memory, spilling to the lake's temp folder past the limit: staging is never persisted.
    con = duckdb.connect(":memory:")
    limit = duckdb_limit(settings.duckdb_memory_limit, ingest_workers(settings))
    con.execute(f"SET memory_limit = {quote_literal(limit)}")
    con.execute(f"SET temp_directory = {quote_literal(str(tmp / 'spill'))}")
    con.execute("SET preserve_insertion_order = false")
    if settings.duckdb_threads:
        con.execute(f"SET threads = {int(settings.duckdb_threads)}")
    return con


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def duckdb_limit(memory_limit: str, workers: int) -> str:
    """DuckDB's share of the ingest's memory budget.

    `duckdb_memory_limit` is the budget of the whole ingest, but DuckDB bounds only its buffer
    pool: each file validated at once adds resident memory outside it. That is set aside, leaving
    DuckDB never less than half the budget. A limit that is not an absolute size (e.g. a
    percentage) is passed through unchanged.
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", memory_limit)
    if not m or m.group(2).lower() not in _UNITS or workers <= 1:
        return memory_limit
    budget = float(m.group(1)) * _UNITS[m.group(2).lower()]
    share = max(budget - workers * OUTSIDE_DUCKDB_PER_WORKER, budget / 2)
    return f"{int(share // 2**20)}MiB"


def _ingest_file(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    spec: FileSpec,
    path: Path,
    header: Header,
    dialect: Dialect,
    fingerprinted: Future,
    manifest: Manifest | None,
    pub: Publication,
    specs: list[FileSpec],
    lock: threading.Lock,
) -> tuple[FileReport, Fingerprint]:
    fp = fingerprinted.result()
    if manifest:
        manifest.check_hash(spec.filename, fp.sha256)
    out_dir = pub.table_dir(spec.stem)
    try:
        report = validate_file(con, spec, path, header, dialect, fp, out_dir)
    except duckdb.OutOfMemoryException:
        raise IngestError(
            f"{spec.filename}: DuckDB ran out of memory (memory_limit "
            f"{settings.duckdb_memory_limit}); raise COBRANZA_DUCKDB_MEMORY_LIMIT or free memory"
        ) from None
    if manifest:
        manifest.check_rows(spec.filename, report.rows_read)
    if any(p == spec.stem for s in specs for _, p, _ in s.references):
        keep_accepted_keys(con, spec, out_dir)
    with lock:
        pub.record(spec.stem, rows=report.rows_accepted, source=spec.filename)
    return report, fp


def ingest_workers(settings: Settings) -> int:
    """Files validated at once: one pyarrow parse thread each, DuckDB's threads shared."""
    return max(1, min(settings.ingest_workers or os.cpu_count() or 1, MAX_WORKERS))


def _schedule_order(specs: list[FileSpec], paths: dict[str, Path]) -> list[FileSpec]:
    """Largest files first among those whose parents are done: the longest file starts early."""
    order: list[FileSpec] = []
    pending = list(specs)
    while pending:
        ready = [s for s in pending if _parents(s) <= {d.stem for d in order}]
        first = max(ready, key=lambda s: _size(paths[s.stem]))
        order.append(first)
        pending.remove(first)
    return order


def _parents(spec: FileSpec) -> set[str]:
    return {p for _, p, _ in spec.references}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _ingest_files(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    specs: list[FileSpec],
    paths: dict[str, Path],
    headers: dict[str, Header],
    dialect: Dialect,
    futures: dict[str, Future],
    manifest: Manifest | None,
    pub: Publication,
    step,
) -> dict[str, tuple[FileReport, Fingerprint]]:
    """Validate every file, several at once, each as soon as the files it references are done.

    The parse of one file is serial (that is what keeps line numbers exact), so files run side by
    side on their own DuckDB cursors of the one in-memory database. On the first failure no new
    file starts and the running ones are interrupted (a bad extract fails in seconds, not after
    the largest file); that first failure is the error reported.
    """
    workers = ingest_workers(settings)
    done: dict[str, tuple[FileReport, Fingerprint]] = {}
    failed: dict[str, BaseException] = {}
    running: dict[Future, tuple[FileSpec, duckdb.DuckDBPyConnection]] = {}
    pending = list(specs)
    lock = threading.Lock()

    def run_one(spec: FileSpec, cur: duckdb.DuckDBPyConnection):
        with pub.timed(spec.stem):
            return _ingest_file(
                cur,
                settings,
                spec,
                paths[spec.stem],
                headers[spec.stem],
                dialect,
                futures[spec.stem],
                manifest,
                pub,
                specs,
                lock,
            )

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-file") as pool:
        while pending or running:
            if not failed:
                ready = [s for s in pending if _parents(s) <= set(done)]
                ready.sort(key=lambda s: _size(paths[s.stem]), reverse=True)
                for spec in ready[: workers - len(running)]:
                    pending.remove(spec)
                    cur = con.cursor()
                    running[pool.submit(run_one, spec, cur)] = (spec, cur)
                    if step:
                        step.update(
                            description="ingest "
                            + ", ".join(s.filename for s, _ in running.values())
                        )
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: specs.index(running[f][0])):
                spec, cur = running.pop(fut)
                try:
                    done[spec.stem] = fut.result()
                except BaseException as exc:  # re-raised below, in file order
                    failed[spec.stem] = exc
                    for _, other in running.values():
                        other.interrupt()
                finally:
                    cur.close()
                if step:
                    step.advance(1)
    if failed:  # in the order they were detected; an interrupted file only followed another
        errors = list(failed.values())
        raise next((e for e in errors if not _interrupted(e)), errors[0])
    return done


def _interrupted(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.InterruptException)


def ingest_extract(settings: Settings, extract_dir: Path, dialect: Dialect, ui=None) -> dict:
    """Validate an extract against the contract and publish it as a new raw version."""
    start = time.perf_counter()
    try:  # a dialect built in code skips load_dialect's checks: check it before any file
        check_dialect(dialect)
    except DialectError as exc:
        raise IngestError(str(exc)) from None
    extract_dir = Path(extract_dir).resolve()
    if not extract_dir.is_dir():
        raise IngestError(f"{extract_dir}: the extract folder does not exist")
    specs = ordered_files()
    paths = {s.stem: extract_dir / s.filename for s in specs}
    missing = [s.filename for s in specs if not paths[s.stem].is_file()]
    if len(missing) == len(specs):
        raise IngestError(f"{extract_dir}: empty extract, none of the contract files is there")
    if missing:
        raise IngestError(
            f"{missing[0]}: missing file in {extract_dir}"
            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
        )
    manifest = load_manifest(extract_dir)
    headers = {s.stem: read_header(paths[s.stem], s, dialect) for s in specs}

    lake = Lake(settings.lake).ensure()
    run_id = new_run_id()
    work = lake.work_dir(f"ingest-{run_id}")  # also removes the folders of killed runs
    tmp = work.path
    reports: dict[str, FileReport] = {}
    hashes: dict[str, Fingerprint] = {}
    as_of = manifest.as_of if manifest else None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-hash")
    quote = dialect.quote.encode("ascii")  # check_dialect: an ASCII character or none
    con = None
    try:
        futures: dict[str, Future] = {
            s.stem: pool.submit(fingerprint, paths[s.stem], quote)
            for s in _schedule_order(specs, paths)
        }
        con = _connect(settings, tmp)
        con.execute(QUARANTINE_DDL)
        with lake.publish("raw", run_id=run_id) as pub:
            progress = ui.progress("ingest", total=len(specs)) if ui else contextlib.nullcontext()
            with progress as step:
                done = _ingest_files(
                    con, settings, specs, paths, headers, dialect, futures, manifest, pub, step
                )
            for spec in specs:  # reports in contract order, whatever order the files finished
                reports[spec.filename], hashes[spec.filename] = done[spec.stem]
            if sum(r.rows_read for r in reports.values()) == 0:
                raise IngestError(f"{extract_dir}: empty extract, the files have no data rows")
            with pub.timed(QUARANTINE_TABLE):
                q_rows = write_parquet(
                    con,
                    'SELECT file, line, "column", value, reason FROM quarantine '
                    'ORDER BY file, line, "column"',
                    pub.table_dir(QUARANTINE_TABLE),
                )
            pub.record(QUARANTINE_TABLE, rows=q_rows)
            if as_of is None:
                as_of = con.execute(
                    "SELECT max(cut_date) FROM read_parquet("
                    f"{quote_literal(str(pub.dir / 'portfolio_cuts' / '*.parquet'))})"
                ).fetchone()[0]
                if as_of is None:
                    raise IngestError(
                        "portfolio_cuts.csv: no accepted cut, so the extract date (as_of) is "
                        "unknown; add a manifest.json with as_of"
                    )
            warnings = _warnings(con, reports)
            files = {name: r.counts() for name, r in reports.items()}
            pub.inputs.update(
                {
                    name: {"sha256": fp.sha256, "rows": reports[name].rows_read, "bytes": fp.size}
                    for name, fp in hashes.items()
                }
            )
            pub.meta.update(
                {
                    "as_of": as_of.isoformat(),
                    "extract_dir": str(extract_dir),
                    "dialect": dialect.name,
                    "dialect_fields": {k: v for k, v in asdict(dialect).items() if k != "extra"},
                    "manifest": manifest is not None,
                    "files": files,
                    "columns": {
                        name: {
                            "extra": r.extra_columns,
                            "missing_optional": r.missing_optional_columns,
                        }
                        for name, r in reports.items()
                    },
                    "warnings": warnings,
                }
            )
            version = pub.version
            examples = _examples(con, reports)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if con is not None:
            con.close()
        work.close()

    if ui:
        for line in examples:
            ui.info(line)
        for w in warnings:
            ui.info(f"[yellow]warning:[/] {w}")
    return {
        "version": version,
        "as_of": as_of.isoformat(),
        "extract_dir": str(extract_dir),
        "dialect": dialect.name,
        "files": files,
        "rows_read": sum(r["rows_read"] for r in files.values()),
        "rows_accepted": sum(r["rows_accepted"] for r in files.values()),
        "rows_quarantined": sum(r["rows_quarantined"] for r in files.values()),
        "duplicates_collapsed": sum(r["duplicates_collapsed"] for r in files.values()),
        "warnings": warnings,
        "fatal": None,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _warnings(con: duckdb.DuckDBPyConnection, reports: dict[str, FileReport]) -> list[str]:
    out = []
    for name, r in reports.items():
        if r.missing_optional_columns:
            out.append(
                f"{name}: optional column(s) {', '.join(r.missing_optional_columns)} absent, "
                "kept as empty"
            )
        if r.line_drift:
            where = f"line {r.drift_from}" if r.drift_from else "the first of them"
            out.append(
                f"{name}: carriage returns without a line feed end records for the parser but "
                f"not lines for an editor; line numbers after {where} may be off by up to "
                f"{abs(r.line_drift)}"
            )
        if r.extra_columns:
            out.append(
                f"{name}: extra column(s) {', '.join(r.extra_columns)} kept in raw, not used"
            )
    rows = con.execute(
        'SELECT file, "column", reason, count(*) FROM quarantine '
        "WHERE reason LIKE 'not a valid%' GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    for file, column, reason, n in rows:
        read = reports[file].rows_read
        if read and n / read >= SUSPICIOUS_SHARE:
            out.append(
                f"{file}: {n / read:.0%} of column {column} is {reason}: is the dialect right?"
            )
    return out


def _examples(con: duckdb.DuckDBPyConnection, reports: dict[str, FileReport]) -> list[str]:
    """One log line per file with quarantined rows: count and first case, never the value."""
    rows = con.execute(
        'SELECT file, line, "column", reason FROM ('
        'SELECT file, line, "column", reason, '
        'row_number() OVER (PARTITION BY file ORDER BY line, "column") AS rn FROM quarantine) '
        "WHERE rn = 1 ORDER BY file"
    ).fetchall()
    return [
        f"{file}: {reports[file].rows_quarantined} row(s) quarantined, first at line {line} "
        f"column {column}: {reason}"
        for file, line, column, reason in rows
    ]
