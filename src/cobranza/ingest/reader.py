"""Reading one extract file: header, dialect sanity, fingerprint and a stream of string batches.

Owns everything that touches the bytes of a CSV file: the header parse (case/space-insensitive
names, UTF-8 byte-order mark ignored), the refusal to guess a dialect, the sha256 and blank-line
scan, locating undecodable bytes, and the pyarrow streaming parse that yields every record as
strings with its physical line number (`_line`, header = line 1). Rows with the wrong number of
fields never reach the typed stage: they are returned as `BadRecord`s for the quarantine.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cobranza.contract import BANK_LATIN1, STANDARD, Dialect, FileSpec
from cobranza.errors import CobranzaError

CHUNK = 1 << 24  # bytes per read when hashing and scanning
BLOCK = 1 << 20  # pyarrow parse block: 1 MiB keeps Arrow memory in flight ~60 MB, same CPU
MAX_BAD_TEXT = 10_000  # characters of a malformed record kept in the quarantine
UTF8_BOM = codecs.BOM_UTF8
_BLANK = re.compile(rb"\n\r?(?=\n)")


class IngestError(CobranzaError):
    """A fatal problem with an extract: the run stops and publishes nothing."""


@dataclass(frozen=True)
class Header:
    """The header of one file mapped onto its contract."""

    names: tuple[str, ...]  # normalized (stripped, lower-cased), in file order
    positions: dict[str, int]  # contract column -> position in the file
    extras: tuple[tuple[str, int], ...]  # (raw-zone name, position) of non-contract columns
    missing_optional: tuple[str, ...]
    has_bom: bool


@dataclass
class Fingerprint:
    """What a byte scan learns about a file: hash, size and where its blank lines are."""

    sha256: str
    size: int
    lines: int  # physical lines, a last line without newline included
    blank_lines: np.ndarray  # sorted 1-based line numbers of empty lines (skipped by the parser)


@dataclass
class BadRecord:
    line: int
    fields: int
    text: str


@dataclass
class Parsed:
    """Result of streaming a file: the bad records found while the batches were consumed."""

    bad: list[BadRecord] = field(default_factory=list)
    good_rows: int = 0
    # Physical lines the parse accounts for minus the file's: not 0 only when an empty line
    # inside a quoted value was taken for a blank line, so later line numbers are shifted.
    line_drift: int = 0
    error: IngestError | None = None  # what the stream raised, kept for the caller


def _suggest(dialect: Dialect, text: str) -> str:
    for cand in (";", ",", "\t", "|"):
        if cand != dialect.delimiter and cand in text:
            shown = "TAB" if cand == "\t" else cand
            if cand == BANK_LATIN1.delimiter and dialect.name != BANK_LATIN1.name:
                return f"it looks '{shown}'-delimited: use --dialect {BANK_LATIN1.name} (or a dialect .toml)"
            if cand == STANDARD.delimiter and dialect.name != STANDARD.name:
                return f"it looks '{shown}'-delimited: use --dialect {STANDARD.name} (or a dialect .toml)"
            return f"it looks '{shown}'-delimited: pass a dialect .toml with delimiter = '{shown}'"
    return "check the --dialect option"


def read_header(path: Path, spec: FileSpec, dialect: Dialect) -> Header:
    """Parse and check the header; a wrong dialect or a missing required column is fatal."""
    name = spec.filename
    try:
        codecs.lookup(dialect.encoding)
    except LookupError:
        raise IngestError(
            f"dialect '{dialect.name}': unknown encoding {dialect.encoding!r}"
        ) from None
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError as exc:
        raise IngestError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if not head.strip():
        raise IngestError(f"{name}: the file is empty (no header row)")
    has_bom = head.startswith(UTF8_BOM)
    if has_bom:
        if codecs.lookup(dialect.encoding).name != "utf-8":
            raise IngestError(
                f"{name}: starts with a UTF-8 byte-order mark but the dialect "
                f"'{dialect.name}' reads {dialect.encoding}: use a UTF-8 dialect "
                f"(--dialect {STANDARD.name})"
            )
        head = head[len(UTF8_BOM) :]
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode(dialect.encoding)
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{name}: line 1 (byte {exc.start + (3 if has_bom else 0)}) is not valid "
            f"{dialect.encoding}; {_encoding_hint(dialect)}"
        ) from None
    quoting = {"quotechar": dialect.quote} if dialect.quote else {"quoting": csv.QUOTE_NONE}
    fields = next(csv.reader([text], delimiter=dialect.delimiter, **quoting), [])
    names = tuple(f.strip().lower() for f in fields)
    if len(names) <= 1 < len(spec.columns):
        raise IngestError(
            f"{name}: the header has a single column under dialect '{dialect.name}' "
            f"(delimiter {dialect.delimiter!r}); {_suggest(dialect, text)}. "
            "The dialect is never guessed."
        )
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n and n in seen:
            raise IngestError(
                f"{name}: column '{n}' appears twice in the header (positions {seen[n] + 1} and {i + 1})"
            )
        seen.setdefault(n, i)
    missing = [c.name for c in spec.columns if c.required and c.name not in seen]
    if missing:
        raise IngestError(
            f"{name}: missing required column(s) {', '.join(missing)} "
            f"(header under dialect '{dialect.name}': {', '.join(names)})"
        )
    contract = set(spec.column_names)
    extras = []
    for i, n in enumerate(names):
        if n not in contract:
            raw_name = n or f"column_{i + 1}"
            if raw_name.startswith("_"):
                raw_name = f"x{raw_name}"
            extras.append((raw_name, i))
    return Header(
        names=names,
        positions={c: seen[c] for c in spec.column_names if c in seen},
        extras=tuple(extras),
        missing_optional=tuple(c for c in spec.column_names if c not in seen),
        has_bom=has_bom,
    )


def _encoding_hint(dialect: Dialect) -> str:
    if codecs.lookup(dialect.encoding).name == "utf-8":
        return f"is the file Latin-1? then use --dialect {BANK_LATIN1.name} (or a dialect .toml)"
    return "check the encoding of the dialect"


def fingerprint(path: Path) -> Fingerprint:
    """sha256, size, line count and blank-line numbers in one sequential read."""
    try:
        return _fingerprint(path)
    except OSError as exc:
        raise IngestError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None


def _fingerprint(path: Path) -> Fingerprint:
    sha = hashlib.sha256()
    lines = 0
    size = 0
    blanks: list[int] = []
    prev_tail = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            # A blank line is "\n" followed by "\n" (or "\r\n"); look across the chunk seam too.
            window = prev_tail + chunk
            if b"\n\n" in window or b"\n\r\n" in window:
                base = lines - prev_tail.count(b"\n")
                for m in _BLANK.finditer(window):  # a seam match repeats: np.unique below
                    blanks.append(base + window.count(b"\n", 0, m.start()) + 2)
            lines += chunk.count(b"\n")
            size += len(chunk)
            prev_tail = chunk[-2:]
    blank_lines = np.unique(np.asarray(blanks, dtype=np.int64))
    if size and not prev_tail.endswith(b"\n"):
        lines += 1
    return Fingerprint(sha.hexdigest(), size, lines, blank_lines)


def locate_decode_error(path: Path, dialect: Dialect) -> str | None:
    """Where the first byte that the dialect's encoding cannot decode is, as 'line L (byte B)'."""
    decoder = codecs.getincrementaldecoder(dialect.encoding)()
    offset = 0
    lines = 0
    with open(path, "rb") as fh:
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


class _Lines:
    """Maps parser record numbers (header = 1, blank lines skipped) to physical lines.

    A record's physical line is its number, plus the newlines embedded in quoted values of
    earlier records, plus the blank lines before it. Bad records and records with embedded
    newlines are rare, so they are kept sparse; the parse is serial, so both arrive in record
    order block by block, and what lies before the current batch is folded into scalars (each
    batch costs the size of its own block, never of the file so far).
    """

    def __init__(self, blank_lines: np.ndarray):
        self.blank_adj = blank_lines - np.arange(len(blank_lines), dtype=np.int64)
        self.bad: list[int] = []  # record numbers of bad records, ascending
        self.bad_done = 0  # leading bad records already before every later good record
        self.nl: list[tuple[int, int]] = []  # (record number, embedded newlines), every record
        self.nl_pending: list[tuple[int, int]] = []  # entries not yet folded into nl_before
        self.nl_before = 0

    def add_newlines(self, record: int, count: int) -> None:
        self.nl.append((record, count))
        self.nl_pending.append((record, count))

    def good_records(self, start: int, n: int) -> np.ndarray:
        """Record numbers of good records `start..start+n-1` (0-based rank among good ones)."""
        # With every bad record b_j (ascending): record = s + #{j : b_j - j <= s}, s = rank + 2.
        # The first `bad_done` of them precede this batch, so they count without a search.
        s_ = np.arange(start, start + n, dtype=np.int64) + 2
        new = np.asarray(self.bad[self.bad_done :], dtype=np.int64)
        adj = new - np.arange(self.bad_done, self.bad_done + len(new), dtype=np.int64)
        records = s_ + self.bad_done + np.searchsorted(adj, s_, side="right")
        if n:
            self.bad_done += int(np.searchsorted(new, records[-1]))
        return records

    def physical_batch(self, records: np.ndarray) -> np.ndarray:
        """Physical lines of one batch of good records, in record order; then folds it."""
        line = records + self.nl_before
        if self.nl_pending:
            pend = np.asarray(sorted(self.nl_pending), dtype=np.int64).reshape(-1, 2)
            cum = np.concatenate([[0], np.cumsum(pend[:, 1])])
            line = line + cum[np.searchsorted(pend[:, 0], records, side="left")]
            settled = pend[:, 0] <= records[-1]
            self.nl_before += int(pend[settled, 1].sum())
            self.nl_pending = [tuple(x) for x in pend[~settled].tolist()]
        return line + np.searchsorted(self.blank_adj, line, side="right")

    def physical(self, records: np.ndarray) -> np.ndarray:
        """Physical lines of any records once the whole file is parsed (bad records)."""
        line = records.astype(np.int64, copy=True)
        if self.nl:
            pend = np.asarray(sorted(self.nl), dtype=np.int64).reshape(-1, 2)
            cum = np.concatenate([[0], np.cumsum(pend[:, 1])])
            line += cum[np.searchsorted(pend[:, 0], records, side="left")]
        return line + np.searchsorted(self.blank_adj, line, side="right")


def stream_batches(
    path: Path,
    spec: FileSpec,
    header: Header,
    dialect: Dialect,
    fp: Fingerprint,
    parsed: Parsed,
) -> Iterator[pa.RecordBatch]:
    """Every good record as strings (`c0..cN` in file order) plus `_line`; bad ones to `parsed`."""
    ncol = len(header.names)
    names = [f"c{i}" for i in range(ncol)]
    lines_map = _Lines(fp.blank_lines)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        text = row.text or ""
        number = int(row.number) if row.number is not None else -1
        lines_map.bad.append(number)
        if "\n" in text:
            lines_map.add_newlines(number, text.count("\n"))
        parsed.bad.append(BadRecord(number, row.actual_columns, text[:MAX_BAD_TEXT]))
        return "skip"

    read_options = pacsv.ReadOptions(
        use_threads=False,  # serial parsing: the parser then knows record numbers of bad rows
        block_size=BLOCK,
        column_names=names,
        skip_rows=1,
        encoding=dialect.encoding,
    )
    parse_options = pacsv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quote or False,
        double_quote=True,
        newlines_in_values=True,
        ignore_empty_lines=True,
        invalid_row_handler=on_invalid,
    )
    convert_options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        reader = pacsv.open_csv(
            str(path),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        done = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            n = batch.num_rows
            if n == 0:
                continue
            records = lines_map.good_records(done, n)
            if any(pc.any(pc.match_substring(col, "\n")).as_py() for col in batch.columns):
                counts = np.zeros(n, dtype=np.int64)
                for col in batch.columns:
                    counts += pc.count_substring(col, "\n").to_numpy(zero_copy_only=False)
                hit = np.flatnonzero(counts)
                for record, count in zip(records[hit].tolist(), counts[hit].tolist(), strict=True):
                    lines_map.add_newlines(record, count)
            lines = lines_map.physical_batch(records)
            done += n
            parsed.good_rows = done
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, pa.array(lines, type=pa.int64())], [*names, "_line"]
            )
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "UTF8" in msg or "utf8" in msg.lower():
            where = locate_decode_error(path, dialect) or "somewhere"
            raise IngestError(
                f"{spec.filename}: bytes that are not valid {dialect.encoding} at {where}; "
                f"{_encoding_hint(dialect)}"
            ) from None
        raise IngestError(f"{spec.filename}: the CSV cannot be parsed: {msg}") from None
    except UnicodeDecodeError:
        where = locate_decode_error(path, dialect) or "somewhere"
        raise IngestError(
            f"{spec.filename}: bytes that are not valid {dialect.encoding} at {where}; "
            f"{_encoding_hint(dialect)}"
        ) from None
    accounted = 1 + parsed.good_rows + len(parsed.bad) + sum(c for _, c in lines_map.nl)
    parsed.line_drift = accounted + len(fp.blank_lines) - fp.lines
    # Bad records were numbered as parser records; now every embedded newline is known.
    if parsed.bad:
        numbers = np.asarray([b.line for b in parsed.bad], dtype=np.int64)
        for bad, line in zip(parsed.bad, lines_map.physical(numbers), strict=True):
            bad.line = int(line)
