"""Helpers of the ML tests that read the MLflow store and the registry events directly."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]


CLI = Path(sys.executable).with_name("cobranza")


def registry_events(lake) -> list[dict]:
    folder = lake.metadata_dir / "registry_events"
    return [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def db_rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def versions_in_store(db: Path) -> int | None:
    try:
        return db_rows(db, "SELECT count(*) FROM model_versions")[0][0]
    except sqlite3.Error:
        return None  # busy, or the table does not exist yet
