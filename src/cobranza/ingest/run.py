"""`ingest_extract`: one extract folder in, one new raw version out (or nothing, on a fatal problem).

Owns the order of the run: the manifest (and with it the contract version), where each file is
(plain or gzip) and every header are checked before any heavy work; a file is validated once the
files it reads are done (clients -> obligations -> debit_mandates -> the rest; portfolio_cuts
before collection_assignments), so references and cross-file rules read accepted rows. Files with
no pending parent run side by side, largest first, one serial parse each (which keeps line numbers
exact) on DuckDB cursors of one database; hashing runs in a thread ahead of them. Staging is an
in-memory DuckDB that spills to `<lake>/_tmp/` past `duckdb_memory_limit`, or, when the files
staged at once would not fit it (`staging`), a database file in that folder, compressed; the
folder is locked by its run and removed at its end, or by the next run when this one was killed.

A version-1 extract (no `contract_version` in the manifest) carries no assignment file: the raw
zone gets an empty `collection_assignments` table, every early-delinquency row counts as
unassigned (treated as ASSIGNED) and the run warns once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from cobranza.config import Settings
from cobranza.contract import (
    ASSIGNMENTS,
    COLLECTION_ASSIGNMENTS,
    FILES,
    Dialect,
    DialectError,
    FileSpec,
    check_dialect,
)
from cobranza.ingest import assignments, quality
from cobranza.ingest.budget import duckdb_limit, ingest_workers, staging
from cobranza.ingest.errors import IngestError
from cobranza.ingest.header import Header, read_header
from cobranza.ingest.manifest import DEFAULT_VERSION, Manifest, load_manifest
from cobranza.ingest.rules import SQL_TYPES, quote_ident, quote_literal
from cobranza.ingest.scan import Fingerprint, fingerprint
from cobranza.ingest.source import ExtractFolder, as_delivered, locate
from cobranza.ingest.validate import (
    QUARANTINE_DDL,
    FileReport,
    keep_accepted_keys,
    validate_file,
    write_parquet,
)
from cobranza.lake import Lake, Publication, new_run_id
from cobranza.stages import CheckedFolder

QUARANTINE_TABLE = "quarantine"
SUSPICIOUS_SHARE = 0.5  # a column failing its type this often suggests a wrong dialect


def ordered_files(specs: tuple[FileSpec, ...] = FILES) -> list[FileSpec]:
    """Contract files with every file they read (parents, cross-file rules) before them."""
    done: list[FileSpec] = []
    pending = list(specs)
    while pending:
        for spec in pending:
            if spec.parents <= {d.stem for d in done}:
                done.append(spec)
                pending.remove(spec)
                break
        else:  # pragma: no cover - the contract has no cycles
            raise IngestError("the contract's references form a cycle")
    return done


def _connect(settings: Settings, tmp: Path, where: str) -> duckdb.DuckDBPyConnection:
    # Staging is never persisted: in memory (spilling to the lake's temp folder past the limit),
    # or in a database file in that folder, whose tables DuckDB writes compressed.
    con = duckdb.connect(":memory:" if where == "memory" else str(tmp / "staging.duckdb"))
    limit = duckdb_limit(settings.duckdb_memory_limit, ingest_workers(settings))
    con.execute(f"SET memory_limit = {quote_literal(limit)}")
    con.execute(f"SET temp_directory = {quote_literal(str(tmp / 'spill'))}")
    con.execute("SET preserve_insertion_order = false")
    if settings.duckdb_threads:
        con.execute(f"SET threads = {int(settings.duckdb_threads)}")
    return con


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
    if any(spec.stem in {p for _, p, _ in s.references} for s in specs):
        keep_accepted_keys(con, spec, out_dir)
    if spec.stem in COLLECTION_ASSIGNMENTS.after and any(s.stem == ASSIGNMENTS for s in specs):
        assignments.keep_early_delinquency(con, out_dir)
    with lock:
        pub.record(spec.stem, rows=report.rows_accepted, source=spec.filename)
    if settings.ingest_staging == "disk":
        # the dropped staging tables' blocks are reused only after a checkpoint: without it the
        # database file grows by every file staged (one file at a time here, so none is mid-write)
        con.execute("CHECKPOINT")
    return report, fp


def schedule_order(specs: list[FileSpec], paths: dict[str, Path]) -> list[FileSpec]:
    """Largest files first among those whose parents are done: the longest file starts early."""
    order: list[FileSpec] = []
    pending = list(specs)
    while pending:
        ready = [s for s in pending if s.parents <= {d.stem for d in order}]
        first = max(ready, key=lambda s: _size(paths[s.stem]))
        order.append(first)
        pending.remove(first)
    return order


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
                ready = [s for s in pending if s.parents <= set(done)]
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


@dataclass
class Extract:
    """An extract folder checked up to its headers: nothing heavy has been read yet."""

    dir: Path
    dialect: Dialect
    manifest: Manifest | None
    version: int
    specs: list[FileSpec]  # as delivered, every parent before its children
    paths: dict[str, Path]
    headers: dict[str, Header]
    folder: ExtractFolder | None = None  # held open while the files are read

    @property
    def as_of(self) -> date | None:
        return self.manifest.as_of if self.manifest else None

    def close(self) -> None:
        if self.folder is not None:
            self.folder.close()


def open_extract(
    extract_dir: Path, dialect: Dialect, checked: CheckedFolder | None = None
) -> Extract:
    """Dialect, folder, manifest, contract version, files (plain or gzip) and headers; else fatal.

    The folder stays open (`Extract.folder`) until `close`: every file is read through it.
    """
    try:  # a dialect built in code skips load_dialect's checks: check it before any file
        check_dialect(dialect)
    except DialectError as exc:
        raise IngestError(str(exc)) from None
    folder = ExtractFolder.open(Path(extract_dir), checked)
    try:
        return _checked_extract(folder, dialect)
    except BaseException:
        folder.close()
        raise


def _checked_extract(folder: ExtractFolder, dialect: Dialect) -> Extract:
    extract_dir = folder.path
    manifest = load_manifest(folder)
    version = manifest.contract_version if manifest else DEFAULT_VERSION
    wanted = tuple(f for f in FILES if f.since <= version)
    paths, missing = locate(folder, wanted)
    if not paths:
        raise IngestError(f"{extract_dir}: empty extract, none of the contract files is there")
    if missing:
        newer = [f.csv_name for f in wanted if f.csv_name in missing and f.since > DEFAULT_VERSION]
        why = f" ({', '.join(newer)} required in contract version {version})" if newer else ""
        raise IngestError(
            f"{missing[0]}: missing file in {extract_dir}{why}"
            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
        )
    _refuse_newer_files(folder, version)
    specs = [as_delivered(s, paths[s.stem]) for s in ordered_files(wanted)]
    if manifest:
        manifest.check_entries([s.filename for s in specs])
    headers = {s.stem: read_header(paths[s.stem], s, dialect) for s in specs}
    return Extract(extract_dir, dialect, manifest, version, specs, paths, headers, folder)


def _refuse_newer_files(folder: ExtractFolder, version: int) -> None:
    """A file of a later contract version in an older extract would be ignored: refuse it."""
    newer = [f for f in FILES if f.since > version]
    found, _ = locate(folder, tuple(newer))
    for spec in newer:
        if spec.stem in found:
            raise IngestError(
                f"{found[spec.stem].name}: a contract version {spec.since} file, but the extract "
                f'is version {version} (manifest.json has no "contract_version": {spec.since}); '
                "declare the version in manifest.json or remove the file"
            )


def ingest_extract(
    settings: Settings,
    extract_dir: Path,
    dialect: Dialect,
    ui=None,
    checked: CheckedFolder | None = None,
) -> dict:
    """Validate an extract against the contract and publish it as a new raw version.

    `checked`: what the API checked of the folder when a job runs this (its identity, the roots).
    """
    start = time.perf_counter()
    extract = open_extract(extract_dir, dialect, checked)
    try:
        return _ingest(settings, extract, dialect, ui, start)
    finally:
        extract.close()


def _ingest(settings: Settings, extract: Extract, dialect: Dialect, ui, start: float) -> dict:
    lake = Lake(settings.lake).ensure()
    run_id = new_run_id()
    work = lake.work_dir(f"ingest-{run_id}")  # also removes the folders of killed runs
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-hash")
    quote = dialect.quote.encode("ascii")  # check_dialect: an ASCII character or none
    con = None
    where = "memory"
    try:
        futures: dict[str, Future] = {
            s.stem: pool.submit(fingerprint, extract.paths[s.stem], quote)
            for s in schedule_order(extract.specs, extract.paths)
        }
        where = staging(settings, [extract.paths[s.stem] for s in extract.specs])
        if where == "disk":  # one file at a time: the disk holds one file's staging, not two
            settings = settings.model_copy(update={"ingest_staging": where, "ingest_workers": 1})
        con = _connect(settings, work.path, where)
        con.execute(QUARANTINE_DDL)
        with lake.publish("raw", run_id=run_id) as pub:
            progress = (
                ui.progress("ingest", total=len(extract.specs)) if ui else contextlib.nullcontext()
            )
            with progress as step:
                done = _ingest_files(
                    con,
                    settings,
                    extract.specs,
                    extract.paths,
                    extract.headers,
                    dialect,
                    futures,
                    extract.manifest,
                    pub,
                    step,
                )
            summary = _complete_version(con, settings, extract, pub, done)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if con is not None:
            con.close()
        work.close()
    if ui:
        for line in summary.pop("_log"):
            ui.info(line)
        for w in summary["warnings"]:
            ui.info(f"[yellow]warning:[/] {w}")
    else:
        summary.pop("_log")
    summary["staging"] = where
    summary["seconds"] = round(time.perf_counter() - start, 3)
    return summary


def _complete_version(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    extract: Extract,
    pub: Publication,
    done: dict[str, tuple[FileReport, Fingerprint]],
) -> dict[str, Any]:
    """After the files: quarantine, the empty tables of a shorter version, as_of, the assignment
    report and the version's record; the run's summary (with its log lines under `_log`)."""
    reports: dict[str, FileReport] = {}
    hashes: dict[str, Fingerprint] = {}
    for spec in extract.specs:  # reports in contract order, whatever order the files finished
        reports[spec.filename], hashes[spec.filename] = done[spec.stem]
    if sum(r.rows_read for r in reports.values()) == 0:
        raise IngestError(f"{extract.dir}: empty extract, the files have no data rows")
    with pub.timed(QUARANTINE_TABLE):
        q_rows = write_parquet(
            con,
            'SELECT file, line, "column", value, reason FROM quarantine '
            'ORDER BY file, line, "column"',
            pub.table_dir(QUARANTINE_TABLE),
        )
    pub.record(QUARANTINE_TABLE, rows=q_rows)
    delivered = {s.stem for s in extract.specs}
    for spec in FILES:
        if spec.stem not in delivered:  # a file of a later version: empty, so raw is uniform
            write_parquet(con, _empty_sql(spec), pub.table_dir(spec.stem))
            pub.record(spec.stem, rows=0, source=None)
    as_of = extract.as_of or _last_cut(con, pub)
    tables = {spec.stem: pub.dir / spec.stem for spec in FILES}
    arms = assignments.report(
        con,
        tables,
        extract.version,
        next((s.filename for s in extract.specs if s.stem == ASSIGNMENTS), None),
        settings.horizon_days,
    )
    actions_name = next(s.filename for s in extract.specs if s.stem == "collection_actions")
    warnings = _warnings(con, extract.specs, reports, extract.version)
    warnings += assignments.warnings(arms, actions_name)
    files = {name: r.counts() for name, r in reports.items()}
    found = quality.groups(con, QUARANTINE_TABLE)
    report = quality.QualityReport(pub.version, as_of.isoformat(), files, found)
    quality_report = quality.write_report(
        report, pub.dir / quality.REPORT_DIR, settings.reason_language
    )
    pub.inputs.update(
        {
            name: {"sha256": fp.sha256, "rows": reports[name].rows_read, "bytes": fp.delivered_size}
            for name, fp in hashes.items()
        }
    )
    dialect = extract.dialect
    pub.meta.update(
        {
            "as_of": as_of.isoformat(),
            "extract_dir": str(extract.dir),
            "contract_version": extract.version,
            "dialect": dialect.name,
            "dialect_fields": {k: v for k, v in asdict(dialect).items() if k != "extra"},
            "manifest": extract.manifest is not None,
            "files": files,
            "columns": {
                name: {"extra": r.extra_columns, "missing_optional": r.missing_optional_columns}
                for name, r in reports.items()
            },
            "assignments": arms,
            "warnings": warnings,
        }
    )
    return {
        "version": pub.version,
        "as_of": as_of.isoformat(),
        "extract_dir": str(extract.dir),
        "contract_version": extract.version,
        "dialect": dialect.name,
        "files": files,
        "rows_read": sum(r["rows_read"] for r in files.values()),
        "rows_accepted": sum(r["rows_accepted"] for r in files.values()),
        "rows_quarantined": sum(r["rows_quarantined"] for r in files.values()),
        "duplicates_collapsed": sum(r["duplicates_collapsed"] for r in files.values()),
        "assignments": arms,
        "warnings": warnings,
        "quality_report": quality_report,
        "fatal": None,
        "_log": [*_examples(con, reports), assignments.log_line(arms)],
    }


def _empty_sql(spec: FileSpec) -> str:
    """A typed, empty raw table of a contract file (contract columns and `_line`)."""
    cols = [f"CAST(NULL AS {SQL_TYPES[c.type]}) AS {quote_ident(c.name)}" for c in spec.columns]
    return f"SELECT {', '.join(cols)}, CAST(NULL AS BIGINT) AS _line LIMIT 0"


def _last_cut(con: duckdb.DuckDBPyConnection, pub: Publication) -> date:
    """The extract date without a manifest: the last accepted cut."""
    last = con.execute(
        "SELECT max(cut_date) FROM read_parquet("
        f"{quote_literal(str(pub.dir / 'portfolio_cuts' / '*.parquet'))})"
    ).fetchone()[0]
    if last is None:
        raise IngestError(
            "portfolio_cuts.csv: no accepted cut, so the extract date (as_of) is "
            "unknown; add a manifest.json with as_of"
        )
    return last


def _warnings(
    con: duckdb.DuckDBPyConnection,
    specs: list[FileSpec],
    reports: dict[str, FileReport],
    version: int,
) -> list[str]:
    out = []
    for spec in sorted(specs, key=lambda s: list(reports).index(s.filename)):
        name, r = spec.filename, reports[spec.filename]
        # A column a later contract version added is not missing from an older extract.
        absent = [c for c in r.missing_optional_columns if spec.column(c).since <= version]
        if absent:
            out.append(f"{name}: optional column(s) {', '.join(absent)} absent, kept as empty")
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
