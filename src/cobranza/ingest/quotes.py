"""Quotes that never close: the checks that keep one open quote from swallowing records.

A quoted value may hold newlines (an address over two lines), so a quote left open makes the
parser read the lines after it as one value, whole records included. These checks tell the two
apart without a second parse: a line inside a value holding a record's worth of delimiters, or a
value spanning more than MAX_RECORD_LINES lines, is a quote that should have closed earlier; a
quote still open at the end of the file is read from the text's tail. Each failure is one message
naming the line where the quote opened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from cobranza.contract import Dialect
from cobranza.ingest.errors import IngestError
from cobranza.ingest.scan import TAIL, Fingerprint, line_offset, read_text_at

# A record spanning more physical lines than this is a quote left open, not an address.
MAX_RECORD_LINES = 1_000


def record_like(ncol: int) -> int:
    """Delimiters that make one embedded line look like a whole record of an `ncol` file."""
    return max(ncol - 1, 2)


def value_runs_away(value: str, delimiter: str, threshold: int) -> bool:
    """A quoted value one of whose later lines could be a record: the quote was never closed.

    The first line of the value is the rest of the line where the quote opened; the ones after
    it are whole lines inside the quotes, and an address or a name never holds a record's worth
    of delimiters on one of them.
    """
    if value.count(delimiter) < threshold:
        return False
    return any(seg.count(delimiter) >= threshold for seg in value.split("\n")[1:])


def runaway_in_text(text: str, dialect: Dialect, threshold: int) -> tuple[int, int | None] | None:
    """(index of the line whose quote runs away, lines it spans when that gave it away).

    `text` is raw CSV starting at a record.
    Tracks quote parity line by line (a doubled quote inside a value keeps it): a line that
    starts inside quotes and holds a record's worth of delimiters before the next quote, or
    more than MAX_RECORD_LINES lines inside one value, means the quote opened earlier never
    closed where it should have.
    """
    quote, delimiter = dialect.quote, dialect.delimiter
    if not quote:
        return None
    inside, opened = False, 0
    for i, line in enumerate(text.split("\n")):
        if inside:
            end = line.find(quote)
            if (line if end < 0 else line[:end]).count(delimiter) >= threshold:
                return opened, None
            if i - opened >= MAX_RECORD_LINES:
                return opened, i - opened + 1
        if line.count(quote) % 2:
            inside = not inside
            opened = i if inside else opened
    return None


def runaway_error(filename: str, line: int, span: int | None = None) -> IngestError:
    """One message for a quote that never closes; `span` when only its length gave it away."""
    if span:
        why = f"the quoted value runs over {span} lines (more than {MAX_RECORD_LINES})"
    else:
        why = (
            "the lines after it hold a whole record's worth of delimiters, so they are "
            "records swallowed into one value"
        )
    return IngestError(
        f"{filename}: the quote opened at line {line} is not closed where it should be: {why}; "
        "close the quote, or double it if it is part of the value"
    )


def diagnose_long_record(
    path: Path, dialect: Dialect, ncol: int, line: int, window_size: int
) -> tuple[int, int | None] | None:
    """(line where a quote that runs away opens, lines spanned or None), from `line` on.

    Only on the failure path (a record longer than a parser block): reads `window_size` bytes
    of the text from the start of that record.
    """
    window = read_text_at(path, line_offset(path, line), window_size)
    text = window.decode(dialect.encoding, errors="replace")
    found = runaway_in_text(text, dialect, record_like(ncol))
    return None if found is None else (line + found[0], found[1])


def quote_open_at_end(
    path: Path, dialect: Dialect, fp: Fingerprint, line: int, reread: int = 0
) -> int | None:
    """Line where a quote still open at the end of the file opened; `line` starts the last record.

    pyarrow takes a quote left open in the last record as a value running to the end of the file
    (with no error), so it is checked here on the last record's bytes: the file's tail when the
    record fits in it, else (only when the line count already disagrees, `reread` > 0) that many
    bytes read from its start.
    """
    if not dialect.quote or not fp.has_quote or fp.size == 0:
        return None
    tail = fp.tail  # the text's last TAIL bytes, kept by the fingerprint
    if fp.size > TAIL:
        tail = tail[tail.find(b"\n") + 1 :] if b"\n" in tail else b""
    first = fp.lines - tail.count(b"\n") + (1 if tail.endswith(b"\n") or not tail else 0)
    if line >= first:
        tail = tail.split(b"\n", line - first)[-1] if line > first else tail
    elif reread:
        tail = read_text_at(path, line_offset(path, line), reread)
    else:
        return None
    text = tail.decode(dialect.encoding, errors="replace")
    opened = open_quote_line(text, dialect.delimiter, dialect.quote)
    return None if opened is None else line + opened


def open_quote_line(text: str, delimiter: str, quote: str) -> int | None:
    """Line index (in `text`, which starts at a record) of a quote never closed, or None.

    A character-level CSV reading, as the parser does: a quote opens a value only at the start
    of a field, and a doubled quote inside one is a quote character.
    """
    inside = False
    at_start = True
    line = opened = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if inside:
            if ch == quote:
                if i + 1 < n and text[i + 1] == quote:
                    i += 2
                    continue
                inside = False
            elif ch == "\n":
                line += 1
        elif ch == quote and at_start:
            inside, opened = True, line
        else:
            if ch == "\n":
                line += 1
            at_start = ch in (delimiter, "\n", "\r")
        i += 1
    return opened if inside else None


def check_runaway(
    filename: str,
    batch: pa.RecordBatch,
    lines: np.ndarray,
    per_column: list[tuple[int, np.ndarray]],
    dialect: Dialect,
    threshold: int,
) -> None:
    """Fail on a value with embedded newlines that swallowed records; only such values pay."""
    before = np.zeros(len(lines), dtype=np.int64)  # newlines in the earlier fields of the row
    for j, counts in per_column:
        hit = np.flatnonzero(counts)
        values = batch.column(j).take(pa.array(hit)).to_pylist()
        for i, value, count in zip(hit.tolist(), values, counts[hit].tolist(), strict=True):
            if value_runs_away(value, dialect.delimiter, threshold):
                raise runaway_error(filename, int(lines[i] + before[i]))
            if count >= MAX_RECORD_LINES:
                raise runaway_error(filename, int(lines[i] + before[i]), count + 1)
        before += counts
