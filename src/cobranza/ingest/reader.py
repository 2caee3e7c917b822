"""Streaming one extract file as string batches with exact physical line numbers.

Owns the pyarrow streaming parse that yields every record as strings with its physical line
number (`_line`, header = line 1). Rows with the wrong number of fields never reach the typed
stage: they are returned as `BadRecord`s for the quarantine. The bytes come through
`source.arrow_input`, so a `.gz` file is decompressed as it is parsed; the header is read by
`header`, the byte scans by `scan`, quote checks by `quotes`, the number screen by `numbers`.

Line numbers are exact: the parser keeps empty lines as records (so an empty line inside a quoted
value is just one more embedded newline) and the byte scan's blank lines tell which of those
records to drop. A quote left open is refused, not parsed: its value would swallow the lines after
it, whole records included. Number cells are screened in bulk on the parsed bytes, so that only
the few that are not plainly numbers pay for the contract's regular expression in DuckDB.

A record with the wrong number of fields is quarantined whatever its bytes. pyarrow decodes such a
record's text before it calls the invalid-row callback, so bytes that are not valid UTF-8 in it
stop the parse (with a report of the callback's error on stderr, which `_quiet_hook` keeps for
the run). The file is then parsed again with those bytes replaced (`Undecodable`), and every line
holding such bytes must lie in a quarantined record; one in an accepted record fails the file, as
an unreadable encoding does.
"""

from __future__ import annotations

import bisect
import codecs
import io
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cobranza.contract import Dialect, FileSpec
from cobranza.ingest.errors import IngestError
from cobranza.ingest.header import Header, arrow_encoding, encoding_hint, read_header
from cobranza.ingest.numbers import NUMBER_CHECK, number_columns, number_screen
from cobranza.ingest.quotes import (
    MAX_RECORD_LINES,
    check_runaway,
    diagnose_long_record,
    quote_open_at_end,
    record_like,
    runaway_error,
    runaway_in_text,
)
from cobranza.ingest.scan import (
    Fingerprint,
    fingerprint,
    first_lone_cr,
    locate_decode_error,
    undecodable_lines,
)
from cobranza.ingest.source import GZIP_ERRORS, arrow_input, gzip_message, open_bytes

BLOCK = 1 << 20  # pyarrow parse block: 1 MiB keeps Arrow memory in flight ~60 MB, same CPU
# A record must fit in about one parser block: past BLOCK the parse is retried with blocks this
# many times larger, up to MAX_BLOCK; a longer record fails the file.
BLOCK_GROWTH = 8
MAX_BLOCK = 64 << 20
MAX_BAD_TEXT = 10_000  # characters of a malformed record kept in the quarantine

__all__ = [
    "BLOCK",
    "MAX_RECORD_LINES",
    "NUMBER_CHECK",
    "BadRecord",
    "Fingerprint",
    "Header",
    "IngestError",
    "Parsed",
    "RecordTooLong",
    "Undecodable",
    "fingerprint",
    "read_header",
    "stream_batches",
]


class RecordTooLong(IngestError):
    """A record longer than the parser block: the caller retries with a larger block."""

    def __init__(self, filename: str, line: int, block: int):
        self.filename, self.line, self.block = filename, line, block
        size = f"{block >> 20} MiB" if block >= 1 << 20 else f"{block >> 10} KiB"
        super().__init__(
            f"{filename}: the record that starts at line {line} is longer than about {size}, "
            "the most one record may hold; is a value far too long, or a quote left open there?"
        )


class Undecodable(IngestError):
    """A record with the wrong number of fields holds bytes that are not valid UTF-8: the caller
    parses the file again with `replace_invalid` (the message is the file's decode error)."""


@dataclass
class BadRecord:
    line: int
    fields: int
    text: str
    newlines: int = 0  # in the whole record (`text` may be cut at MAX_BAD_TEXT)


@dataclass
class Parsed:
    """Result of streaming a file: the bad records found while the batches were consumed."""

    bad: list[BadRecord] = field(default_factory=list)
    good_rows: int = 0
    blank_rows: int = 0  # empty lines the parser returned as records, dropped
    # Physical lines the parse accounts for minus the file's: not 0 only when carriage returns
    # without a line feed ended records for the parser (not lines for an editor).
    line_drift: int = 0
    drift_from: int | None = None  # line of the first such carriage return, when found
    error: IngestError | None = None  # what the stream raised, kept for the caller


class _Lines:
    """Maps parser record numbers (header = 1, empty lines included) to physical lines.

    A record's physical line is its number plus the newlines embedded in quoted values of
    earlier records. Bad records and records with embedded newlines are rare, so they are kept
    sparse; the parse is serial, so both arrive in record order block by block, and what lies
    before the current batch is folded into scalars (each batch costs the size of its own block,
    never of the file so far).
    """

    def __init__(self):
        self.bad: list[int] = []  # record numbers of bad records, ascending
        self.bad_done = 0  # leading bad records already before every later good record
        self.nl: list[tuple[int, int]] = []  # (record number, embedded newlines), every record
        self.nl_pending: list[tuple[int, int]] = []  # entries not yet folded into nl_before
        self.nl_before = 0
        self.nl_total = 0
        self.last_record = 1  # the highest record number seen (the header is record 1)

    def add_newlines(self, record: int, count: int) -> None:
        self.nl.append((record, count))
        self.nl_pending.append((record, count))
        self.nl_total += count

    def add_bad(self, record: int, newlines: int) -> None:
        self.bad.append(record)
        self.last_record = max(self.last_record, record)
        if newlines:
            self.add_newlines(record, newlines)

    def next_line(self) -> int:
        """Physical line where the record after every one seen so far starts."""
        return self.last_record + 1 + self.nl_total

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
            self.last_record = max(self.last_record, int(records[-1]))
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
        return line

    def physical(self, records: np.ndarray) -> np.ndarray:
        """Physical lines of any records once the whole file is parsed (bad records)."""
        line = records.astype(np.int64, copy=True)
        if self.nl:
            pend = np.asarray(sorted(self.nl), dtype=np.int64).reshape(-1, 2)
            cum = np.concatenate([[0], np.cumsum(pend[:, 1])])
            line += cum[np.searchsorted(pend[:, 0], records, side="left")]
        return line


class _Stream:
    """The state of one file's parse: its options, and what each batch adds to the line map."""

    def __init__(
        self,
        path: Path,
        spec: FileSpec,
        header: Header,
        dialect: Dialect,
        fp: Fingerprint,
        parsed: Parsed,
        block_size: int,
    ):
        self.path, self.spec, self.dialect, self.fp, self.parsed = path, spec, dialect, fp, parsed
        self.block_size = block_size
        self.ncol = len(header.names)
        self.names = [f"c{i}" for i in range(self.ncol)]
        self.lines_map = _Lines()
        self.threshold = record_like(self.ncol)
        self.runaway: list[tuple[int, int, int | None]] = []  # (bad index, line in text, span)
        self.numeric = number_columns(spec, header, dialect)
        self.parser_rows = 0
        self.last_line = 1  # physical line of the last good record (empty lines included)
        self.undecodable = False  # the invalid-row callback could not be given a record's text

    def on_invalid(self, row: pacsv.InvalidRow) -> str:
        text = row.text or ""
        number = int(row.number) if row.number is not None else -1
        newlines = text.count("\n")
        self.lines_map.add_bad(number, newlines)
        if newlines and not self.runaway:
            found = runaway_in_text(text, self.dialect, self.threshold)
            if found is not None:
                self.runaway.append((len(self.parsed.bad), *found))
        self.parsed.bad.append(BadRecord(number, row.actual_columns, text[:MAX_BAD_TEXT], newlines))
        return "skip"

    def open(self, replace_invalid: bool = False) -> pacsv.CSVStreamingReader:
        dialect = self.dialect
        source = (
            pa.PythonFile(_Replacing(open_bytes(self.path), dialect.encoding), mode="r")
            if replace_invalid
            else arrow_input(self.path)
        )
        read_options = pacsv.ReadOptions(
            use_threads=False,  # serial parsing: the parser then knows record numbers of bad rows
            block_size=self.block_size,
            column_names=self.names,
            skip_rows=1,
            encoding=arrow_encoding(dialect),
        )
        parse_options = pacsv.ParseOptions(
            delimiter=dialect.delimiter,
            quote_char=dialect.quote or False,
            double_quote=True,
            newlines_in_values=True,
            # Empty lines stay records, so an empty line inside a quoted value and one between
            # records count alike; the blank ones are dropped below by their physical line.
            ignore_empty_lines=False,
            invalid_row_handler=self.on_invalid,
        )
        convert_options = pacsv.ConvertOptions(
            column_types=dict.fromkeys(self.names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        return pacsv.open_csv(
            source,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )

    def lines_of(self, batch: pa.RecordBatch) -> np.ndarray:
        """Physical lines of a batch's records; values spanning lines are counted (and checked)."""
        n = batch.num_rows
        records = self.lines_map.good_records(self.parser_rows, n)
        self.parser_rows += n
        per_column = []
        if self.fp.has_quote and any(
            pc.any(pc.match_substring(col, "\n")).as_py() for col in batch.columns
        ):
            counts = np.zeros(n, dtype=np.int64)
            for j, col in enumerate(batch.columns):
                c = pc.count_substring(col, "\n").to_numpy(zero_copy_only=False)
                if c.any():
                    per_column.append((j, c))
                    counts += c
            hit = np.flatnonzero(counts)
            for record, count in zip(records[hit].tolist(), counts[hit].tolist(), strict=True):
                self.lines_map.add_newlines(record, count)
        lines = self.lines_map.physical_batch(records)
        self.last_line = int(lines[-1])
        if per_column:
            check_runaway(
                self.spec.filename, batch, lines, per_column, self.dialect, self.threshold
            )
        return lines

    def good_batch(self, batch: pa.RecordBatch) -> pa.RecordBatch | None:
        """The batch without its blank lines, with `_line` and `_numcheck`; None when empty."""
        lines = self.lines_of(batch)
        blank_lines = self.fp.blank_lines
        if len(blank_lines):  # blank_lines is sorted: a search, not a set operation
            at = np.minimum(np.searchsorted(blank_lines, lines), len(blank_lines) - 1)
            blank = blank_lines[at] == lines
            if blank.any():
                keep = ~blank
                self.parsed.blank_rows += int(blank.sum())
                batch = batch.filter(pa.array(keep))
                lines = lines[keep]
                if not len(lines):
                    return None
        self.parsed.good_rows += len(lines)
        return pa.RecordBatch.from_arrays(
            [
                *batch.columns,
                pa.array(lines, type=pa.int64()),
                pa.array(number_screen(batch, self.numeric), type=pa.int64()),
            ],
            [*self.names, "_line", NUMBER_CHECK],
        )

    def parse_error(self, exc: pa.ArrowInvalid) -> IngestError:
        msg = str(exc)
        name = self.spec.filename
        if "UTF8" in msg or "utf8" in msg.lower():
            return _decode_error(self.path, name, self.dialect)
        if "straddl" in msg:
            line = self.lines_map.next_line()
            opened = diagnose_long_record(self.path, self.dialect, self.ncol, line, 4 * BLOCK)
            if opened is not None:
                return runaway_error(name, *opened)
            return RecordTooLong(name, line, self.block_size)
        return IngestError(f"{name}: the CSV cannot be parsed: {_safe(msg)}")

    def finish(self) -> None:
        """Once every batch is read: bad records' lines, then the whole-file quote checks."""
        parsed, name = self.parsed, self.spec.filename
        # Bad records were numbered as parser records; now every embedded newline is known.
        if parsed.bad:
            numbers = np.asarray([b.line for b in parsed.bad], dtype=np.int64)
            for bad, line in zip(parsed.bad, self.lines_map.physical(numbers), strict=True):
                bad.line = int(line)
        if self.runaway:
            index, offset, span = self.runaway[0]
            raise runaway_error(name, parsed.bad[index].line + offset, span)
        accounted = 1 + self.parser_rows + len(parsed.bad) + self.lines_map.nl_total
        parsed.line_drift = accounted - self.fp.lines
        last = max([self.last_line, *(b.line for b in parsed.bad[-1:])])
        reread = 2 * MAX_BLOCK if parsed.line_drift else 0
        opened = quote_open_at_end(self.path, self.dialect, self.fp, last, reread=reread)
        if opened is not None:
            raise IngestError(
                f"{name}: the quote opened at line {opened} is never closed: the file ends "
                "inside it; close the quote, or double it if it is part of the value"
            )
        if parsed.line_drift:  # rare: find where, reading the file again
            parsed.drift_from = first_lone_cr(self.path)

    def check_replaced(self) -> None:
        """After a parse with invalid bytes replaced: each line holding some is quarantined."""
        firsts = [b.line for b in self.parsed.bad]  # in file order
        lasts = [b.line + b.newlines for b in self.parsed.bad]
        for line in undecodable_lines(self.path, self.dialect.encoding):
            at = bisect.bisect_right(firsts, line) - 1  # the last record starting at or before
            if at < 0 or lasts[at] < line:
                raise IngestError(
                    f"{self.spec.filename}: bytes that are not valid {self.dialect.encoding} at "
                    f"line {line}; {encoding_hint(self.dialect)}"
                )


def stream_batches(
    path: Path,
    spec: FileSpec,
    header: Header,
    dialect: Dialect,
    fp: Fingerprint,
    parsed: Parsed,
    block_size: int | None = None,
    replace_invalid: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Every good record as strings (`c0..cN` in file order), `_line` and `_numcheck`.

    Bad records go to `parsed`. `_numcheck` has bit j set when contract column j is a number
    whose text this reader could not vouch for as plain (see `numbers.number_columns`).

    Raises `RecordTooLong` when a record does not fit `block_size` (the caller retries larger),
    `Undecodable` when a record with the wrong number of fields holds bytes that are not valid
    UTF-8 (the caller retries with `replace_invalid`), and an `IngestError` naming the line where
    a quote that never closes opens.
    """
    stream = _Stream(path, spec, header, dialect, fp, parsed, block_size or BLOCK)
    _quiet_hook()
    try:
        reader = stream.open(replace_invalid)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            if batch.num_rows:
                out = stream.good_batch(batch)
                if out is not None:
                    yield out
    except pa.ArrowInvalid as exc:
        if stream.undecodable and not replace_invalid:
            raise Undecodable(str(_decode_error(path, spec.filename, dialect))) from None
        raise stream.parse_error(exc) from None
    except UnicodeDecodeError:
        raise _decode_error(path, spec.filename, dialect) from None
    except GZIP_ERRORS as exc:
        raise IngestError(gzip_message(spec.filename, exc)) from None
    except OSError as exc:  # pyarrow's own gzip stream reports a damaged file as an IO error
        if spec.compressed:
            raise IngestError(gzip_message(spec.filename, exc)) from None
        raise IngestError(f"{spec.filename}: cannot be read ({exc.strerror or exc})") from None
    stream.finish()
    if replace_invalid:
        stream.check_replaced()


def _decode_error(path: Path, name: str, dialect: Dialect) -> IngestError:
    where = locate_decode_error(path, dialect) or "somewhere"
    return IngestError(
        f"{name}: bytes that are not valid {dialect.encoding} at {where}; {encoding_hint(dialect)}"
    )


_ROW_TEXT = re.compile(r"(got \d+(?: columns?)?)[:].*", re.DOTALL)


def _safe(message: str) -> str:
    """pyarrow's message without the row text it may quote (the row may hold personal data)."""
    return _ROW_TEXT.sub(r"\1", message.splitlines()[0] if message else message)[:300]


class _Replacing(io.RawIOBase):
    """The CSV text with bytes the encoding cannot decode replaced (U+FFFD), as UTF-8."""

    def __init__(self, raw, encoding: str):
        self.raw = raw
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self.buffer = memoryview(b"")
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, out) -> int:
        while not self.buffer and not self.done:
            chunk = self.raw.read(BLOCK)
            self.done = not chunk
            text = self.decoder.decode(chunk, final=self.done)
            self.buffer = memoryview(text.encode("utf-8"))
        n = min(len(out), len(self.buffer))
        out[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


_hook_lock = threading.Lock()


def _quiet_hook() -> None:
    """Keep pyarrow's report of a record it could not decode for the callback off stderr.

    pyarrow raises the UnicodeDecodeError outside Python's reach and reports it through
    `sys.unraisablehook`; the hook marks the parse (`_Stream.undecodable`, acted on by
    `stream_batches`) and passes every other report on to the hook it wraps.
    """
    with _hook_lock:
        current = sys.unraisablehook
        if getattr(current, "_cobranza_wraps", None) is not None:
            return

        def hook(unraisable) -> None:
            stream = getattr(unraisable.object, "__self__", None)
            if isinstance(stream, _Stream) and isinstance(unraisable.exc_value, UnicodeDecodeError):
                stream.undecodable = True
                return
            current(unraisable)

        hook._cobranza_wraps = current  # type: ignore[attr-defined]
        sys.unraisablehook = hook
