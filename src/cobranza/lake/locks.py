"""The lake's locks: who writes a version, who owns a working folder, who uses the lake.

- writer lock `<zone>/versions/.<version>.lock`: held by the process writing that version, from
  before its folder exists until it is recorded or removed. A folder without `_run.json` whose
  lock is free is the orphan of a dead run; one whose lock is held is a run in progress.
- working folder lock `<lake>/_tmp/.<name>.lock`: held by the owner of `_tmp/<name>/` (DuckDB
  spill, staging); a folder whose lock is free belongs to a dead run.
- in-use lock `<lake>/.lake.lock`: shared by every command reading versions, exclusive for prune.

All are flocks: the operating system drops them when the process dies, SIGKILL included.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cobranza.lake.fs import drop_dead_lock, lock_alive, take_lock
from cobranza.lake.layout import IN_USE_LOCK, LakeError


def lock_path(vroot: Path, version: str) -> Path:
    """The writer lock of a version, beside its folder in `<zone>/versions/`."""
    return vroot / f".{version}.lock"


def writer_alive(vdir: Path) -> bool | None:
    """Whether a live process holds the writer lock of a version folder (None: no lock file)."""
    return lock_alive(lock_path(vdir.parent, vdir.name))


class WriterLock:
    """`<zone>/versions/.<version>.lock`, held (flock) by the process writing that version.

    Taken before the version folder exists and released only once the version is recorded or
    removed; the OS drops it when the process dies, SIGKILL included. So a folder without
    `_run.json` whose lock nobody holds is an orphan of a dead run, and one whose lock is held is a
    run in progress that retention must not touch.
    """

    def __init__(self, vroot: Path, version: str):
        self.path = lock_path(vroot, version)
        self._fd: int | None = take_lock(self.path)

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # before unlocking: no one may take a stale lock file
        os.close(self._fd)
        self._fd = None


class WorkDir:
    """`<lake>/_tmp/<name>/`, a working folder (DuckDB spill, staging) owned by one live process.

    Its owner holds an flock on `<lake>/_tmp/.<name>.lock`, taken before the folder exists; the OS
    drops it when the process dies, SIGKILL included, so a folder whose lock is free belongs to a
    dead run and `Lake.clean_tmp` removes it (it may hold raw personal data).
    """

    def __init__(self, root: Path, name: str):
        self.root = root
        self.path = root / name
        self.lock = root / f".{name}.lock"
        self._fd: int | None = take_lock(self.lock, 0o600)
        try:
            self.path.mkdir(mode=0o700)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self.lock.unlink(missing_ok=True)  # before unlocking: no one may take a stale lock file
        os.close(self._fd)
        self._fd = None
        # `_tmp` itself stays: removing it when it looks empty would race with a run creating its
        # working folder there; an empty owner-only folder holds nothing

    def __enter__(self) -> WorkDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def in_use(root: Path, on_wait: Callable[[], object] | None = None) -> Iterator[None]:
    """Shared lock of the lake (`<lake>/.lake.lock`) for a command reading its versions.

    Any number of commands hold it at once; `cobranza lake prune` needs it exclusively and
    refuses while one holds it. `on_wait()` is called if a prune holds it now (this waits).
    On a lake this account cannot write nobody can prune either, so no lock is needed there.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / IN_USE_LOCK
    fd: int | None
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            fd = None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)


@contextmanager
def exclusive(root: Path, refusal: str) -> Iterator[None]:
    """The lake's in-use lock held exclusively, or a LakeError ending with `refusal`."""
    fd = os.open(root / IN_USE_LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LakeError(
                f"a cobranza run is using the lake {root} (ingest, etl, train, score, "
                f"impact, monitor, pipeline, catalog or lake use); {refusal}"
            ) from None
        yield
    finally:
        os.close(fd)


def clean_work_dirs(root: Path, min_age_seconds: float = 3600.0) -> list[Path]:
    """Remove the working folders of `root` (`<lake>/_tmp/`) whose owner is dead.

    A folder whose lock is free goes at once; one without a lock file (left by an older
    cobranza) once untouched for `min_age_seconds`. A live owner's folder is never touched.
    """
    try:
        entries = sorted(root.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for entry in entries:
        if entry.name.startswith("."):
            if entry.name.endswith(".lock") and not (root / entry.name[1:-5]).exists():
                drop_dead_lock(entry)
            continue
        lock = root / f".{entry.name}.lock"
        alive = lock_alive(lock)
        if alive:
            continue
        if alive is None:
            try:
                if time.time() - entry.lstat().st_mtime < min_age_seconds:
                    continue
            except FileNotFoundError:
                continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        drop_dead_lock(lock)
        removed.append(entry)
    return removed
