"""Zones, versions and the pointer switch that makes a publication atomic.

Layout: `<lake>/<zone>/versions/<version>/<table>/*.parquet` plus `<version>/_run.json`, and
`<lake>/<zone>/CURRENT`, a small JSON pointer replaced with `os.replace`. A version is complete only
when its `_run.json` exists; a run that fails or is killed never moves the pointer, so the previous
version stays current and readable. DuckDB's partitioned overwrite and Spark's overwrite mode delete
before they write, which is why every run writes into a folder of its own.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cobranza.errors import CobranzaError

ZONES = ("raw", "silver", "gold", "results")
RUN_FILE = "_run.json"
POINTER = "CURRENT"
# Folders only the lake's owner (the service account) may enter: raw holds the bank's personal data
# (names, documents, e-mails, phones), _tmp the ingest's working database of the same rows, control
# the API's key hashes and webhook secrets. Whoever else opens the catalog (BI, analysts) reads
# silver, gold and results, and gets "permission denied" on raw.
PRIVATE = ("raw", "_tmp", "control")


class LakeError(CobranzaError):
    """A lake problem a person can act on (no published version, unknown table...)."""


def new_run_id() -> str:
    """Sortable by time, unique across processes."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


class WriterLock:
    """`<zone>/versions/.<version>.lock`, held (flock) by the process writing that version.

    Taken before the version folder exists and released only once the version is recorded or
    removed; the OS drops it when the process dies, SIGKILL included. So a folder without
    `_run.json` whose lock nobody holds is an orphan of a dead run, and one whose lock is held is a
    run in progress that retention must not touch.
    """

    def __init__(self, vroot: Path, version: str):
        self.path = lock_path(vroot, version)
        self._fd: int | None = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # before unlocking: no one may take a stale lock file
        os.close(self._fd)
        self._fd = None


def lock_path(vroot: Path, version: str) -> Path:
    return vroot / f".{version}.lock"


def writer_alive(vdir: Path) -> bool | None:
    """Whether a live process holds the writer lock of a version folder (None: no lock file)."""
    path = lock_path(vdir.parent, vdir.name)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if this call took it
    return False


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass
class Publication:
    """A version being written. Tables go in `table_dir(name)`; nothing is visible until commit."""

    lake: Lake
    zone: str
    run_id: str
    dir: Path
    inputs: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    history_tables: set[str] = field(default_factory=set)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: float = 0.0
    lock: WriterLock | None = None

    @property
    def version(self) -> str:
        return self.dir.name

    def table_dir(self, table: str) -> Path:
        path = self.dir / table
        path.mkdir(parents=True, exist_ok=True)
        return path

    def record(self, table: str, rows: int | None = None, **info: Any) -> None:
        self.tables.setdefault(table, {}).update(
            {"rows": rows, **info} if rows is not None else info
        )

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(
                self.timings.get(stage, 0.0) + time.perf_counter() - start, 3
            )


@dataclass
class Transaction:
    """Versions written under `Lake.transaction`, switched together when it ends cleanly."""

    lake: Lake
    run_id: str
    pending: list[Publication] = field(default_factory=list)

    @contextmanager
    def publish(self, zone: str, inputs: dict[str, Any] | None = None) -> Iterator[Publication]:
        if any(p.zone == zone for p in self.pending):
            raise LakeError(f"the {zone} zone is already written in this transaction")
        with self.lake._writing(zone, self.run_id, inputs) as pub:
            self.pending.append(pub)
            yield pub


class Lake:
    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    # ---- layout -------------------------------------------------------------------------------
    def zone_dir(self, zone: str) -> Path:
        if zone not in ZONES:
            raise LakeError(f"unknown zone {zone!r}; zones are {', '.join(ZONES)}")
        return self.root / zone

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"

    @property
    def metadata_dir(self) -> Path:
        path = self.root / "ml_metadata"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ensure(self) -> Lake:
        for zone in ZONES:
            (self.zone_dir(zone) / "versions").mkdir(parents=True, exist_ok=True)
        self.metadata_dir  # noqa: B018 - creates the folder
        for name in PRIVATE:
            private_dir(self.root / name)
        return self

    # ---- reading ------------------------------------------------------------------------------
    def current_version(self, zone: str) -> str | None:
        pointer = self.zone_dir(zone) / POINTER
        if not pointer.exists():
            return None
        return json.loads(pointer.read_text(encoding="utf-8"))["version"]

    def require_version(self, zone: str) -> str:
        version = self.current_version(zone)
        if version is None:
            hint = {
                "raw": "cobranza ingest",
                "silver": "cobranza etl",
                "gold": "cobranza etl",
                "results": "cobranza score",
            }[zone]
            raise LakeError(
                f"the {zone} zone of {self.root} has no published version yet; run `{hint}` first"
            )
        return version

    def version_dir(self, zone: str, version: str | None = None) -> Path:
        version = version or self.require_version(zone)
        return self.zone_dir(zone) / "versions" / version

    def run_info(self, zone: str, version: str | None = None) -> dict[str, Any]:
        return json.loads((self.version_dir(zone, version) / RUN_FILE).read_text(encoding="utf-8"))

    def table_dir(self, zone: str, table: str, version: str | None = None) -> Path:
        path = self.version_dir(zone, version) / table
        if not path.is_dir():
            raise LakeError(f"{zone}.{table} does not exist in version {path.parent.name}")
        return path

    def table_glob(self, zone: str, table: str, version: str | None = None) -> str:
        """Glob of the table's Parquet files, for `read_parquet` in DuckDB, Ibis or Spark."""
        return str(self.table_dir(zone, table, version) / "**" / "*.parquet")

    def tables(self, zone: str, version: str | None = None) -> list[str]:
        vdir = self.version_dir(zone, version)
        return sorted(
            p.name for p in vdir.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
        )

    def versions(self, zone: str) -> list[dict[str, Any]]:
        """Completed versions, oldest first; folders without `_run.json` are failed or killed runs."""
        vroot = self.zone_dir(zone) / "versions"
        if not vroot.exists():
            return []
        out = []
        for vdir in sorted(vroot.iterdir()):
            run_file = vdir / RUN_FILE
            if run_file.exists():
                out.append(json.loads(run_file.read_text(encoding="utf-8")))
        return out

    # ---- writing ------------------------------------------------------------------------------
    @contextmanager
    def publish(
        self,
        zone: str,
        run_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        refresh: bool = True,
    ) -> Iterator[Publication]:
        """Write a new version of a zone; on clean exit record it and switch the pointer atomically."""
        with self._writing(zone, run_id, inputs) as pub:
            yield pub
        try:
            self._commit(pub, pub.started_at, pub.seconds)
        finally:
            pub.lock.release()
        if refresh:
            from cobranza.lake.catalog import refresh_catalog

            refresh_catalog(self)

    @contextmanager
    def transaction(self, run_id: str | None = None) -> Iterator[Transaction]:
        """Versions of several zones that become current together, or not at all.

        `tx.publish(zone)` writes a version as `publish` does but does not switch its pointer: on
        clean exit of the transaction every version is recorded first, then the pointers switch
        one after the other (milliseconds apart); on any failure every version written is removed
        and no pointer moves. A run that builds silver and then gold from it uses this, so gold
        failing cannot leave a new silver current beside the old gold.
        """
        tx = Transaction(self, run_id or new_run_id())
        try:
            try:
                yield tx
            except BaseException:
                for pub in tx.pending:
                    shutil.rmtree(pub.dir, ignore_errors=True)
                raise
            records = [self._record(pub, pub.started_at, pub.seconds) for pub in tx.pending]
            for pub, record in zip(tx.pending, records, strict=True):
                self._switch(pub, record)
        finally:
            for pub in tx.pending:  # held until every version of the transaction is recorded
                pub.lock.release()
        if tx.pending:
            from cobranza.lake.catalog import refresh_catalog

            refresh_catalog(self)

    @contextmanager
    def _writing(
        self, zone: str, run_id: str | None, inputs: dict[str, Any] | None
    ) -> Iterator[Publication]:
        """A new version folder, removed if the block fails."""
        run_id = run_id or new_run_id()
        vroot = self.zone_dir(zone) / "versions"
        vroot.mkdir(parents=True, exist_ok=True)
        version = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{run_id[-8:]}"
        lock = WriterLock(vroot, version)  # before the folder exists: it is never seen unlocked
        pub = Publication(self, zone, run_id, vroot / version, inputs=dict(inputs or {}), lock=lock)
        try:
            pub.dir.mkdir()
            pub.started_at = datetime.now(UTC)
            t0 = time.perf_counter()
            yield pub
        except BaseException:
            shutil.rmtree(pub.dir, ignore_errors=True)
            lock.release()
            raise
        pub.seconds = time.perf_counter() - t0  # the caller releases the lock once recorded

    def _commit(self, pub: Publication, started: datetime, seconds: float) -> None:
        self._switch(pub, self._record(pub, started, seconds))

    def _record(self, pub: Publication, started: datetime, seconds: float) -> dict[str, Any]:
        """Write the version's `_run.json`: from here on the version is complete."""
        for tdir in sorted(pub.dir.iterdir()):
            if tdir.is_dir() and not tdir.name.startswith(("_", ".")):
                pub.tables.setdefault(tdir.name, {})
        for table in pub.tables:
            if pub.tables[table].get("rows") is None:
                pub.tables[table]["rows"] = count_parquet_rows(pub.dir / table)
        record = {
            "zone": pub.zone,
            "version": pub.version,
            "run_id": pub.run_id,
            "previous_version": self.current_version(pub.zone),
            "started_at": started.isoformat(),
            "published_at": datetime.now(UTC).isoformat(),
            "seconds": round(seconds, 3),
            "inputs": pub.inputs,
            "tables": pub.tables,
            "timings": pub.timings,
            "history_tables": sorted(pub.history_tables),
            **pub.meta,
        }
        _write_json_atomic(pub.dir / RUN_FILE, record)
        return record

    def _switch(self, pub: Publication, record: dict[str, Any]) -> None:
        _write_json_atomic(
            self.zone_dir(pub.zone) / POINTER,
            {"version": pub.version, "run_id": pub.run_id, "published_at": record["published_at"]},
        )

    def write_metadata(self, table: str, rows: list[dict[str, Any]], name: str) -> Path:
        """One Parquet file `ml_metadata/<table>/<name>.parquet`, written atomically.

        Each run or event adds a file of its own, so the tables are append-only histories; the
        catalog turns every folder of ml_metadata into a view (after `refresh_catalog`).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.metadata_dir / table
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.parquet"
        tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(pa.Table.from_pylist(rows), tmp)
        os.replace(tmp, path)
        return path

    def incomplete(self, zone: str) -> list[tuple[Path, bool | None]]:
        """Version folders without `_run.json`, each with `writer_alive` (True: a run in progress)."""
        vroot = self.zone_dir(zone) / "versions"
        if not vroot.exists():
            return []
        return [
            (vdir, writer_alive(vdir))
            for vdir in sorted(vroot.iterdir())
            if vdir.is_dir() and not vdir.name.startswith(".") and not (vdir / RUN_FILE).exists()
        ]

    def clean_orphans(self, min_age_seconds: float = 3600.0) -> list[Path]:
        """Remove version folders left by dead runs; never a complete one or one being written.

        A folder whose writer lock is free is an orphan at once. One without a lock file (left by
        an older cobranza) counts as an orphan only when untouched for `min_age_seconds`.
        """
        removed = []
        for zone in ZONES:
            for vdir, alive in self.incomplete(zone):
                if alive:
                    continue
                if alive is None and time.time() - vdir.stat().st_mtime < min_age_seconds:
                    continue
                if (vdir / RUN_FILE).exists():  # its writer recorded it while we looked
                    continue
                shutil.rmtree(vdir, ignore_errors=True)
                lock_path(vdir.parent, vdir.name).unlink(missing_ok=True)
                removed.append(vdir)
        return removed


def private_dir(path: Path) -> Path:
    """Create `path` if needed and make it owner-only (0700), whatever the umask."""
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)
    return path


def count_parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    files = sorted(path.rglob("*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
