"""Where each contract file of an extract is and how its bytes are opened: plain or gzip.

Version 2 lets any file come as `NAME.csv.gz`. Every reader of a file's bytes opens it through
`open_bytes` (a stream: a gzip file is decompressed as it is read, never to disk or whole into
memory), so line numbers and every check of the reader are the same for both. A corrupt or
truncated gzip file is one line naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from cobranza.contract import GZIP_SUFFIX, FileSpec
from cobranza.ingest.errors import IngestError

# What a damaged gzip stream raises: a bad header or check value (BadGzipFile), a stream cut
# short (EOFError), or deflate data that does not decode (zlib.error).
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def is_gzip(path: Path) -> bool:
    return path.name.endswith(GZIP_SUFFIX)


def open_bytes(path: Path) -> BinaryIO:
    """The file's CSV bytes as a stream, decompressed on the fly when it is a `.gz` file."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def arrow_input(path: Path) -> pa.NativeFile:
    """The same stream for pyarrow's CSV reader (which decompresses in its own thread)."""
    return pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None)


def gzip_message(name: str, exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"{name}: not a valid gzip file ({detail[:200]}): the file is damaged or incomplete; "
        "deliver it again"
    )


@contextmanager
def reading(name: str) -> Iterator[None]:
    """Turn what reading a file's bytes can raise into one line naming the file."""
    try:
        yield
    except GZIP_ERRORS as exc:
        raise IngestError(gzip_message(name, exc)) from None
    except OSError as exc:
        raise IngestError(f"{name}: cannot be read ({exc.strerror or exc})") from None


def locate(extract_dir: Path, specs: tuple[FileSpec, ...]) -> tuple[dict[str, Path], list[str]]:
    """(path per stem of the files found, names of the missing ones), each as delivered.

    A file delivered both plain and compressed is refused: which one is the extract?
    """
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for spec in specs:
        plain, packed = extract_dir / spec.csv_name, extract_dir / spec.gzip_name
        if plain.is_file() and packed.is_file():
            raise IngestError(
                f"{spec.csv_name}: delivered twice in {extract_dir}, as {spec.csv_name} and "
                f"{spec.gzip_name}; keep one of them"
            )
        if packed.is_file():
            paths[spec.stem] = packed
        elif plain.is_file():
            paths[spec.stem] = plain
        else:
            missing.append(spec.csv_name)
    return paths, missing


def as_delivered(spec: FileSpec, path: Path) -> FileSpec:
    """The spec named as the file was delivered, so every message names the bank's file."""
    return replace(spec, delivered=path.name)
