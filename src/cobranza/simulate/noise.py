"""Bad-input injection: the contract's defect cases, each recorded with file, line and column.

Defects never corrupt a real row: a bad row is an *inserted* copy of a real row with a fresh key
and exactly one defect, so the clean data (and the ground truth) survive ingestion intact. The
exceptions are the contract's duplicate cases: an exact duplicate (collapses to one) and, in files
no other file references, a conflicting duplicate (same key, one value changed: both lines are
quarantined). Files others reference (clients, obligations, debit_mandates) get no conflicting
duplicates, so quarantine never cascades to dependent rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cobranza.contract import Dialect, FileSpec

REFERENCED = ("clients", "obligations", "debit_mandates")
# Strings no CSV reader treats as null (avoid "N/A", "NA", "null", "nan", "").
NON_NUMERIC = ("abc", "12a0", "uno", "$-")
UNKNOWN_ENUM = ("OTRO", "DESCONOCIDO", "XX")
BAD_DATES = ("fecha", "99/99/9999", "2026-13-45")


def kinds_for(spec: FileSpec) -> dict[str, list[str]]:
    """Applicable columns per defect kind for one file (a kind with no column is left out)."""
    cols = spec.columns
    non_key = [c for c in cols if c.name not in spec.key]
    out: dict[str, list[str]] = {
        "duplicate": [""],
        "missing_required": [c.name for c in cols if c.required],
        "bad_date": [c.name for c in cols if c.type in ("date", "timestamp")],
        "unknown_enum": [c.name for c in cols if c.allowed],
        "non_numeric": [c.name for c in cols if c.type in ("decimal", "integer")],
        "negative_amount": [
            c.name
            for c in cols
            if c.type in ("decimal", "integer") and c.minimum is not None and c.minimum >= 0
        ],
        "broken_reference": [c.name for c in cols if c.references],
    }
    if spec.stem not in REFERENCED:
        out["conflicting_duplicate"] = [
            c.name for c in non_key if c.required and (c.allowed or c.type == "decimal")
        ]
    return {k: v for k, v in out.items() if v}


def _bad_date(dialect: Dialect, kind: str, rng: np.random.Generator) -> str:
    feb30 = "30/02/2026" if dialect.date_format.startswith("%d") else "2026-02-30"
    value = (feb30, *BAD_DATES)[rng.integers(0, 1 + len(BAD_DATES))]
    return value + (" 10:00:00" if kind == "timestamp" else "")


def _fresh_key(spec: FileSpec, row: dict, serial: int, dialect: Dialect) -> None:
    """Give an inserted row a key no real row has."""
    if spec.stem == "installments":
        row["installment_no"] = str(9000 + serial)
    elif spec.stem == "portfolio_cuts":
        day = np.datetime64("2001-01-01") + serial
        row["cut_date"] = day.astype(object).strftime(dialect.date_format)
    elif spec.stem == "account_monthly":
        row["account_id"] = f"AN{serial:08d}"
    else:
        key = spec.key[0]
        prefix = "".join(ch for ch in (row[key] or "X")[:2] if ch.isalpha()) or "X"
        row[key] = f"{prefix}N{serial:08d}"


def inject(
    spec: FileSpec,
    table: pa.Table,
    rate: float,
    rng: np.random.Generator,
    dialect: Dialect,
    first_line: int,
    serial_start: int,
) -> tuple[pa.Table, list[dict], int]:
    """Insert defect rows into a chunk's all-string table.

    Returns the new table, the defects ({line, column, kind}, line numbers in the written file
    where `first_line` is the line of the chunk's first row) and the next serial number.
    """
    n = table.num_rows
    k = int(rng.binomial(n, rate)) if n and rate > 0 else 0
    if k == 0:
        return table, [], serial_start
    kinds = kinds_for(spec)
    names = sorted(kinds)
    src = np.sort(rng.choice(n, size=k, replace=False))
    rows = table.take(pa.array(src)).to_pylist()
    types = {c.name: c for c in spec.columns}
    new_rows: list[dict] = []
    records: list[tuple[int, str, str, int | None]] = []  # (source, column, kind, source-too?)
    serial = serial_start
    for s, row in zip(src, rows, strict=True):
        kind = names[rng.integers(0, len(names))]
        col = kinds[kind][rng.integers(0, len(kinds[kind]))]
        row = dict(row)
        if kind == "duplicate":
            pass
        elif kind == "conflicting_duplicate":
            c = types[col]
            if c.allowed:
                others = [v for v in c.allowed if v != row[col]]
                row[col] = others[rng.integers(0, len(others))]
            else:
                sep = dialect.decimal
                whole, _, frac = (row[col] or "0").partition(sep)
                row[col] = str(int(whole) + 100) + (sep + frac if frac else "")
        else:
            serial += 1
            _fresh_key(spec, row, serial, dialect)
            c = types[col]
            if kind == "missing_required":
                row[col] = None
            elif kind == "bad_date":
                row[col] = _bad_date(dialect, c.type, rng)
            elif kind == "unknown_enum":
                row[col] = UNKNOWN_ENUM[rng.integers(0, len(UNKNOWN_ENUM))]
            elif kind == "non_numeric":
                row[col] = NON_NUMERIC[rng.integers(0, len(NON_NUMERIC))]
            elif kind == "negative_amount":
                value = row[col] or "100"
                row[col] = "-" + (
                    value if value not in ("0", "0" + dialect.decimal + "00") else "5"
                )
            elif kind == "broken_reference":
                prefix = {"clients": "C", "obligations": "O", "debit_mandates": "M"}
                row[col] = f"{prefix.get(c.references[0], 'Z')}X{serial:08d}"
        new_rows.append(row)
        records.append((int(s), col, kind, 1 if kind == "conflicting_duplicate" else None))
    extra = pa.Table.from_pylist(new_rows, schema=table.schema)
    merged = pa.concat_tables([table, extra])
    position = np.concatenate([np.arange(n, dtype=float), src + 0.5])
    order = np.argsort(position, kind="stable")
    final_pos = np.empty(len(order), np.int64)
    final_pos[order] = np.arange(len(order))
    defects: list[dict] = []
    for j, (s, col, kind, both) in enumerate(records):
        line = first_line + int(final_pos[n + j])
        defects.append({"line": line, "column": col or None, "kind": kind})
        if both:
            defects.append({"line": first_line + int(final_pos[s]), "column": col, "kind": kind})
    return merged.take(pa.array(order)), defects, serial
