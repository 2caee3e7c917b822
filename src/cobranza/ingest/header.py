"""The header of one extract file: column names mapped onto the contract, and the dialect checks.

Owns the first bytes of a file: the header parse (case/space-insensitive names, UTF-8 byte-order
mark ignored), the refusal to guess a dialect (a single-column header, UTF-8 bytes under a
single-byte encoding), the mapping of contract columns to file positions and the raw-zone names
of extra columns. Messages never quote header cells that are not contract names: without a
header row the first line is a data row, possibly a client's name and document number.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path

from cobranza.contract import BANK_LATIN1, STANDARD, Dialect, FileSpec
from cobranza.ingest.errors import IngestError
from cobranza.ingest.source import open_bytes, reading

SNIFF = 1 << 20  # bytes of the file start read for the header and the encoding check
UTF8_BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class Header:
    """The header of one file mapped onto its contract."""

    names: tuple[str, ...]  # normalized (stripped, lower-cased), in file order
    positions: dict[str, int]  # contract column -> position in the file
    extras: tuple[tuple[str, int], ...]  # (raw-zone name, position) of non-contract columns
    missing_optional: tuple[str, ...]
    has_bom: bool


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
    with reading(name), open_bytes(path) as fh:
        head = fh.read(SNIFF)
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
            f"{dialect.encoding}; {encoding_hint(dialect)}"
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
            # positions, never the cells: a header row may be a data row (names, documents)
            other = [str(i + 1) for i, n in enumerate(names) if n and n not in contract]
            if other:
                hint += f" (line 1, column(s) {', '.join(other)} are not contract columns)"
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


def encoding_hint(dialect: Dialect) -> str:
    if is_utf8(dialect.encoding):
        return f"is the file Latin-1? then use --dialect {BANK_LATIN1.name} (or a dialect .toml)"
    return "check the encoding of the dialect"
