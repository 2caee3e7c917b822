"""An independent, plain-Python reading of an extract against the contract, for the tests.

Finds every defect the contract names (per file: line -> set of kinds) without using the
simulator's code, so that it can check both that clean extracts are clean and that the recorded
injected defects are exactly the ones present.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from cobranza.contract import FILES_BY_STEM, Dialect
from cobranza.simulate import FILES


def read_rows(path: Path, dialect: Dialect) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding=dialect.encoding, newline="") as f:
        reader = csv.reader(f, delimiter=dialect.delimiter, quotechar=dialect.quote)
        header = next(reader)
        return header, list(reader)


@lru_cache(maxsize=200_000)
def _parses(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def _is_timestamp(value: str, dialect: Dialect) -> bool:
    """Date part and time part checked separately so that each distinct part is parsed once."""
    fmt = dialect.timestamp_format
    if fmt == dialect.date_format + " %H:%M:%S" and len(value) == 19:
        return _parses(value[:10], dialect.date_format) and _parses(value[10:], " %H:%M:%S")
    return _parses(value, fmt)


def _value_defect(col, value: str, dialect: Dialect) -> str | None:
    if value == "":
        return "missing_required" if col.required else None
    if col.type == "date":
        return None if _parses(value, dialect.date_format) else "bad_date"
    if col.type == "timestamp":
        return None if _is_timestamp(value, dialect) else "bad_date"
    if col.type in ("decimal", "integer"):
        text = value.replace(dialect.decimal, ".") if col.type == "decimal" else value
        try:
            number = float(text) if col.type == "decimal" else int(text)
        except ValueError:
            return "non_numeric"
        if col.minimum is not None and (
            number < col.minimum or (col.exclusive_minimum and number == col.minimum)
        ):
            return "negative_amount"
        if col.maximum is not None and number > col.maximum:
            return "out_of_range"
        return None
    if col.allowed and value not in col.allowed:
        return "unknown_enum"
    return None


def find_defects(folder: Path, dialect: Dialect) -> dict[str, dict[int, set[str]]]:
    """Per file name: {line: {kinds}}; line 1 is the header. Raises on a wrong header."""
    found: dict[str, dict[int, set[str]]] = {}
    valid_rows: dict[str, list[tuple[int, list[str]]]] = {}
    for spec in FILES:
        header, rows = read_rows(folder / spec.filename, dialect)
        assert header == list(spec.column_names), f"{spec.filename}: header {header}"
        bad: dict[int, set[str]] = defaultdict(set)
        good: list[tuple[int, list[str]]] = []
        for i, row in enumerate(rows):
            line = i + 2
            assert len(row) == len(spec.columns), f"{spec.filename}:{line}: {len(row)} fields"
            for col, value in zip(spec.columns, row, strict=True):
                kind = _value_defect(col, value, dialect)
                if kind:
                    bad[line].add(kind)
            if line not in bad:
                good.append((line, row))
        by_key: dict[tuple, list[tuple[int, list[str]]]] = defaultdict(list)
        key_idx = [spec.column_names.index(k) for k in spec.key]
        for line, row in good:
            by_key[tuple(row[j] for j in key_idx)].append((line, row))
        for group in by_key.values():
            if len(group) < 2:
                continue
            distinct = {tuple(r) for _, r in group}
            if len(distinct) == 1:
                for line, _ in group[1:]:
                    bad[line].add("duplicate")
            else:
                for line, _ in group:
                    bad[line].add("conflicting_duplicate")
        found[spec.filename] = bad
        valid_rows[spec.stem] = [(ln, r) for ln, r in good if ln not in bad]
    keys: dict[tuple[str, str], set[str]] = {}
    for spec in FILES:
        for col, ref_stem, ref_col in spec.references:
            ref = FILES_BY_STEM[ref_stem]
            if (ref_stem, ref_col) not in keys:
                j = ref.column_names.index(ref_col)
                keys[(ref_stem, ref_col)] = {r[j] for _, r in valid_rows[ref_stem]}
            j = spec.column_names.index(col)
            for line, row in valid_rows[spec.stem]:
                if row[j] not in keys[(ref_stem, ref_col)]:
                    found[spec.filename][line].add("broken_reference")
    return {name: dict(lines) for name, lines in found.items()}
