"""Every CSV the service writes goes through `csv_bytes`: safe cells, rounded numbers, Excel's way.

- Formula injection (OWASP "CSV Injection"): a text cell that starts with `=`, `+`, `-`, `@`, a tab
  or a carriage return is written with a leading `'`, so a spreadsheet shows it as text instead of
  running it. Numbers are written as numbers (a negative contribution stays `-0.25`): a number
  cannot carry a formula, and only text from the data (a product name, a reason) can.
- Numbers are rounded per column (`digits`), written without exponent and without trailing zeros:
  no `0.30000000000000004` in a file a person opens.
- `CsvFormat`: the separator and decimal mark, and whether a UTF-8 BOM leads the file (Excel
  reads a file without one as ANSI and breaks "días"). `EXCEL_ES` is what Excel expects where the
  decimal mark is a comma (Colombia): `;` between cells, `,` in numbers, BOM.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


@dataclass(frozen=True)
class CsvFormat:
    sep: str = ","
    decimal: str = "."
    bom: bool = False

    def __post_init__(self) -> None:
        if self.sep == self.decimal:
            raise ValueError("the separator and the decimal mark must differ")


PLAIN = CsvFormat()
EXCEL = CsvFormat(bom=True)
EXCEL_ES = CsvFormat(sep=";", decimal=",", bom=True)


def csv_format(sep: str = ",", bom: bool = False) -> CsvFormat:
    """`;` goes with the decimal comma (the regional setting that makes Excel expect `;`)."""
    return CsvFormat(sep=sep, decimal="," if sep == ";" else ".", bom=bom)


def safe_text(text: str) -> str:
    """A text cell a spreadsheet cannot run: a leading formula character gets a `'` before it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def number(value: float | int, digits: int | None = None, decimal: str = ".") -> str:
    """A number as plain digits: rounded to `digits`, no exponent, no trailing zeros."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return ""
    places = 6 if digits is None else digits
    text = f"{round(float(value), places):.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text.replace(".", decimal)


def cell(value: Any, digits: int | None = None, fmt: CsvFormat = PLAIN) -> str:
    """One value as the text of its cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return number(value, digits, fmt.decimal)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return cell(value.item(), digits, fmt)
    return safe_text(str(value))


def csv_bytes(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    fmt: CsvFormat = PLAIN,
    digits: Mapping[str, int] | None = None,
    with_header: bool = True,
) -> bytes:
    """The CSV file (UTF-8, `\\n` line ends, quotes only where needed) of `rows` under `header`."""
    digits = digits or {}
    places = [digits.get(name) for name in header]
    buf = io.StringIO()
    if fmt.bom and with_header:
        buf.write(BOM)
    writer = csv.writer(buf, delimiter=fmt.sep, lineterminator="\n")
    if with_header:
        writer.writerow([safe_text(str(name)) for name in header])
    for row in rows:
        writer.writerow([cell(v, d, fmt) for v, d in zip(row, places, strict=True)])
    return buf.getvalue().encode("utf-8")
