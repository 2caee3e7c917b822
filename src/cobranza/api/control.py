"""The control database: API keys, jobs, webhooks, deliveries and the audit log, in one SQLite file.

It lives at `<lake>/control/control.db` in WAL mode, so readers never wait for the writer and
the job history survives restarts of the service. One connection per thread; write transactions
that must be atomic (the zone conflict check plus the job insert) use `BEGIN IMMEDIATE`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cobranza.lake.fs import private_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    params TEXT NOT NULL,
    zones TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    pid INTEGER,
    returncode INTEGER,
    result TEXT,
    error TEXT,
    created_by TEXT,
    versions_at_start TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE TABLE IF NOT EXISTS webhooks (
    webhook_id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    job_id TEXT,
    event TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at TEXT NOT NULL,
    status_code INTEGER,
    ok INTEGER NOT NULL,
    error TEXT,
    duration_ms REAL,
    PRIMARY KEY (delivery_id, attempt)
);
CREATE INDEX IF NOT EXISTS deliveries_webhook ON deliveries(webhook_id);
CREATE TABLE IF NOT EXISTS outbox (
    delivery_id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    job_id TEXT,
    event TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    done_at TEXT,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(done_at);
CREATE TABLE IF NOT EXISTS audit (
    audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    key_id TEXT,
    key_name TEXT,
    role TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    action TEXT,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    request_id TEXT,
    detail TEXT
);
"""

TERMINAL = ("succeeded", "failed", "cancelled", "interrupted")
ACTIVE = ("queued", "running")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def control_path(lake: Path) -> Path:
    return Path(lake).resolve() / "control" / "control.db"


class ControlDB:
    """Thread-safe access to the control SQLite file (a connection per thread)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        private_dir(self.path.parent)  # key hashes, webhook secrets: owner only
        self._local = threading.local()
        with self.connect() as con:
            con.executescript(SCHEMA)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA busy_timeout=10000")
            self._local.con = con
        return con

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        yield self._con()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction: check-then-insert stays atomic across threads."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self._con().execute(sql, params)

    def one(self, sql: str, params: tuple | dict = ()) -> dict[str, Any] | None:
        row = self._con().execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._con().execute(sql, params).fetchall()]

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
