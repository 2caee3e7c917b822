"""The one CSV writer: formula injection neutralised, numbers rounded, Excel's formats."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from cobranza.export import EXCEL_ES, PLAIN, csv_bytes, csv_format, number, safe_text


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_text_starting_like_a_formula_is_prefixed(start):
    text = f'{start}HYPERLINK("http://x","y")'
    assert safe_text(text) == "'" + text
    body = csv_bytes(["product"], [[text]]).decode("utf-8")
    (row,) = list(csv.DictReader(io.StringIO(body)))
    assert row["product"] == "'" + text


def test_ordinary_text_and_numbers_are_untouched():
    assert safe_text("CONSUMER_LOAN") == "CONSUMER_LOAN"
    assert safe_text("a=b") == "a=b"
    body = csv_bytes(["x", "y", "z"], [[-0.25, -3, "texto"]], digits={"x": 4}).decode("utf-8")
    assert body.splitlines()[1] == "-0.25,-3,texto"


def test_numbers_are_rounded_without_exponent_or_trailing_zeros():
    assert number(0.1 + 0.2, 6) == "0.3"
    assert number(1234567.891, 2) == "1234567.89"
    assert number(1e-9, 6) == "0"
    assert number(-1e-9, 6) == "0"
    assert number(2.5e20, 2) == "250000000000000000000"
    assert number(float("nan"), 2) == ""
    assert number(12.345, 1, ",") == "12,3"


def test_excel_format_has_bom_semicolons_and_decimal_commas():
    assert csv_format(";") == csv_format(";", False) and csv_format(";").decimal == ","
    body = csv_bytes(
        ["Monto", "Prob", "Corte", "Activo"],
        [[1234.5, 0.12345, date(2025, 6, 30), True], [None, 1.0, None, False]],
        EXCEL_ES,
        digits={"Prob": 3},
    )
    text = body.decode("utf-8")
    assert text.startswith("\ufeff")
    lines = text.lstrip("\ufeff").splitlines()
    assert lines == ["Monto;Prob;Corte;Activo", "1234,5;0,123;2025-06-30;True", ";1;;False"]
    assert not csv_bytes(["a"], [[1]], PLAIN).startswith(b"\xef\xbb\xbf")


def test_a_separator_equal_to_the_decimal_mark_is_refused():
    from cobranza.export import CsvFormat

    with pytest.raises(ValueError):
        CsvFormat(sep=",", decimal=",")
