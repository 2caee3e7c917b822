"""Errors a person can act on: the CLI prints their message as one line, never a traceback."""

from __future__ import annotations

import errno
import re
from pathlib import Path


class CobranzaError(Exception):
    """Base of every actionable error; the message names the file, row, column or step."""


# SQLAlchemy's lines around the cause: the statement, its parameters, a URL, an autoflush note
_SQLALCHEMY_NOISE = ("[SQL:", "[parameters:", "(Background on this error", "(raised as a result of")


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first meaningful line of an error, for a one-line message (never empty).

    SQLAlchemy's statement, parameters and URL lines are skipped: they say nothing to the reader
    and may carry values.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(_SQLALCHEMY_NOISE)]
    chosen = meaningful or lines
    if chosen:
        return chosen[0][:limit]
    return type(exc).__name__ if isinstance(exc, BaseException) else ""


_STORAGE_ERRNO = {
    errno.ENOSPC: "no space left on device while writing {path}",
    errno.EDQUOT: "disk quota exceeded while writing {path}",
    errno.EROFS: "read-only file system: cannot write {path}",
    errno.EACCES: "permission denied on {path}",
}
_STORAGE_TEXT = (
    ("no space left on device", errno.ENOSPC),
    ("database or disk is full", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
)
_QUOTED_PATH = re.compile(r"""["'](/[^"']+)["']""")


def storage_problem(exc: BaseException, lake: Path | str) -> str | None:
    """A full, over-quota, read-only or forbidden disk as one line (None: something else).

    An OSError anywhere in the exception's chain, or an engine error (DuckDB, pyarrow, SQLite)
    whose text says so; the path is the file's when known, else `lake`.
    """
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        code, path = None, None
        if isinstance(err, OSError) and err.errno in _STORAGE_ERRNO:
            code, path = err.errno, err.filename
        else:
            text = str(err)
            code = next((c for needle, c in _STORAGE_TEXT if needle in text.lower()), None)
            match = _QUOTED_PATH.search(text)
            path = match.group(1) if match else None
        if code is not None:
            return _STORAGE_ERRNO[code].format(path=path or lake) + "; nothing was published"
        err = err.__cause__ or err.__context__
    return None
