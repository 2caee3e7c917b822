"""Zones, versions and the pointer switch that makes a publication atomic.

Layout (`layout.py`): `<lake>/<zone>/versions/<version>/<table>/*.parquet` plus
`<version>/_run.json`, and `<lake>/<zone>/CURRENT`, a small JSON pointer replaced with
`os.replace`. A version is complete only when its `_run.json` exists; a run that fails or is killed
never moves the pointer, so the previous version stays current and readable. DuckDB's partitioned
overwrite and Spark's overwrite mode delete before they write, which is why every run writes into a
folder of its own.

Records are written and pointers switched under `<lake>/.commit.lock` (exclusive flock, held for a
few file operations). A transaction of several zones (silver + gold) first writes a redo journal
(`journal.py`): once it exists the transaction is decided, and if its process dies before switching
every pointer, the next use of the lake (`Lake.ensure`, any publication) completes it, so the
versions become current together. Commands reading versions hold `<lake>/.lake.lock` shared
(`Lake.in_use`); prune takes it exclusively, so it never removes a version a running command reads.

After every commit, `Lake` calls the after-commit callback installed with `set_after_commit`
(`cobranza.lake` installs the catalog refresh), so this module knows nothing of the catalog.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cobranza.errors import first_line
from cobranza.lake import journal, locks
from cobranza.lake.fs import (
    count_parquet_rows,
    flock,
    fsync_tree,
    private_dir,
    unlink_durable,
    write_json_atomic,
)
from cobranza.lake.layout import (
    CATALOG,
    COMMIT_LOCK,
    METADATA,
    POINTER,
    PRIVATE,
    RUN_FILE,
    TMP,
    ZONES,
    LakeError,
    is_version_name,
    journal_path,
    new_run_id,
    new_version_name,
    pointed_version,
    versions_dir,
    zone_dir,
)
from cobranza.lake.locks import WorkDir, WriterLock, clean_work_dirs
from cobranza.stages import publisher

log = logging.getLogger(__name__)

AfterCommit = Callable[["Lake", bool], object]
# The callback run after every commit (and, with recovered=True, after a dead run's journal was
# rolled forward); empty until `set_after_commit`.
_AFTER_COMMIT: list[AfterCommit] = []


def set_after_commit(callback: AfterCommit) -> None:
    """Install what runs after every commit: `callback(lake, recovered)`, returning whether it
    refreshed what it keeps (the catalog's views)."""
    _AFTER_COMMIT[:] = [callback]


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
    """One lake folder: its zones' pointers and versions, publishing, and the leftovers of dead runs.

    Versions are read through the pointers (`require_version`, `version_dir`, `run_info`...) and
    written through `publish` (one zone) or `transaction` (several, switched together); every
    commit runs the after-commit callback (the catalog refresh, installed by `cobranza.lake`).
    """

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    # ---- layout -------------------------------------------------------------------------------
    def zone_dir(self, zone: str) -> Path:
        return zone_dir(self.root, zone)

    @property
    def catalog_path(self) -> Path:
        return self.root / CATALOG

    @property
    def journal_path(self) -> Path:
        return journal_path(self.root)

    @property
    def metadata_dir(self) -> Path:
        path = self.root / METADATA
        path.mkdir(parents=True, exist_ok=True)
        return path

    def ensure(self) -> Lake:
        """Create the layout, and complete a transaction whose process died while switching."""
        for zone in ZONES:
            versions_dir(self.root, zone).mkdir(parents=True, exist_ok=True)
        self.metadata_dir  # noqa: B018 - creates the folder
        for name in PRIVATE:
            private_dir(self.root / name)
        self.recover()
        return self

    # ---- locks and recovery -------------------------------------------------------------------
    def in_use(self, on_wait: Callable[[], object] | None = None) -> AbstractContextManager[None]:
        """The lake's in-use lock, shared (see `locks.in_use`)."""
        return locks.in_use(self.root, on_wait)

    def exclusive(self, refusal: str) -> AbstractContextManager[None]:
        """The lake's in-use lock held exclusively, or a LakeError ending with `refusal`."""
        return locks.exclusive(self.root, refusal)

    @contextmanager
    def committing(self) -> Iterator[None]:
        """The commit lock, after completing any transaction a dead process left decided."""
        with flock(self.root / COMMIT_LOCK, fcntl.LOCK_EX):
            journal.roll_forward(self.root)
            yield

    def recover(self) -> list[str]:
        """Complete the transaction of a process that died after writing its journal.

        One `stat` when there is no journal, which is always but after such a death.
        """
        if not self.journal_path.exists():
            return []
        if not os.access(self.root, os.W_OK):
            log.warning(
                "%s: a publication was interrupted and cannot be completed on a lake this account "
                "cannot write; run any cobranza command as the lake's owner to complete it",
                self.journal_path,
            )
            return []
        with flock(self.root / COMMIT_LOCK, fcntl.LOCK_EX):
            done = journal.roll_forward(self.root)
        if done:  # the dead process never ran the after-commit callback
            self.after_commit(recovered=True)
        return done

    def after_commit(self, recovered: bool = False) -> bool:
        """Run the after-commit callback (the catalog refresh); whether it refreshed."""
        return bool(_AFTER_COMMIT[0](self, recovered)) if _AFTER_COMMIT else False

    def _points_at(self, zone: str, version: str) -> bool:
        return pointed_version(self.root, zone) == version

    def journal_versions(self) -> dict[str, set[str]]:
        """zone -> versions named by a journal not completed yet (read tolerantly)."""
        return journal.versions(self.root)

    # ---- reading ------------------------------------------------------------------------------
    def _fix(self, zone: str) -> str:
        return (
            f"run `cobranza lake versions --zone {zone}` to see its complete versions and "
            f"`cobranza lake use {zone} VERSION` to point it at one, or `{publisher(zone)}` to "
            "publish a new one"
        )

    def pointer(self, zone: str) -> dict[str, Any] | None:
        """The zone's CURRENT pointer, None when nothing was published; LakeError when broken."""
        path = self.zone_dir(zone) / POINTER
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (UnicodeDecodeError, IsADirectoryError) as exc:
            raise self._broken_pointer(zone, path, first_line(exc)) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise self._broken_pointer(zone, path, first_line(exc)) from None
        if not isinstance(data, dict) or not is_version_name(data.get("version")):
            raise self._broken_pointer(zone, path, "no version name in it")
        return data

    def _broken_pointer(self, zone: str, path: Path, detail: str) -> LakeError:
        return LakeError(
            f"{path} is broken ({detail}), so the {zone} zone has no readable current version; "
            + self._fix(zone)
        )

    def current_version(self, zone: str) -> str | None:
        data = self.pointer(zone)
        return None if data is None else data["version"]

    def require_version(self, zone: str) -> str:
        """The current version of a zone, for reading it: LakeError when there is none, or when
        the pointer, the version's folder or its `_run.json` is broken or missing (naming it)."""
        version = self.current_version(zone)
        if version is None:
            raise LakeError(
                f"the {zone} zone of {self.root} has no published version yet; run "
                f"`{publisher(zone)}` first"
            )
        if not (self.zone_dir(zone) / "versions" / version / RUN_FILE).exists():
            self._read_record(zone, version)  # raises, naming what is missing
        return version

    def version_dir(self, zone: str, version: str | None = None) -> Path:
        version = version or self.require_version(zone)
        return self.zone_dir(zone) / "versions" / version

    def run_info(self, zone: str, version: str | None = None) -> dict[str, Any]:
        version = version or self.require_version(zone)
        return self._read_record(zone, version)

    def _read_record(self, zone: str, version: str) -> dict[str, Any]:
        path = self.zone_dir(zone) / "versions" / version / RUN_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = self._points_at(zone, version)
            what = (
                f"{path} is missing"
                if path.parent.is_dir()
                else f"the folder {path.parent} is missing"
            )
            if current:
                raise LakeError(
                    f"{what}: the current {zone} version {version} has no record (it was deleted "
                    "or lost); " + self._fix(zone)
                ) from None
            raise LakeError(
                f"{what}: {zone} version {version} is not a complete version; "
                f"`cobranza lake versions --zone {zone}` lists the complete ones"
            ) from None
        except UnicodeDecodeError as exc:
            raise self._broken_record(zone, version, path, first_line(exc)) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise self._broken_record(zone, version, path, first_line(exc)) from None
        if not isinstance(data, dict):
            raise self._broken_record(zone, version, path, "not a JSON object")
        return data

    def _broken_record(self, zone: str, version: str, path: Path, detail: str) -> LakeError:
        fix = (
            self._fix(zone)
            if self._points_at(zone, version)
            else f"restore it from a backup or move the folder {path.parent} out of the lake"
        )
        return LakeError(
            f"{path} is broken ({detail}): {zone} version {version} cannot be read; {fix}"
        )

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
        if not vdir.is_dir():
            fix = self._fix(zone) if self._points_at(zone, vdir.name) else "it was removed"
            raise LakeError(f"the folder {vdir} of {zone} version {vdir.name} is missing; {fix}")
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
            if not vdir.name.startswith(".") and (vdir / RUN_FILE).exists():
                out.append(self._read_record(zone, vdir.name))
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
            with self.committing():
                try:
                    record = self._make_record(pub, self.current_version(zone))
                    write_json_atomic(pub.dir / RUN_FILE, record)
                    write_json_atomic(self.zone_dir(zone) / POINTER, self._pointer_for(pub, record))
                except BaseException:
                    if not self._points_at(zone, pub.version):  # not published: leave no trace
                        (pub.dir / RUN_FILE).unlink(missing_ok=True)
                        shutil.rmtree(pub.dir, ignore_errors=True)
                    raise
        finally:
            pub.lock.release()
        if refresh:
            self.after_commit()

    @contextmanager
    def transaction(self, run_id: str | None = None) -> Iterator[Transaction]:
        """Versions of several zones that become current together, or not at all.

        `tx.publish(zone)` writes a version as `publish` does but does not switch its pointer. On
        clean exit, under the commit lock: every version's record is computed and the journal
        `<lake>/.transaction.json` written (atomically) with all of them; then the records, then
        the pointers (microseconds apart), then the journal is deleted. A failure before the
        journal exists removes every version written; a failure after it sets the pointers back
        and removes them too. A process killed after the journal exists is completed by the next
        use of the lake (`recover`), so the versions still become current together. A run that
        builds silver and then gold from it uses this, so gold failing, or the run dying, cannot
        leave a new silver current beside the old gold.
        """
        tx = Transaction(self, run_id or new_run_id())
        try:
            try:
                yield tx
            except BaseException:
                for pub in tx.pending:
                    shutil.rmtree(pub.dir, ignore_errors=True)
                raise
            if tx.pending:
                self._commit_all(tx.pending)
        finally:
            for pub in tx.pending:  # held until every version of the transaction is recorded
                pub.lock.release()
        if tx.pending:
            self.after_commit()

    def _commit_all(self, pubs: list[Publication]) -> None:
        with self.committing():
            try:
                entries = []
                for pub in pubs:
                    previous = self.pointer(pub.zone)
                    record = self._make_record(pub, previous and previous["version"])
                    entries.append(
                        {
                            "zone": pub.zone,
                            "version": pub.version,
                            "record": record,
                            "pointer": self._pointer_for(pub, record),
                            "previous_pointer": previous,
                        }
                    )
            except BaseException:
                for pub in pubs:  # nothing was decided: no version of the run stays
                    shutil.rmtree(pub.dir, ignore_errors=True)
                raise
            try:
                journal.write(self.root, pubs[0].run_id, entries)
            except BaseException:
                # the rename may have happened (an error or Ctrl-C in the folder's fsync): a
                # journal in place names these folders, so it goes (durably) before they do
                if self.journal_path.exists():
                    journal.undo(self.root, entries)
                else:
                    for pub in pubs:
                        shutil.rmtree(pub.dir, ignore_errors=True)
                raise
            try:
                journal.apply(self.root, entries)
                unlink_durable(self.journal_path)
            except BaseException:
                try:
                    journal.undo(self.root, entries)
                except Exception as exc:  # the journal stays: the next use completes the run
                    log.warning(
                        "could not undo the interrupted publication of run %s (%s); the next "
                        "cobranza command will complete it from %s",
                        pubs[0].run_id,
                        first_line(exc),
                        self.journal_path,
                    )
                raise

    @contextmanager
    def _writing(
        self, zone: str, run_id: str | None, inputs: dict[str, Any] | None
    ) -> Iterator[Publication]:
        """A new version folder, removed if the block fails."""
        run_id = run_id or new_run_id()
        vroot = self.zone_dir(zone) / "versions"
        vroot.mkdir(parents=True, exist_ok=True)
        version = new_version_name(run_id)
        lock = WriterLock(vroot, version)  # before the folder exists: it is never seen unlocked
        pub = Publication(self, zone, run_id, vroot / version, inputs=dict(inputs or {}), lock=lock)
        try:
            pub.dir.mkdir()
            pub.started_at = datetime.now(UTC)
            t0 = time.perf_counter()
            yield pub
            fsync_tree(pub.dir)  # on disk before a record or a journal names the version
        except BaseException:
            shutil.rmtree(pub.dir, ignore_errors=True)
            lock.release()
            raise
        pub.seconds = time.perf_counter() - t0  # the caller releases the lock once recorded

    def _make_record(self, pub: Publication, previous: str | None) -> dict[str, Any]:
        """The version's `_run.json`; `previous` is the zone's current version, read with the
        commit lock held so that it is exact."""
        for tdir in sorted(pub.dir.iterdir()):
            if tdir.is_dir() and not tdir.name.startswith(("_", ".")):
                pub.tables.setdefault(tdir.name, {})
        for table in pub.tables:
            if pub.tables[table].get("rows") is None:
                pub.tables[table]["rows"] = count_parquet_rows(pub.dir / table)
        return {
            "zone": pub.zone,
            "version": pub.version,
            "run_id": pub.run_id,
            "previous_version": previous,
            "started_at": pub.started_at.isoformat(),
            "published_at": datetime.now(UTC).isoformat(),
            "seconds": round(pub.seconds, 3),
            "inputs": pub.inputs,
            "tables": pub.tables,
            "timings": pub.timings,
            "history_tables": sorted(pub.history_tables),
            **pub.meta,
        }

    @staticmethod
    def _pointer_for(pub: Publication, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": pub.version,
            "run_id": pub.run_id,
            "published_at": record["published_at"],
        }

    def write_metadata(self, table: str, rows: list[dict[str, Any]], name: str) -> Path:
        """One Parquet file `ml_metadata/<table>/<name>.parquet`, written atomically.

        Each run or event adds a file of its own, so the tables are append-only histories; the
        catalog turns every folder of ml_metadata into a view (after `refresh_catalog`).
        """
        folder = self.metadata_dir / table
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.parquet"
        tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
        pq.write_table(pa.Table.from_pylist(rows), tmp)
        os.replace(tmp, path)
        return path

    # ---- working folders ----------------------------------------------------------------------
    def work_dir(self, name: str) -> WorkDir:
        """A locked working folder `<lake>/_tmp/<name>/` (owner-only); `close()` removes it.

        Folders of dead runs are removed first, so a killed run's spill never outlives the next.
        """
        root = private_dir(self.root / TMP)
        self.clean_tmp()
        return WorkDir(root, name)

    def clean_tmp(self, min_age_seconds: float = 3600.0) -> list[Path]:
        """Remove the working folders of `<lake>/_tmp/` whose owner is dead (`locks.clean_work_dirs`)."""
        return clean_work_dirs(self.root / TMP, min_age_seconds)
