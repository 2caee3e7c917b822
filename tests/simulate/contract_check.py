"""An independent, plain-Python reading of an extract against the contract, for the tests.

Finds every defect the contract names (per file: line -> set of kinds) without using the
simulator's code, so that it can check both that clean extracts are clean and that the recorded
injected defects are exactly the ones present; and computes every early-delinquency row's
outcomes (version 2: self_cure_debit, cured through any channel, roll to 31+, amount recovered)
from the files alone, to check they are the outcomes the simulator drew.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from cobranza.contract import DEBIT_CHANNEL, FILES_BY_STEM, Dialect
from cobranza.simulate import extract_files


def read_rows(path: Path, dialect: Dialect) -> tuple[list[str], list[list[str]]]:
    with _open_text(path, dialect) as f:
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
    for spec in extract_files():
        path = folder / spec.filename
        header, rows = read_rows(path if path.exists() else folder / f"{spec.filename}.gz", dialect)
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
        found[path.name if path.exists() else f"{spec.filename}.gz"] = bad
        valid_rows[spec.stem] = [(ln, r) for ln, r in good if ln not in bad]
    keys: dict[tuple[str, str], set[str]] = {}
    for spec in extract_files():
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


def _open_text(path: Path, dialect: Dialect):
    """A delivered file as text: NAME.csv, or NAME.csv.gz read through gzip."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding=dialect.encoding, newline="")
    return path.open(encoding=dialect.encoding, newline="")


def read_table(folder: Path, stem: str, dialect: Dialect) -> list[dict[str, str]]:
    """Rows of one extract file as dicts (NAME.csv or NAME.csv.gz, whichever was delivered)."""
    path = folder / f"{stem}.csv"
    if not path.exists():
        path = folder / f"{stem}.csv.gz"
    with _open_text(path, dialect) as f:
        reader = csv.reader(f, delimiter=dialect.delimiter, quotechar=dialect.quote)
        header = next(reader)
        return [dict(zip(header, row, strict=True)) for row in reader]


def _day(value: str, dialect: Dialect) -> date:
    return datetime.strptime(value[:10], dialect.date_format).date()


def _money(value: str, dialect: Dialect) -> float:
    return float(value.replace(dialect.decimal, "."))


def outcomes_from_files(folder: Path, dialect: Dialect, horizon: int = 30) -> dict[tuple, dict]:
    """Every early-delinquency row's outcomes as the contract defines them, from the files alone.

    Key (cut_date ISO, obligation_id) -> eligible, labeled, self_cure_debit, cure_any,
    roll_31_plus (None without a later cut, unless charged off or paid off before it),
    amount_recovered. A payment reversed on or before the end of the horizon is left out of the
    horizon entirely (it neither covers nor breaks "every payment is RECURRING_DEBIT").
    """
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    as_of = date.fromisoformat(manifest["as_of"])
    cuts: dict[str, list[tuple[date, int, float]]] = defaultdict(list)
    for r in read_table(folder, "portfolio_cuts", dialect):
        cuts[r["obligation_id"]].append(
            (
                _day(r["cut_date"], dialect),
                int(r["days_past_due"]),
                _money(r["amount_past_due"], dialect),
            )
        )
    mandates: dict[str, list[tuple[date, date | None, str]]] = defaultdict(list)
    for r in read_table(folder, "debit_mandates", dialect):
        end = _day(r["end_date"], dialect) if r["end_date"] else None
        mandates[r["obligation_id"]].append((_day(r["start_date"], dialect), end, r["status"]))
    obligations = {r["obligation_id"]: r for r in read_table(folder, "obligations", dialect)}
    payments: dict[str, list[tuple[date, float, str, date | None]]] = defaultdict(list)
    for r in read_table(folder, "payments", dialect):
        rev = _day(r["reversed_ts"], dialect) if r.get("reversed_ts") else None
        payments[r["obligation_id"]].append(
            (_day(r["payment_ts"], dialect), _money(r["amount"], dialect), r["channel"], rev)
        )
    out: dict[tuple, dict] = {}
    for oid, rows in cuts.items():
        rows.sort()
        for k, (d, dpd, apd) in enumerate(rows):
            if not 1 <= dpd <= 30:
                continue
            end = d + timedelta(days=horizon)
            eligible = any(
                s <= d and (e is None or e > d) and (d < as_of or st == "ACTIVE")
                for s, e, st in mandates[oid]
            )
            inside = [
                (amt, ch)
                for day, amt, ch, rev in payments[oid]
                if d < day <= end and not (rev is not None and rev <= end)
            ]
            paid = sum(amt for amt, _ in inside)
            cure_any = paid >= apd - 0.005
            roll = None
            if k + 1 < len(rows):
                roll = rows[k + 1][1] >= 31
            else:
                ob = obligations[oid]
                if ob["status"] == "WRITTEN_OFF":
                    roll = True
                elif ob["status"] == "CLOSED" and ob["closed_date"]:
                    roll = False
            out[(d.isoformat(), oid)] = {
                "eligible": eligible,
                "labeled": end <= as_of,
                "self_cure_debit": cure_any and all(ch == DEBIT_CHANNEL for _, ch in inside),
                "cure_any": cure_any,
                "roll_31_plus": roll,
                "amount_recovered": min(paid, apd),
            }
    return out
