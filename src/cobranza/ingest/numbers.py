"""The bulk screen of number cells: most are vouched for here, only the rest pay for a regex.

The contract's number rule is a regular expression, and DuckDB's regex costs ~40 ns a cell, a few
percent of a whole ingest. `number_screen` marks, per parsed batch, the cells whose bytes it cannot
vouch for as plainly a number; `rules.typed_sql` applies the regex only to those
(`number_unsure_sql`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cobranza.contract import Dialect, FileSpec
from cobranza.ingest.header import Header

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


def number_screen(batch: pa.RecordBatch, numeric: list[tuple[int, int, np.ndarray]]) -> np.ndarray:
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
