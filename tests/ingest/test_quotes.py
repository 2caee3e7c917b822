"""Quotes that never close fail naming the line where they opened; multi-line values still read."""

from __future__ import annotations

import copy
import re

import pytest

from cobranza.contract import STANDARD
from cobranza.ingest import ingest_extract
from cobranza.ingest.assignments import V1_WARNING
from tests.ingest.conftest import BASE_ROWS, fails_publishing_nothing, write_extract
from tests.ingest.test_validate import quarantine, raw_rows


def _open_last_field(line: str) -> str:
    """`...,BRANCH` becomes `...,"BRANCH`: an opening quote with no closing one."""
    return re.sub(r",([A-Z_]+)$", r',"\1', line)


def _payments_lines(extract) -> list[str]:
    rows = [
        f"P{i},O1,2023-02-15 08:00:00,{1000 + i},{'BRANCH' if i % 2 else 'DIGITAL'}"
        for i in range(1, 40)
    ]
    path = extract / "payments.csv"
    path.write_text("payment_id,obligation_id,payment_ts,amount,channel\n" + "\n".join(rows) + "\n")
    return path.read_text().split("\n")


@pytest.mark.parametrize(
    ("line", "edit"),
    [
        (10, lambda t: _open_last_field(t)),  # last field: a record of 5 fields
        (10, lambda t: t.replace(",O1,", ',"O1,', 1)),  # second field: too few fields
        (39, lambda t: _open_last_field(t)),  # second-to-last line: swallows the last
    ],
    ids=["last-field", "middle-field", "second-to-last-line"],
)
def test_unbalanced_quote_fails_naming_the_line_where_it_opens(
    tmp_path, settings, published, line, edit
):
    extract = write_extract(tmp_path / "x", manifest=False)
    lines = _payments_lines(extract)
    lines[line - 1] = edit(lines[line - 1])
    (extract / "payments.csv").write_text("\n".join(lines))
    msg = fails_publishing_nothing(
        settings,
        extract,
        rf"^payments\.csv: the quote opened at line {line} is not closed",
        published,
    )
    assert "records swallowed into one value" in msg


@pytest.mark.parametrize("ending", ["\n", ""], ids=["newline", "no-final-newline"])
def test_quote_left_open_on_the_last_line_fails(tmp_path, settings, published, ending):
    extract = write_extract(tmp_path / "x", manifest=False)
    lines = _payments_lines(extract)[:40]
    lines[39] = _open_last_field(lines[39])  # line 40, the last record
    (extract / "payments.csv").write_text("\n".join(lines) + ending)
    fails_publishing_nothing(
        settings,
        extract,
        r"^payments\.csv: the quote opened at line 40 is never closed: the file ends inside it",
        published,
    )


def test_value_over_too_many_lines_fails(tmp_path, settings, published):
    from cobranza.ingest.reader import MAX_RECORD_LINES

    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "clients.csv"
    text = path.read_text()
    path.write_text(text.replace("Ana Pérez", '"' + "Ana\n" * (MAX_RECORD_LINES + 5) + '"'))
    fails_publishing_nothing(
        settings,
        extract,
        rf"^clients\.csv: the quote opened at line 2 .* runs over {MAX_RECORD_LINES + 6} lines",
        published,
    )


def test_quote_left_open_in_a_file_larger_than_the_parser_block(
    tmp_path, settings, published, monkeypatch
):
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 1024)  # the swallowed value outgrows every block
    monkeypatch.setattr(reader, "MAX_BLOCK", 4096)
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "installments.csv"
    body = [f"O1,{i},2023-02-15,10" for i in range(1, 600)]
    body[99] = 'O1,100,2023-02-15,"10'  # line 101
    path.write_text("obligation_id,installment_no,due_date,amount_due\n" + "\n".join(body) + "\n")
    fails_publishing_nothing(
        settings,
        extract,
        r"^installments\.csv: the quote opened at line 101 is not closed",
        published,
    )


def test_multi_line_address_without_record_like_lines_is_a_value(tmp_path, settings):
    """D1's check leaves legitimate multi-line values alone, commas included."""
    rows = copy.deepcopy(BASE_ROWS)
    rows["clients"][0][6] = "Calle 10 # 5-20, apto 301\nTorre 2, Barrio Chicó\n\nBogotá, D.C."
    rows["clients"][1][5] = "Q"  # gender not allowed on the next record: line 6
    extract = write_extract(tmp_path / "x", rows=rows, manifest=False)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["clients.csv"]["rows_accepted"] == 2
    assert report["warnings"] == [V1_WARNING]  # a version-1 extract: nothing else to say
    clients = raw_rows(settings, "clients")
    assert clients[0]["city"] == rows["clients"][0][6]
    assert [c["_line"] for c in clients] == [2, 7]
    assert ("clients.csv", 6, "gender", "not an allowed value") in quarantine(settings)
