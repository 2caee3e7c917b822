"""The DuckDB catalog file: schemas raw, silver, gold, results and ml_metadata as views over Parquet.

Any DuckDB client (DBeaver, Power BI through ODBC, the duckdb CLI) opens `<lake>/catalog.duckdb` and
queries `gold.obligation_snapshots` directly. The pointers are the truth: the catalog is rebuilt from
them after each publication, and `cobranza catalog` rebuilds it by hand. DuckDB allows one writer per
file and no writer beside a reader, so a refresh that finds the file held (a BI tool with it open,
even read-only) retries, then leaves the catalog as it was and says so; it never fails a
publication that already happened.

Every successful refresh records in `<lake>/catalog.versions.json` which versions the views read.
A failed one marks that record stale and keeps its versions: prune keeps them too (the views of a
stale catalog still read them), and the next command that can refreshes the catalog.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cobranza.errors import first_line
from cobranza.lake.bi import bi_statements
from cobranza.lake.fs import flock, write_json_atomic
from cobranza.lake.layout import ZONES, LakeError
from cobranza.lake.store import Lake
from cobranza.sql import literal

log = logging.getLogger(__name__)
SCHEMAS = ("raw", "silver", "gold", "results", "ml_metadata")
LAKE_RUNS_FILE = "lake_runs.parquet"  # in the metadata area; written at each refresh
RECORD = "catalog.versions.json"
LOCK = ".catalog.lock"  # one refresh at a time: the record always describes the views


def catalog_statements(lake: Lake, read: dict[str, set[str]] | None = None) -> list[str]:
    """The catalog's statements; `read` collects zone -> versions the views read."""
    read = {} if read is None else read

    stmts = [f"CREATE SCHEMA IF NOT EXISTS {s}" for s in SCHEMAS]
    for schema in SCHEMAS:
        stmts.append(f"__DROP_VIEWS__ {schema}")
    run_files: list[str] = []
    any_pruned = False
    for zone in ZONES:
        versions = lake.versions(zone)
        any_pruned = any_pruned or any(v.get("pruned_at") for v in versions)
        run_files += [str(lake.version_dir(zone, v["version"]) / "_run.json") for v in versions]
        current = lake.current_version(zone)
        if current is None:
            continue
        info = lake.run_info(zone, current)
        history = set(info.get("history_tables", []))
        read.setdefault(zone, set()).add(current)
        for table in lake.tables(zone, current):
            if table in history:
                dirs = [
                    (v["version"], lake.version_dir(zone, v["version"]) / table)
                    for v in versions
                    if table in v.get("history_tables", [])
                ]
                dirs = [(v, d) for v, d in dirs if d.is_dir()]
                read[zone].update(v for v, _ in dirs)
                globs = ", ".join(literal(d / "**" / "*.parquet") for _, d in dirs)
                src = f"read_parquet([{globs}], union_by_name=true)"
            else:
                src = f"read_parquet({literal(lake.table_glob(zone, table, current))})"
            stmts.append(f'CREATE OR REPLACE VIEW {zone}."{table}" AS SELECT * FROM {src}')
    if run_files:
        # The runs of every zone, raw's included, copied at refresh into a Parquet file of the
        # metadata area: the view then reads no zone's folder, so an account that may not read
        # <lake>/raw (a BI account) can still list them.
        files = ", ".join(literal(f) for f in run_files)
        snapshot = literal(lake.metadata_dir / LAKE_RUNS_FILE)
        stmts.append(
            "COPY (SELECT zone, version, run_id, "
            "previous_version, started_at, published_at, seconds, inputs, tables, timings, "
            # the column exists in the JSON only once some version was pruned
            f"{'pruned_at' if any_pruned else 'NULL::VARCHAR AS pruned_at'} "
            f"FROM read_json([{files}], union_by_name=true, format='auto')) "
            f"TO {snapshot} (FORMAT parquet)"
        )
        stmts.append(
            f"CREATE OR REPLACE VIEW ml_metadata.lake_runs AS SELECT * FROM read_parquet({snapshot})"
        )
    for pq_dir in sorted(p for p in lake.metadata_dir.iterdir() if p.is_dir()):
        if any(pq_dir.rglob("*.parquet")):
            stmts.append(
                f'CREATE OR REPLACE VIEW ml_metadata."{pq_dir.name}" AS SELECT * FROM '
                f"read_parquet({literal(pq_dir / '**' / '*.parquet')}, union_by_name=true)"
            )
    return stmts + bi_statements(lake)  # the BI star schema over the views above


def record_path(lake: Lake) -> Path:
    return lake.root / RECORD


def catalog_record(lake: Lake) -> dict[str, Any] | None:
    """What the last successful refresh recorded (None: no record, or unreadable)."""
    try:
        data = json.loads(record_path(lake).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("versions"), dict) else None


def catalog_versions(lake: Lake) -> dict[str, set[str]] | None:
    """zone -> versions the catalog's views read; None when no refresh recorded them."""
    record = catalog_record(lake)
    if record is None:
        return None
    return {zone: set(vs or []) for zone, vs in record["versions"].items()}


def catalog_stale(lake: Lake) -> bool:
    """Whether the views may not show the current versions (a refresh failed or never ran)."""
    try:
        current = {zone: lake.current_version(zone) for zone in ZONES}
    except LakeError:
        return False  # the command itself says what is broken
    if not lake.catalog_path.exists():
        return any(current.values())
    record = catalog_record(lake)
    if record is None or record.get("stale"):
        return True
    return any((record.get("current") or {}).get(z) != v for z, v in current.items())


def refresh_if_stale(lake: Lake, attempts: int = 1) -> bool | None:
    """Refresh a stale catalog (None when it was not stale); never raises."""
    if not catalog_stale(lake):
        return None
    try:
        return refresh_catalog(lake, attempts=attempts)
    except Exception as exc:  # never fail a command over the catalog: the warning says it all
        log.warning("catalog %s not refreshed: %s", lake.catalog_path, first_line(exc))
        return False


def _shown(record: dict[str, Any] | None) -> str:
    if not record:
        return "the previous versions"
    current = record.get("current") or {}
    listed = ", ".join(f"{z} {v}" for z, v in current.items() if v)
    return f"the previous versions ({listed})" if listed else "the previous versions"


def _write_record(lake: Lake, read: dict[str, set[str]], current: dict[str, str | None]) -> None:
    write_json_atomic(
        record_path(lake),
        {
            "refreshed_at": datetime.now(UTC).isoformat(),
            "stale": False,
            "current": current,
            "versions": {zone: sorted(vs) for zone, vs in sorted(read.items())},
        },
    )


def _mark_stale(lake: Lake, why: str) -> None:
    """Keep the versions the views still read, and say the views are behind the pointers."""
    record = catalog_record(lake)
    if record is None:
        return  # nothing recorded: prune refuses while it cannot tell what the views read
    record.update(
        stale=True, stale_since=record.get("stale_since") or datetime.now(UTC).isoformat()
    )
    record["stale_reason"] = why
    with contextlib.suppress(OSError):
        write_json_atomic(record_path(lake), record)


def _writable(lake: Lake) -> bool:
    if not os.access(lake.root, os.W_OK):
        return False
    return not lake.catalog_path.exists() or os.access(lake.catalog_path, os.W_OK)


def refresh_catalog(lake: Lake, attempts: int = 5, strict: bool = False) -> bool:
    """Rebuild the catalog's views from the current pointers. True when the catalog was written.

    After a publication (`strict=False`) a catalog that cannot be written is a warning, never an
    error: the publication happened. `cobranza catalog` passes `strict=True`: then a lake this
    account cannot write, a catalog held by another client or a broken pointer is a LakeError.
    """
    if not _writable(lake):
        msg = (
            f"the lake {lake.root} is read-only (a read-only file system, or no write permission "
            f"for this account): {lake.catalog_path} cannot be written, so its views were not "
            "refreshed; run `cobranza catalog` where the lake can be written"
        )
        if strict:
            raise LakeError(msg)
        log.warning(msg)
        return False
    with flock(lake.root / LOCK, fcntl.LOCK_EX):
        read: dict[str, set[str]] = {}
        try:
            current = {zone: lake.current_version(zone) for zone in ZONES}
            stmts = catalog_statements(lake, read)
        except Exception as exc:  # a broken pointer or record, an unreadable Parquet footer...
            if strict:
                raise
            _mark_stale(lake, first_line(exc))
            log.warning("catalog %s not refreshed: %s", lake.catalog_path, first_line(exc))
            return False
        error: Exception | None = None
        for attempt in range(attempts):
            try:
                con = duckdb.connect(str(lake.catalog_path))
            except duckdb.IOException as exc:
                error = exc
                if "lock" not in str(exc).lower():
                    break  # not another client: retrying will not help
                time.sleep(0.2 * (attempt + 1))
                continue
            try:
                con.execute("BEGIN TRANSACTION")
                for stmt in stmts:
                    if stmt.startswith("__DROP_VIEWS__"):
                        schema = stmt.split()[1]
                        for (name,) in con.execute(
                            "SELECT view_name FROM duckdb_views() "
                            "WHERE schema_name = ? AND NOT internal",
                            [schema],
                        ).fetchall():
                            con.execute(f'DROP VIEW IF EXISTS {schema}."{name}"')
                    else:
                        con.execute(stmt)
                con.execute("COMMIT")
            except duckdb.Error as exc:
                error = exc
                break
            finally:
                con.close()
            try:
                _write_record(lake, read, current)
            except OSError as exc:
                if strict:
                    raise
                log.warning("catalog %s: could not record its versions: %s", lake.root, exc)
            return True
        held = error is not None and "lock" in str(error).lower()
        _mark_stale(lake, first_line(error) if error else "not refreshed")
        shown = _shown(catalog_record(lake))
        if held:
            msg = (
                f"catalog {lake.catalog_path} is held open by another DuckDB client (a BI tool, "
                f"DBeaver or a duckdb shell, even read-only), so its views still show {shown}; "
                "run `cobranza catalog` once that client has closed it (the next cobranza "
                "command that can will also refresh it)"
            )
            if strict:
                raise LakeError(msg)
            log.warning(msg)
            return False
        if strict and error is not None:
            raise error
        log.warning(
            "catalog %s not refreshed (%s); its views still show %s; run `cobranza catalog` "
            "to rebuild it",
            lake.catalog_path,
            first_line(error) if error else "unknown error",
            shown,
        )
        return False


def after_commit(lake: Lake, recovered: bool) -> bool:
    """What the lake runs after a commit: the views follow the pointers. After completing a dead
    run's journal only a stale catalog is refreshed (and never with an error)."""
    if recovered:
        return bool(refresh_if_stale(lake))
    return refresh_catalog(lake)
