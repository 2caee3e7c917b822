"""File-system primitives of the lake: flocks, durable atomic JSON, fsync, owner-only folders.

A publication is only as safe as these: a file is written under a temporary name, fsynced, renamed
with `os.replace` and its folder fsynced, so a reader (or a power cut) sees the old file or the new
one, never half of one. Locks are `flock`s, which the operating system drops when their process
dies, SIGKILL included.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


@contextmanager
def flock(path: Path, mode: int) -> Iterator[None]:
    """flock on a lock file of its own for the duration of the block (blocking)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


def take_lock(path: Path, mode: int = 0o644) -> int:
    """An exclusive flock on `path`, on the file that still has that name once locked.

    A cleaner may unlink a lock file it found free just before we locked it; locking an unlinked
    file would protect nothing, so the name is checked after locking and the lock taken again.
    """
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, mode)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def lock_alive(path: Path) -> bool | None:
    """Whether a live process holds the flock of `path` (None: no such lock file)."""
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


def drop_dead_lock(path: Path) -> None:
    """Remove a lock file nobody holds (its owner is dead, or never got to lock it)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.unlink(missing_ok=True)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def fsync_tree(root: Path) -> None:
    """Every file and folder of a version on disk (a power cut after its journal or record must
    not leave a published version whose tables were still in the page cache)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def stage_json(path: Path, data: Any) -> Path:
    """`data` written and fsynced beside `path` under a temporary name, for `os.replace`."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` by `data` as JSON, durably: the old file or the new one, never half."""
    tmp = stage_json(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def unlink_durable(path: Path) -> None:
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def private_dir(path: Path) -> Path:
    """Create `path` if needed and make it owner-only (0700), whatever the umask."""
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)
    return path


def count_parquet_rows(path: Path) -> int:
    """Rows of every Parquet file under `path`, from their footers."""
    files = sorted(path.rglob("*.parquet"))
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
