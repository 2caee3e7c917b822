"""The sequential byte scans of one file: its fingerprint, and the failure-path searches.

`fingerprint` reads a file once, ahead of the parse (in a thread of its own): the sha256 of the
bytes as delivered (compressed ones for a `.gz` file, as the manifest's hash covers), and from the
CSV text the line count, the blank lines (the parser returns an empty line as a record, which the
reader drops by its physical line), whether the quote character occurs at all, and the text's
last bytes (where a quote left open in the last record shows). A gzip file's integrity (its check
values and length) is proven here, before any row is parsed. The other scans run only when
something failed, to say where.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cobranza.contract import Dialect
from cobranza.ingest.source import is_gzip, open_bytes, open_raw, reading

CHUNK = 1 << 24  # bytes per read when hashing and scanning
TAIL = 1 << 16  # bytes at the end of a file kept to check its last record's quotes
_BLANK = re.compile(rb"\n\r?(?=\n)")
_LONE_CR = re.compile(rb"\r(?!\n)")


@dataclass
class Fingerprint:
    """What a byte scan learns about a file: hash, size and where its blank lines are."""

    sha256: str  # of the bytes as delivered
    size: int  # bytes of CSV text (decompressed)
    lines: int  # physical lines, a last line without newline included
    # Sorted 1-based numbers of empty lines, those inside quoted values included: the parser
    # returns an empty line as an all-empty record, and a record starting on one is dropped.
    blank_lines: np.ndarray
    # Whether the quote character occurs at all: without one no value can hold a newline, and
    # the per-batch newline search (a good part of the parse's time) is skipped.
    has_quote: bool = True
    tail: bytes = b""  # the text's last TAIL bytes (all of it when shorter)
    delivered_size: int = -1  # bytes as delivered; the text's size when not compressed

    def __post_init__(self) -> None:
        if self.delivered_size < 0:
            self.delivered_size = self.size


class _Hashing(io.RawIOBase):
    """A raw file that hashes and counts every byte read from it (the delivered bytes)."""

    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        if n:
            self.sha.update(memoryview(buffer)[:n])
            self.size += n
        return n


def fingerprint(path: Path, quote: bytes = b'"') -> Fingerprint:
    """sha256, size, line count, blank-line numbers, quote presence and tail in one read."""
    with reading(path.name):
        if not is_gzip(path):
            with open_raw(path) as fh:
                return _scan(fh, quote, None)
        with open_raw(path) as raw:
            hashed = _Hashing(raw)
            with gzip.GzipFile(fileobj=hashed, mode="rb") as text:
                fp = _scan(text, quote, hashed)
            while hashed.read(CHUNK):  # bytes after the last gzip member, if any, are hashed too
                pass
            fp.sha256, fp.delivered_size = hashed.sha.hexdigest(), hashed.size
            return fp


def _scan(fh, quote: bytes, hashed: _Hashing | None) -> Fingerprint:
    sha = hashlib.sha256() if hashed is None else None
    lines = 0
    size = 0
    blanks: list[int] = []
    prev_tail = b""
    tail = b""
    has_quote = False
    while chunk := fh.read(CHUNK):
        if sha is not None:
            sha.update(chunk)
        has_quote = has_quote or (bool(quote) and quote in chunk)
        # A blank line is "\n" followed by "\n" (or "\r\n"). The seam with the previous chunk is
        # searched on its own few bytes, so the chunk is never copied; "\r\n" only where a CR is.
        seam = prev_tail + chunk[:2]
        if b"\n\n" in seam or b"\n\r\n" in seam:
            base = lines - prev_tail.count(b"\n")
            for m in _BLANK.finditer(seam):  # a match seen twice: np.unique below
                blanks.append(base + seam.count(b"\n", 0, m.start()) + 2)
        if b"\n\n" in chunk or (b"\r" in chunk and b"\n\r\n" in chunk):
            pos = before = 0
            for m in _BLANK.finditer(chunk):
                before += chunk.count(b"\n", pos, m.start())
                pos = m.start()
                blanks.append(lines + before + 2)
        lines += chunk.count(b"\n")
        size += len(chunk)
        prev_tail = chunk[-2:] if len(chunk) >= 2 else (prev_tail + chunk)[-2:]
        tail = (tail + chunk)[-TAIL:] if len(chunk) < TAIL else chunk[-TAIL:]
    if size and not prev_tail.endswith(b"\n"):
        lines += 1
        if prev_tail == b"\n\r":  # a last line of a lone CR: the parser reads an empty line
            blanks.append(lines)
    blank_lines = np.unique(np.asarray(blanks, dtype=np.int64))
    digest = sha.hexdigest() if sha is not None else ""
    return Fingerprint(digest, size, lines, blank_lines, has_quote, tail)


def locate_decode_error(path: Path, dialect: Dialect) -> str | None:
    """Where the first byte that the dialect's encoding cannot decode is, as 'line L (byte B)'.

    The byte is counted in the CSV text (decompressed, for a `.gz` file).
    """
    decoder = codecs.getincrementaldecoder(dialect.encoding)()
    offset = 0
    lines = 0
    with reading(path.name), open_bytes(path) as fh:
        while True:
            chunk = fh.read(CHUNK)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                pending = len(exc.object) - len(chunk)  # bytes carried from the last chunk
                pos = max(exc.start - pending, 0)
                line = lines + chunk.count(b"\n", 0, pos) + 1
                return f"line {line} (byte {offset + pos})"
            if not chunk:
                return None
            offset += len(chunk)
            lines += chunk.count(b"\n")


def undecodable_lines(path: Path, encoding: str) -> list[int]:
    """Lines holding bytes that `encoding` cannot decode (failure path only).

    Chunks are cut after their last newline (a newline byte never lies inside a character of an
    ASCII-compatible encoding); only a chunk that fails to decode is decoded line by line.
    """
    found: list[int] = []
    lines_before = 0
    carry = b""
    with reading(path.name), open_bytes(path) as fh:
        while True:
            chunk = fh.read(CHUNK)
            window = carry + chunk
            cut = window.rfind(b"\n") + 1 if chunk else len(window)
            body, carry = window[:cut], window[cut:]
            try:
                body.decode(encoding)
            except UnicodeDecodeError:
                for i, line in enumerate(body.split(b"\n")):
                    try:
                        line.decode(encoding)
                    except UnicodeDecodeError:
                        found.append(lines_before + i + 1)
            lines_before += body.count(b"\n")
            if not chunk:
                return found


def first_lone_cr(path: Path) -> int | None:
    """Line of the first carriage return not followed by a line feed (failure path only)."""
    lines_before = 0  # newlines before `window`
    carry = b""  # a chunk's last byte when it is a CR: the next chunk says whether LF follows
    with reading(path.name), open_bytes(path) as fh:
        while chunk := fh.read(CHUNK):
            window = carry + chunk
            body = window[:-1] if window.endswith(b"\r") else window
            m = _LONE_CR.search(body)
            if m:
                return lines_before + body.count(b"\n", 0, m.start()) + 1
            lines_before += body.count(b"\n")
            carry = window[len(body) :]
    return lines_before + 1 if carry else None


def line_offset(path: Path, line: int) -> int:
    """Byte offset in the CSV text where physical line `line` (1-based) starts."""
    offset = 0
    seen = 0
    with reading(path.name), open_bytes(path) as fh:
        while chunk := fh.read(CHUNK):
            count = chunk.count(b"\n")
            if seen + count >= line - 1:
                pos = -1
                for _ in range(line - 1 - seen):
                    pos = chunk.index(b"\n", pos + 1)
                return offset + pos + 1
            seen += count
            offset += len(chunk)
    return offset


def read_text_at(path: Path, offset: int, size: int) -> bytes:
    """`size` bytes of the CSV text from `offset` (a gzip file is decompressed up to there)."""
    with reading(path.name), open_bytes(path) as fh:
        fh.seek(offset)
        return fh.read(size)
