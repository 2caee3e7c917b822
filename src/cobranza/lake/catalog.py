"""The DuckDB catalog file: schemas raw, silver, gold, results and ml_metadata as views over Parquet.

Any DuckDB client (DBeaver, Power BI through ODBC, the duckdb CLI) opens `<lake>/catalog.duckdb` and
queries `gold.obligation_snapshots` directly. The pointers are the truth: the catalog is rebuilt from
them after each publication, and `cobranza catalog` rebuilds it by hand. DuckDB allows one writer per
file, so a refresh that finds the file locked (a BI tool holding it) retries, then leaves the
catalog as it was and says so; it never fails a publication that already happened.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from cobranza.lake.store import Lake

log = logging.getLogger(__name__)
SCHEMAS = ("raw", "silver", "gold", "results", "ml_metadata")


def _q(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def catalog_statements(lake: Lake) -> list[str]:
    from cobranza.lake.store import ZONES

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
        for table in lake.tables(zone, current):
            if table in history:
                dirs = [
                    lake.version_dir(zone, v["version"]) / table
                    for v in versions
                    if table in v.get("history_tables", [])
                ]
                globs = ", ".join(_q(d / "**" / "*.parquet") for d in dirs if d.is_dir())
                src = f"read_parquet([{globs}], union_by_name=true)"
            else:
                src = f"read_parquet({_q(lake.table_glob(zone, table, current))})"
            stmts.append(f'CREATE OR REPLACE VIEW {zone}."{table}" AS SELECT * FROM {src}')
    if run_files:
        files = ", ".join(_q(f) for f in run_files)
        stmts.append(
            "CREATE OR REPLACE VIEW ml_metadata.lake_runs AS SELECT zone, version, run_id, "
            "previous_version, started_at, published_at, seconds, inputs, tables, timings, "
            # the column exists in the JSON only once some version was pruned
            f"{'pruned_at' if any_pruned else 'NULL::VARCHAR AS pruned_at'} "
            f"FROM read_json([{files}], union_by_name=true, format='auto')"
        )
    for pq_dir in sorted(p for p in lake.metadata_dir.iterdir() if p.is_dir()):
        if any(pq_dir.rglob("*.parquet")):
            stmts.append(
                f'CREATE OR REPLACE VIEW ml_metadata."{pq_dir.name}" AS SELECT * FROM '
                f"read_parquet({_q(pq_dir / '**' / '*.parquet')}, union_by_name=true)"
            )
    from cobranza.lake.bi import bi_statements  # BI star schema over the views above

    return stmts + bi_statements(lake)


def refresh_catalog(lake: Lake, attempts: int = 5) -> bool:
    """Rebuild the catalog's views from the current pointers. True when the catalog was written."""
    stmts = catalog_statements(lake)
    for attempt in range(attempts):
        try:
            con = duckdb.connect(str(lake.catalog_path))
        except duckdb.IOException:
            time.sleep(0.2 * (attempt + 1))
            continue
        try:
            con.execute("BEGIN TRANSACTION")
            for stmt in stmts:
                if stmt.startswith("__DROP_VIEWS__"):
                    schema = stmt.split()[1]
                    for (name,) in con.execute(
                        "SELECT view_name FROM duckdb_views() WHERE schema_name = ? AND NOT internal",
                        [schema],
                    ).fetchall():
                        con.execute(f'DROP VIEW IF EXISTS {schema}."{name}"')
                else:
                    con.execute(stmt)
            con.execute("COMMIT")
            return True
        finally:
            con.close()
    log.warning("catalog %s is locked by another process; views not refreshed", lake.catalog_path)
    return False
