"""The bulk screen of number and identifier cells: most are vouched for here, only the rest pay
for a regex.

The contract's number and identifier rules are regular expressions, and DuckDB's regex costs
~40 ns a cell, a few percent of a whole ingest. `number_screen` marks, per parsed batch, the cells
whose bytes it cannot vouch for as plainly a number or plainly an identifier; `rules.typed_sql`
and `rules.error_sql` apply the regex only to those (`number_unsure_sql`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cobranza.contract import ID_PATTERN, Dialect, FileSpec
from cobranza.ingest.header import Header

NUMBER_CHECK = "_numcheck"
MAX_SCREENED = 62  # contract columns past this bit of the int64 mask always take the regex
_DIGITS = np.zeros(256, dtype=bool)
_DIGITS[ord("0") : ord("9") + 1] = True
_ALNUM = _DIGITS.copy()
_ALNUM[ord("A") : ord("Z") + 1] = True
_ALNUM[ord("a") : ord("z") + 1] = True
_ID_BYTES = _ALNUM.copy()  # ID_PATTERN's characters: letters, digits and - _ .
_ID_BYTES[[ord("-"), ord("_"), ord(".")]] = True
ID_MAX = 64  # ID_PATTERN's longest identifier


def number_columns(
    spec: FileSpec, header: Header, dialect: Dialect
) -> list[tuple[int, int, np.ndarray | None]]:
    """(bit = contract column index, file position, allowed bytes) of each screened column: the
    number columns, and the identifier columns (allowed bytes None) of the contract's ID_PATTERN.

    The contract's number rule is a regular expression, and DuckDB's regex costs ~40 ns a cell,
    a few percent of a whole ingest. This screen vouches for most cells in bulk instead: a value
    made only of digits, '-' and the decimal separator (integers: digits and '-'), starting with
    a digit or '-' and a digit, ending with a digit, matches the rule exactly when DuckDB's cast
    takes it; only the other cells are left to the regex (`rules.typed_sql`). An identifier of
    1 to ID_MAX letters, digits, '-', '_' and '.' starting with a letter or a digit is one by
    ID_PATTERN's definition.
    """
    out: list[tuple[int, int, np.ndarray | None]] = []
    for j, col in enumerate(spec.columns):
        pos = header.positions.get(col.name)
        if pos is None or j > MAX_SCREENED:
            continue
        if col.type == "string" and col.pattern == ID_PATTERN:
            out.append((j, pos, None))
            continue
        if col.type not in ("decimal", "integer"):
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


def number_screen(
    batch: pa.RecordBatch, numeric: list[tuple[int, int, np.ndarray | None]]
) -> np.ndarray:
    mask = np.zeros(batch.num_rows, dtype=np.int64)
    for bit, pos, allowed in numeric:
        col = batch.column(pos)
        unsure = _not_plain_id(col) if allowed is None else _not_plain(col, allowed)
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
    foreign = _outside(d, allowed)
    if foreign.any():
        out[np.searchsorted(ends, np.flatnonzero(foreign), side="right")] = True
    empty = ends == starts
    s = np.where(empty, 0, starts)
    e = np.where(empty, 1, ends)
    first, last = d[s], d[e - 1]
    second = d[np.minimum(s + 1, size - 1)]
    lead = _DIGITS[first] | ((first == ord("-")) & (e - s > 1) & _DIGITS[second])
    out |= ~(lead & _DIGITS[last]) & ~empty
    return out


def _outside(d: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per byte: True where it is not an allowed one.

    The allowed bytes of a number span a short range ('-' to '9'): one wrapping subtraction and
    a comparison per hole in it, vectorized, cost a fraction of a table lookup per byte.
    """
    inside = np.flatnonzero(allowed)
    lo, hi = int(inside[0]), int(inside[-1])
    out = (d - np.uint8(lo)) > np.uint8(hi - lo)
    for hole in np.flatnonzero(~allowed[lo : hi + 1]):
        out |= d == np.uint8(lo + hole)
    return out


def _not_plain_id(arr: pa.Array) -> np.ndarray:
    """Per value: True unless its bytes plainly spell an identifier (an empty value is plain)."""
    n = len(arr)
    _, offsets, data = arr.buffers()
    o = np.frombuffer(offsets, dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    base, size = int(o[0]), int(o[-1] - o[0])
    out = np.zeros(n, dtype=bool)
    if size == 0:
        return out
    d = np.frombuffer(data, dtype=np.uint8, count=size, offset=base)
    starts, ends = o[:-1] - base, o[1:] - base
    foreign = ~_ID_BYTES[d]
    if foreign.any():
        out[np.searchsorted(ends, np.flatnonzero(foreign), side="right")] = True
    empty = ends == starts
    first = d[np.where(empty, 0, starts)]
    out |= ~empty & (~_ALNUM[first] | (ends - starts > ID_MAX))
    return out
