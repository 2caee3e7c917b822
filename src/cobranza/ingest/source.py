"""Where each contract file of an extract is and how its bytes are opened: plain or gzip.

Version 2 lets any file come as `NAME.csv.gz`. Every reader of a file's bytes opens it through
`open_bytes` (a stream: a gzip file is decompressed as it is read, never to disk or whole into
memory), so line numbers and every check of the reader are the same for both. A corrupt or
truncated gzip file is one line naming the file.

An extract folder is opened once (`ExtractFolder`) and every file of it is opened relative to that
descriptor, never following a symlink (`O_NOFOLLOW`): a contract file that is a symlink is refused
with one line, and a file is the same one (device and inode) at every open. The folder's real path
is checked against the service's extract roots, and against the identity the API checked when a
job hands one (`stages.CheckedFolder`): a folder swapped for a symlink after the check is refused.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PosixPath
from typing import BinaryIO

import pyarrow as pa

from cobranza.contract import GZIP_SUFFIX, FileSpec
from cobranza.ingest.errors import IngestError
from cobranza.stages import OUTSIDE_ROOTS, CheckedFolder, within_roots

# Never through a symlink; O_NONBLOCK so that a FIFO named like a contract file cannot block the
# open (it is then refused as not a regular file; on a regular file the flag changes nothing).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SYMLINK = (
    "is a symbolic link; symbolic links inside an extract are refused (the extract's files "
    "must be in its folder): copy the file itself into the folder"
)

# What a damaged gzip stream raises: a bad header or check value (BadGzipFile), a stream cut
# short (EOFError), or deflate data that does not decode (zlib.error).
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def _real_path(fd: int, fallback: Path) -> Path:
    """Where an open descriptor really is (Linux's /proc names it; elsewhere the resolved name)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return Path(os.path.realpath(fallback))


class ExtractFolder:
    """An extract folder held open: its files are opened relative to it, never through a symlink."""

    def __init__(self, path: Path, fd: int):
        self.path = path  # the real path, for messages
        self.fd = fd
        self.roots: tuple[Path, ...] | None = None

    @classmethod
    def open(cls, path: Path, checked: CheckedFolder | None = None) -> ExtractFolder:
        """Open the folder; with `checked` (a job of the API), it must still be the folder the
        API checked, and lie in the service's roots."""
        real = Path(os.path.realpath(path))
        try:
            fd = os.open(real, _FOLDER_FLAGS)
        except FileNotFoundError:
            raise IngestError(f"{real}: the extract folder does not exist") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                why = "is not a folder" if exc.errno == errno.ENOTDIR else "changed into a symlink"
                raise IngestError(f"{real}: the extract folder {why}; nothing was read") from None
            raise IngestError(f"{real}: cannot be opened ({exc.strerror or exc})") from None
        folder = cls(_real_path(fd, real), fd)
        try:
            folder._check(checked)
        except BaseException:
            folder.close()
            raise
        return folder

    def _check(self, checked: CheckedFolder | None) -> None:
        if checked is None:
            return
        self.roots = checked.root_paths()
        if not within_roots(self.path, self.roots):
            raise IngestError(f"{self.path}: the extract folder {OUTSIDE_ROOTS}; nothing was read")
        info = os.fstat(self.fd)
        expected = (checked.device, checked.inode)
        if checked.inode is not None and (info.st_dev, info.st_ino) != expected:
            raise IngestError(
                f"{checked.path}: the extract folder was replaced after the service checked it "
                "(it is not the same folder any more); nothing was read"
            )

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry `name` itself (a symlink is not followed); None when there is none."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def file(self, name: str) -> ExtractFile | None:
        """The regular file `name` of the folder, None when absent; a symlink is refused."""
        info = self.lstat(name)
        if info is None:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise IngestError(f"{name}: {_SYMLINK}")
        if not stat.S_ISREG(info.st_mode):
            return None
        return ExtractFile(self.path / name, folder=self, identity=(info.st_dev, info.st_ino))

    def open_fd(self, name: str, identity: tuple[int, int] | None) -> int:
        """A new descriptor of the file `name`, checked to be the file located earlier."""
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise IngestError(f"{name}: {_SYMLINK}") from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or (
                identity is not None and (info.st_dev, info.st_ino) != identity
            ):
                raise IngestError(
                    f"{name}: the file was replaced while the extract was read; deliver the "
                    "extract again and let nothing change it while it is ingested"
                )
            if self.roots is not None and not within_roots(
                _real_path(fd, self.path / name), self.roots
            ):
                raise IngestError(f"{name}: {OUTSIDE_ROOTS}")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ExtractFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ExtractFile(PosixPath):
    """The path of a file found in an `ExtractFolder`: opened through the folder's descriptor.

    A path derived from it (`parent`, `with_name`) has no folder and opens as a plain path.
    """

    folder: ExtractFolder | None = None
    identity: tuple[int, int] | None = None

    def __new__(cls, *args, folder: ExtractFolder, identity: tuple[int, int]):
        self = super().__new__(cls, *args)
        self.folder = folder
        self.identity = identity
        return self


def open_fd(path: Path) -> int:
    """A read descriptor of an extract file: through its folder when it was found in one; a
    symlink is refused either way."""
    if isinstance(path, ExtractFile) and path.folder is not None:
        return path.folder.open_fd(path.name, path.identity)
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IngestError(f"{path.name}: {_SYMLINK}") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IngestError(f"{path.name}: not a regular file")
    return fd


def open_raw(path: Path) -> BinaryIO:
    """The file's delivered bytes (compressed ones for a `.gz` file), unbuffered."""
    return os.fdopen(open_fd(path), "rb", buffering=0)


def is_gzip(path: Path) -> bool:
    return path.name.endswith(GZIP_SUFFIX)


def open_bytes(path: Path) -> BinaryIO:
    """The file's CSV bytes as a stream, decompressed on the fly when it is a `.gz` file."""
    raw = os.fdopen(open_fd(path), "rb")
    if is_gzip(path):
        return gzip.GzipFile(fileobj=raw, mode="rb", filename=path.name)  # type: ignore[return-value]
    return raw


def arrow_input(path: Path) -> pa.NativeFile:
    """The same stream for pyarrow's CSV reader (which decompresses in its own thread)."""
    raw = os.fdopen(open_fd(path), "rb", buffering=0)
    return pa.input_stream(raw, compression="gzip" if is_gzip(path) else None)


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


def locate(folder: ExtractFolder, specs: tuple[FileSpec, ...]) -> tuple[dict[str, Path], list[str]]:
    """(path per stem of the files found, names of the missing ones), each as delivered.

    A file delivered both plain and compressed is refused: which one is the extract? So is a
    contract file that is a symlink.
    """
    paths: dict[str, Path] = {}
    missing: list[str] = []
    for spec in specs:
        plain, packed = folder.file(spec.csv_name), folder.file(spec.gzip_name)
        if plain is not None and packed is not None:
            raise IngestError(
                f"{spec.csv_name}: delivered twice in {folder.path}, as {spec.csv_name} and "
                f"{spec.gzip_name}; keep one of them"
            )
        if packed is not None:
            paths[spec.stem] = packed
        elif plain is not None:
            paths[spec.stem] = plain
        else:
            missing.append(spec.csv_name)
    return paths, missing


def as_delivered(spec: FileSpec, path: Path) -> FileSpec:
    """The spec named as the file was delivered, so every message names the bank's file."""
    return replace(spec, delivered=path.name)
