"""Reading one extract file: header, dialect sanity, fingerprint and a stream of string batches.

Owns everything that touches the bytes of a CSV file: the header parse (case/space-insensitive
names, UTF-8 byte-order mark ignored), the refusal to guess a dialect, the sha256 and blank-line
scan, locating undecodable bytes, and the pyarrow streaming parse that yields every record as
strings with its physical line number (`_line`, header = line 1). Rows with the wrong number of
fields never reach the typed stage: they are returned as `BadRecord`s for the quarantine.

Line numbers are exact: the parser keeps empty lines as records (so an empty line inside a quoted
value is just one more embedded newline) and the byte scan's blank lines tell which of those
records to drop. A quote left open is refused, not parsed: its value would swallow the lines after
it, whole records included. Number cells are screened in bulk on the parsed bytes, so that only
the few that are not plainly numbers pay for the contract's regular expression in DuckDB.
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
# A record must fit in about one parser block: past BLOCK the parse is retried with blocks this
# many times larger, up to MAX_BLOCK; a longer record fails the file.
BLOCK_GROWTH = 8
MAX_BLOCK = 64 << 20
MAX_BAD_TEXT = 10_000  # characters of a malformed record kept in the quarantine
# A record spanning more physical lines than this is a quote left open, not an address.
MAX_RECORD_LINES = 1_000
SNIFF = 1 << 20  # bytes of the file start read for the header and the encoding check
UTF8_BOM = codecs.BOM_UTF8
_BLANK = re.compile(rb"\n\r?(?=\n)")
_LONE_CR = re.compile(rb"\r(?!\n)")


class IngestError(CobranzaError):
    """A fatal problem with an extract: the run stops and publishes nothing."""


class RecordTooLong(IngestError):
    """A record longer than the parser block: the caller retries with a larger block."""

    def __init__(self, filename: str, line: int, block: int):
        self.filename, self.line, self.block = filename, line, block
        size = f"{block >> 20} MiB" if block >= 1 << 20 else f"{block >> 10} KiB"
        super().__init__(
            f"{filename}: the record that starts at line {line} is longer than about {size}, "
            "the most one record may hold; is a value far too long, or a quote left open there?"
        )


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
    # Sorted 1-based numbers of empty lines, those inside quoted values included: the parser
    # returns an empty line as an all-empty record, and a record starting on one is dropped.
    blank_lines: np.ndarray
    # Whether the quote character occurs at all: without one no value can hold a newline, and
    # the per-batch newline search (a good part of the parse's time) is skipped.
    has_quote: bool = True


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
    blank_rows: int = 0  # empty lines the parser returned as records, dropped
    # Physical lines the parse accounts for minus the file's: not 0 only when carriage returns
    # without a line feed ended records for the parser (not lines for an editor).
    line_drift: int = 0
    drift_from: int | None = None  # line of the first such carriage return, when found
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


def is_utf8(encoding: str) -> bool:
    """UTF-8 with or without the `-sig` spelling (which only drops a byte-order mark)."""
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def arrow_encoding(dialect: Dialect) -> str:
    """The encoding pyarrow is given: its own UTF-8 path (which skips a BOM) for any UTF-8."""
    return "utf8" if is_utf8(dialect.encoding) else dialect.encoding


def read_header(path: Path, spec: FileSpec, dialect: Dialect) -> Header:
    """Parse and check the header; a wrong dialect or a missing required column is fatal.

    Messages never quote header cells that are not contract names: without a header row the
    first line is a data row, possibly a client's name and document number.
    """
    name = spec.filename
    try:
        codecs.lookup(dialect.encoding)
    except LookupError:
        raise IngestError(
            f"dialect '{dialect.name}': unknown encoding {dialect.encoding!r}"
        ) from None
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF)
    except OSError as exc:
        raise IngestError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if not head.strip():
        raise IngestError(f"{name}: the file is empty (no header row)")
    has_bom = head.startswith(UTF8_BOM)
    if has_bom:
        if not is_utf8(dialect.encoding):
            raise IngestError(
                f"{name}: starts with a UTF-8 byte-order mark but the dialect "
                f"'{dialect.name}' reads {dialect.encoding}: use a UTF-8 dialect "
                f"(--dialect {STANDARD.name})"
            )
        head = head[len(UTF8_BOM) :]
    first = head.split(b"\n", 1)[0]
    if first.endswith(b"\r"):
        first = first[:-1]
    if b"\r" in first:
        raise IngestError(
            f"{name}: line 1 holds a carriage return that is not followed by a line feed: the "
            "file seems to use CR-only line endings (old Mac style); convert it to LF or CRLF "
            "line endings"
        )
    try:
        text = first.decode(dialect.encoding)
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{name}: line 1 (byte {exc.start + (3 if has_bom else 0)}) is not valid "
            f"{dialect.encoding}; {_encoding_hint(dialect)}"
        ) from None
    quoting = {"quotechar": dialect.quote} if dialect.quote else {"quoting": csv.QUOTE_NONE}
    try:
        fields = next(csv.reader([text], delimiter=dialect.delimiter, **quoting), [])
    except csv.Error:
        raise IngestError(
            f"{name}: line 1 cannot be read as a header under dialect '{dialect.name}'"
        ) from None
    names = tuple(f.strip().lower() for f in fields)
    if len(names) <= 1 < len(spec.columns):
        raise IngestError(
            f"{name}: the header has a single column under dialect '{dialect.name}' "
            f"(delimiter {dialect.delimiter!r}); {_suggest(dialect, text)}. "
            "The dialect is never guessed."
        )
    _refuse_utf8_under_single_byte(name, head, dialect)
    contract = set(spec.column_names)
    seen: dict[str, int] = {}
    duplicate: tuple[str, int, int] | None = None
    for i, n in enumerate(names):
        if n and n in seen and duplicate is None:
            duplicate = (n, seen[n], i)
        seen.setdefault(n, i)
    missing = [c.name for c in spec.columns if c.required and c.name not in seen]
    if missing:
        found = sorted(contract & set(seen), key=spec.column_names.index)
        if found:
            shape = f"{len(names)} cells, {len(found)} of them contract columns"
            hint = "check the column names"
            other = [n[:40] for n in names if n and n not in contract]
            if other and 2 * len(found) >= len(names):  # surely a header, so no data in it
                hint += f" (not in the contract: {', '.join(other)})"
        else:
            shape = f"{len(names)} cells and none of them is a contract column"
            hint = "is the header row missing (the first line a data row)?"
        raise IngestError(
            f"{name}: missing required column(s) {', '.join(missing)}; line 1 under dialect "
            f"'{dialect.name}' has {shape}: {hint}"
        )
    if duplicate is not None:
        n, a, b = duplicate
        what = f"column '{n}'" if n in contract else "the same name"
        raise IngestError(
            f"{name}: {what} appears twice in the header (positions {a + 1} and {b + 1})"
        )
    return Header(
        names=names,
        positions={c: seen[c] for c in spec.column_names if c in seen},
        extras=_extra_names(names, contract),
        missing_optional=tuple(c for c in spec.column_names if c not in seen),
        has_bom=has_bom,
    )


def _extra_names(names: tuple[str, ...], contract: set[str]) -> tuple[tuple[str, int], ...]:
    """Raw-zone names of the non-contract columns, unique.

    A name starting with `_` (the raw zone's own `_line`) gets an `x` in front and an empty one
    becomes `column_N`; a name made that way can meet a real one (`_line` and `x_line`), so real
    names keep theirs and a made one takes the first free `_2`, `_3`... suffix: two columns
    under one name would lose one of them.
    """
    taken = set(contract) | {n for n in names if n and not n.startswith("_")}
    extras = []
    for i, n in enumerate(names):
        if n in contract:
            continue
        if n and not n.startswith("_"):
            extras.append((n, i))
            continue
        base = f"x{n}" if n else f"column_{i + 1}"
        raw_name, k = base, 1
        while raw_name in taken:
            k += 1
            raw_name = f"{base}_{k}"
        taken.add(raw_name)
        extras.append((raw_name, i))
    return tuple(extras)


def _refuse_utf8_under_single_byte(name: str, head: bytes, dialect: Dialect) -> None:
    """A file declared in a non-UTF encoding whose start is valid multi-byte UTF-8 is refused.

    Latin-1 decodes any byte, so a UTF-8 file read as Latin-1 would publish mojibake
    (`MedellÃ\xadn`) without an error; real Latin-1 text is almost never valid UTF-8.
    """
    if is_utf8(dialect.encoding) or head.isascii():
        return
    try:  # the sniffed start may end inside a character: not final
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return
    raise IngestError(
        f"{name}: looks like UTF-8, not {dialect.encoding}: its first megabyte is valid UTF-8 "
        f"with multi-byte characters, yet the dialect '{dialect.name}' reads "
        f'{dialect.encoding}; use a UTF-8 dialect (a dialect .toml with encoding = "utf-8", '
        f"or --dialect {STANDARD.name} for ',' files). The dialect is never guessed."
    )


def _encoding_hint(dialect: Dialect) -> str:
    if is_utf8(dialect.encoding):
        return f"is the file Latin-1? then use --dialect {BANK_LATIN1.name} (or a dialect .toml)"
    return "check the encoding of the dialect"


def fingerprint(path: Path, quote: bytes = b'"') -> Fingerprint:
    """sha256, size, line count, blank-line numbers and quote presence in one sequential read."""
    try:
        return _fingerprint(path, quote)
    except OSError as exc:
        raise IngestError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None


def _fingerprint(path: Path, quote: bytes) -> Fingerprint:
    sha = hashlib.sha256()
    lines = 0
    size = 0
    blanks: list[int] = []
    prev_tail = b""
    has_quote = False
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            has_quote = has_quote or (bool(quote) and quote in chunk)
            # A blank line is "\n" followed by "\n" (or "\r\n"); look across the chunk seam too.
            window = prev_tail + chunk
            if b"\n\n" in window or b"\n\r\n" in window:
                base = lines - prev_tail.count(b"\n")
                for m in _BLANK.finditer(window):  # a seam match repeats: np.unique below
                    blanks.append(base + window.count(b"\n", 0, m.start()) + 2)
            lines += chunk.count(b"\n")
            size += len(chunk)
            prev_tail = window[-2:]
    if size and not prev_tail.endswith(b"\n"):
        lines += 1
        if prev_tail == b"\n\r":  # a last line of a lone CR: the parser reads an empty line
            blanks.append(lines)
    blank_lines = np.unique(np.asarray(blanks, dtype=np.int64))
    return Fingerprint(sha.hexdigest(), size, lines, blank_lines, has_quote)


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


def _runaway_error(filename: str, line: int, span: int | None = None) -> IngestError:
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


def _line_offset(path: Path, line: int) -> int:
    """Byte offset where physical line `line` (1-based) starts."""
    offset = 0
    seen = 0
    with open(path, "rb") as fh:
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


def diagnose_long_record(
    path: Path, dialect: Dialect, ncol: int, line: int
) -> tuple[int, int | None] | None:
    """(line where a quote that runs away opens, lines spanned or None), from `line` on.

    Only on the failure path (a record longer than a parser block): reads a window of the raw
    bytes from the start of that record.
    """
    with open(path, "rb") as fh:
        fh.seek(_line_offset(path, line))
        window = fh.read(4 * BLOCK)
    text = window.decode(dialect.encoding, errors="replace")
    found = runaway_in_text(text, dialect, record_like(ncol))
    return None if found is None else (line + found[0], found[1])


def first_lone_cr(path: Path) -> int | None:
    """Line of the first carriage return not followed by a line feed (failure path only)."""
    lines_before = 0  # newlines before `window`
    carry = b""  # a chunk's last byte when it is a CR: the next chunk says whether LF follows
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            window = carry + chunk
            body = window[:-1] if window.endswith(b"\r") else window
            m = _LONE_CR.search(body)
            if m:
                return lines_before + body.count(b"\n", 0, m.start()) + 1
            lines_before += body.count(b"\n")
            carry = window[len(body) :]
    return lines_before + 1 if carry else None


def stream_batches(
    path: Path,
    spec: FileSpec,
    header: Header,
    dialect: Dialect,
    fp: Fingerprint,
    parsed: Parsed,
    block_size: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Every good record as strings (`c0..cN` in file order), `_line` and `_numcheck`.

    Bad records go to `parsed`. `_numcheck` has bit j set when contract column j is a number
    whose text this reader could not vouch for as plain (see `number_columns`).

    Raises `RecordTooLong` when a record does not fit `block_size` (the caller retries larger),
    and an `IngestError` naming the line where a quote that never closes opens.
    """
    block_size = block_size or BLOCK
    ncol = len(header.names)
    names = [f"c{i}" for i in range(ncol)]
    lines_map = _Lines()
    threshold = record_like(ncol)
    runaway: list[tuple[int, int, int | None]] = []  # (bad index, line in its text, span)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        text = row.text or ""
        number = int(row.number) if row.number is not None else -1
        newlines = text.count("\n")
        lines_map.add_bad(number, newlines)
        if newlines and not runaway:
            found = runaway_in_text(text, dialect, threshold)
            if found is not None:
                runaway.append((len(parsed.bad), *found))
        parsed.bad.append(BadRecord(number, row.actual_columns, text[:MAX_BAD_TEXT]))
        return "skip"

    read_options = pacsv.ReadOptions(
        use_threads=False,  # serial parsing: the parser then knows record numbers of bad rows
        block_size=block_size,
        column_names=names,
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
        invalid_row_handler=on_invalid,
    )
    convert_options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    blank_lines = fp.blank_lines
    numeric = number_columns(spec, header, dialect)
    parser_rows = 0
    last_line = 1  # physical line of the last good record (empty lines included)
    try:
        reader = pacsv.open_csv(
            str(path),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            n = batch.num_rows
            if n == 0:
                continue
            records = lines_map.good_records(parser_rows, n)
            parser_rows += n
            per_column = []
            if fp.has_quote and any(
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
                    lines_map.add_newlines(record, count)
            lines = lines_map.physical_batch(records)
            last_line = int(lines[-1])
            if per_column:
                _check_runaway(spec.filename, batch, lines, per_column, dialect, threshold)
            if len(blank_lines):  # blank_lines is sorted: a search, not a set operation
                at = np.minimum(np.searchsorted(blank_lines, lines), len(blank_lines) - 1)
                blank = blank_lines[at] == lines
                if blank.any():
                    keep = ~blank
                    parsed.blank_rows += int(blank.sum())
                    batch = batch.filter(pa.array(keep))
                    lines = lines[keep]
                    if not len(lines):
                        continue
            parsed.good_rows += len(lines)
            yield pa.RecordBatch.from_arrays(
                [
                    *batch.columns,
                    pa.array(lines, type=pa.int64()),
                    pa.array(_number_screen(batch, numeric), type=pa.int64()),
                ],
                [*names, "_line", NUMBER_CHECK],
            )
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if "UTF8" in msg or "utf8" in msg.lower():
            where = locate_decode_error(path, dialect) or "somewhere"
            raise IngestError(
                f"{spec.filename}: bytes that are not valid {dialect.encoding} at {where}; "
                f"{_encoding_hint(dialect)}"
            ) from None
        if "straddl" in msg:
            line = lines_map.next_line()
            opened = diagnose_long_record(path, dialect, ncol, line)
            if opened is not None:
                raise _runaway_error(spec.filename, *opened) from None
            raise RecordTooLong(spec.filename, line, block_size) from None
        raise IngestError(f"{spec.filename}: the CSV cannot be parsed: {_safe(msg)}") from None
    except UnicodeDecodeError:
        where = locate_decode_error(path, dialect) or "somewhere"
        raise IngestError(
            f"{spec.filename}: bytes that are not valid {dialect.encoding} at {where}; "
            f"{_encoding_hint(dialect)}"
        ) from None
    # Bad records were numbered as parser records; now every embedded newline is known.
    if parsed.bad:
        numbers = np.asarray([b.line for b in parsed.bad], dtype=np.int64)
        for bad, line in zip(parsed.bad, lines_map.physical(numbers), strict=True):
            bad.line = int(line)
    if runaway:
        index, offset, span = runaway[0]
        raise _runaway_error(spec.filename, parsed.bad[index].line + offset, span)
    accounted = 1 + parser_rows + len(parsed.bad) + lines_map.nl_total
    parsed.line_drift = accounted - fp.lines
    last = max([last_line, *(b.line for b in parsed.bad[-1:])])
    opened = quote_open_at_end(path, dialect, fp, last, reread=bool(parsed.line_drift))
    if opened is not None:
        raise IngestError(
            f"{spec.filename}: the quote opened at line {opened} is never closed: the file ends "
            "inside it; close the quote, or double it if it is part of the value"
        )
    if parsed.line_drift:  # rare: find where, reading the file again
        parsed.drift_from = first_lone_cr(path)


TAIL = 1 << 16  # bytes at the end of a file read to check its last record's quotes


def quote_open_at_end(
    path: Path, dialect: Dialect, fp: Fingerprint, line: int, reread: bool = False
) -> int | None:
    """Line where a quote still open at the end of the file opened; `line` starts the last record.

    pyarrow takes a quote left open in the last record as a value running to the end of the file
    (with no error), so it is checked here on the last record's bytes: the file's tail when the
    record fits in it, else (only when the line count already disagrees) read from its start.
    """
    if not dialect.quote or not fp.has_quote or fp.size == 0:
        return None
    with open(path, "rb") as fh:
        fh.seek(max(fp.size - TAIL, 0))
        tail = fh.read()
    if fp.size > TAIL:
        tail = tail[tail.find(b"\n") + 1 :] if b"\n" in tail else b""
    first = fp.lines - tail.count(b"\n") + (1 if tail.endswith(b"\n") or not tail else 0)
    if line >= first:
        tail = tail.split(b"\n", line - first)[-1] if line > first else tail
    elif reread:
        with open(path, "rb") as fh:
            fh.seek(_line_offset(path, line))
            tail = fh.read(2 * MAX_BLOCK)
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


NUMBER_CHECK = "_numcheck"
MAX_SCREENED = 62  # contract columns past this bit of the int64 mask always take the regex
_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[ord("0") : ord("9") + 1] = True


def number_columns(
    spec: FileSpec, header: Header, dialect: Dialect
) -> list[tuple[int, int, np.ndarray]]:
    """(bit = contract column index, file position, allowed bytes) of each number column.

    The contract's number rule is a regular expression, and DuckDB's regex costs ~40 ns a cell,
    a few percent of a whole ingest. This screen vouches for most cells in bulk instead: a value
    made only of digits, '-' and the decimal separator (integers: digits and '-'), starting with
    a digit or '-' and a digit, ending with a digit, matches the rule exactly when DuckDB's cast
    takes it; only the other cells are left to the regex (`rules.typed_sql`).
    """
    out = []
    for j, col in enumerate(spec.columns):
        pos = header.positions.get(col.name)
        if pos is None or col.type not in ("decimal", "integer") or j > MAX_SCREENED:
            continue
        allowed = _DIGITS.copy()
        allowed[ord("-")] = True
        if col.type == "decimal":
            allowed[ord(dialect.decimal)] = True
        out.append((j, pos, allowed))
    return out


def number_unsure_sql(j: int) -> str:
    """SQL that is true where the reader did not vouch for contract column j's cell."""
    return "TRUE" if j > MAX_SCREENED else f"({NUMBER_CHECK} & {1 << j}) <> 0"


def _number_screen(batch: pa.RecordBatch, numeric: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
    mask = np.zeros(batch.num_rows, dtype=np.int64)
    for bit, pos, allowed in numeric:
        unsure = _not_plain(batch.column(pos), allowed)
        if unsure.any():
            mask[unsure] |= np.int64(1) << bit
    return mask


def _not_plain(arr: pa.Array, allowed: np.ndarray) -> np.ndarray:
    """Per value: True unless its bytes plainly spell a number (an empty value is plain)."""
    n = len(arr)
    _, offsets, data = arr.buffers()
    o = np.frombuffer(offsets, dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    base, size = int(o[0]), int(o[-1] - o[0])
    out = np.zeros(n, dtype=bool)
    if size == 0:
        return out
    d = np.frombuffer(data, dtype=np.uint8, count=size, offset=base)
    starts, ends = o[:-1] - base, o[1:] - base
    foreign = np.flatnonzero(~allowed[d])
    if len(foreign):
        out[np.searchsorted(ends, foreign, side="right")] = True
    empty = ends == starts
    s = np.where(empty, 0, starts)
    e = np.where(empty, 1, ends)
    first, last = d[s], d[e - 1]
    second = d[np.minimum(s + 1, size - 1)]
    lead = _DIGITS[first] | ((first == ord("-")) & (e - s > 1) & _DIGITS[second])
    out |= ~(lead & _DIGITS[last]) & ~empty
    return out


def _check_runaway(
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
                raise _runaway_error(filename, int(lines[i] + before[i]))
            if count >= MAX_RECORD_LINES:
                raise _runaway_error(filename, int(lines[i] + before[i]), count + 1)
        before += counts


_ROW_TEXT = re.compile(r"(got \d+ columns?)[:].*", re.DOTALL)


def _safe(message: str) -> str:
    """pyarrow's message without the row text it may quote (the row may hold personal data)."""
    return _ROW_TEXT.sub(r"\1", message.splitlines()[0] if message else message)[:300]
