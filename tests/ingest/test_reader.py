"""Bytes to rows: headers, BOM, dialects, accents and exact physical line numbers."""

from __future__ import annotations

import copy

import pytest

from cobranza.contract import BANK_LATIN1, FILES_BY_STEM, STANDARD
from cobranza.ingest import IngestError, ingest_extract
from cobranza.ingest.reader import Parsed, fingerprint, read_header, stream_batches
from tests.ingest.conftest import BASE_ROWS, HEADERS, write_extract
from tests.ingest.test_validate import quarantine, raw_rows


def _lines(path, stem="installments", dialect=STANDARD):
    spec = FILES_BY_STEM[stem]
    header = read_header(path, spec, dialect)
    parsed = Parsed()
    batches = list(stream_batches(path, spec, header, dialect, fingerprint(path), parsed))
    good = [
        (line, row)
        for b in batches
        for line, row in zip(b.column("_line").to_pylist(), b.column("c0").to_pylist(), strict=True)
    ]
    assert parsed.line_drift == 0
    return good, [(bad.line, bad.fields) for bad in parsed.bad]


def test_line_numbers_survive_blank_lines_quoted_newlines_and_bad_rows(tmp_path):
    path = tmp_path / "installments.csv"
    path.write_bytes(
        b"obligation_id,installment_no,due_date,amount_due\n"  # 1
        b"O1,1,2023-02-15,10\n"  # 2
        b"\n"  # 3 blank
        b'"O\n1",2,2023-03-15,10\n'  # 4-5 quoted newline
        b"O1,3\n"  # 6 too few fields
        b"\r\n"  # 7 blank (CRLF)
        b'O1,4,2023-05-15,"1\n0"\n'  # 8-9
        b'"bad\nrow",1,2,3,4\n'  # 10-11 too many fields
        b"O1,5,2023-06-15,10\n"  # 12
        b"\n\n"  # 13-14 blank
        b"O1,6,2023-07-15,10"  # 15, no final newline
    )
    good, bad = _lines(path)
    assert [line for line, _ in good] == [2, 4, 8, 12, 15]
    assert bad == [(6, 2), (10, 5)]


def test_line_numbers_across_parser_blocks(tmp_path, monkeypatch):
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 64)  # many tiny blocks
    rows = [f"O{i},1,2023-02-15,10\n".encode() for i in range(200)]
    rows[50] = b"O50,1\n"
    rows[120] = b"\n"
    path = tmp_path / "installments.csv"
    path.write_bytes(b"obligation_id,installment_no,due_date,amount_due\n" + b"".join(rows))
    good, bad = _lines(path)
    expected = [i + 2 for i in range(200) if i not in (50, 120)]
    assert [line for line, _ in good] == expected
    assert [row for _, row in good] == [f"O{i}" for i in range(200) if i not in (50, 120)]
    assert bad == [(52, 2)]


def test_line_numbers_with_many_bad_rows_and_newlines_across_blocks(tmp_path, monkeypatch):
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 128)
    rng = __import__("random").Random(5)
    text = [b"obligation_id,installment_no,due_date,amount_due\n"]
    line = 2
    expected_good, expected_bad = [], []
    for i in range(400):
        kind = rng.random()
        if kind < 0.15:  # too few fields
            text.append(f"B{i},1\n".encode())
            expected_bad.append(line)
            line += 1
        elif kind < 0.25:  # quoted newline inside a good record
            text.append(f'"G{i}\nx",1,2023-02-15,10\n'.encode())
            expected_good.append((line, f"G{i}\nx"))
            line += 2
        elif kind < 0.30:  # quoted newline inside a bad record
            text.append(f'"B{i}\nx",1\n'.encode())
            expected_bad.append(line)
            line += 2
        elif kind < 0.35:  # blank line
            text.append(b"\n")
            line += 1
        else:
            text.append(f"G{i},1,2023-02-15,10\n".encode())
            expected_good.append((line, f"G{i}"))
            line += 1
    path = tmp_path / "installments.csv"
    path.write_bytes(b"".join(text))
    good, bad = _lines(path)
    assert good == expected_good
    assert [b for b, _ in bad] == expected_bad


def test_bom_case_and_spaces_in_header_and_extra_columns_kept(tmp_path, settings):
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "payments.csv"
    lines = path.read_text().splitlines()
    header = " Payment_ID ,OBLIGATION_ID,Payment_Ts,  amount,Channel , Branch_Code"
    body = [f"{line},B{i}" for i, line in enumerate(lines[1:])]
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join([header, *body]).encode() + b"\n")
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["payments.csv"]["rows_accepted"] == 2
    rows = raw_rows(settings, "payments")
    assert list(rows[0]) == [*HEADERS["payments"], "branch_code", "_line"]
    assert [r["branch_code"] for r in rows] == ["B0", "B1"]
    assert rows[0]["payment_id"] == "P1"
    assert any("branch_code" in w for w in report["warnings"])


def test_latin1_dialect_round_trips_accents(tmp_path, settings):
    rows = copy.deepcopy(BASE_ROWS)
    rows["clients"][0][3] = "Ñoño Muñoz Ávila"
    extract = write_extract(tmp_path / "x", dialect=BANK_LATIN1, rows=rows)
    assert "Ñoño".encode("latin-1") in (extract / "clients.csv").read_bytes()
    report = ingest_extract(settings, extract, BANK_LATIN1)
    assert all(f["rows_quarantined"] == 0 for f in report["files"].values())
    clients = raw_rows(settings, "clients")
    assert clients[0]["full_name"] == "Ñoño Muñoz Ávila"
    assert clients[1]["city"] == "Medellín"
    assert clients[0]["monthly_income"] == pytest.approx(3500000.5)
    assert str(clients[0]["birth_date"]) == "1980-05-01"
    payments = raw_rows(settings, "payments")
    assert str(payments[0]["payment_ts"]) == "2023-02-15 08:00:00"


def test_wrong_delimiter_is_never_guessed(tmp_path, settings):
    extract = write_extract(tmp_path / "x", dialect=BANK_LATIN1)
    with pytest.raises(IngestError) as err:
        ingest_extract(settings, extract, STANDARD)
    msg = str(err.value)
    assert msg.startswith("clients.csv:")
    assert "single column" in msg
    assert "--dialect bank-latin1" in msg


def test_standard_file_read_as_bank_dialect_suggests_standard(tmp_path, settings):
    extract = write_extract(tmp_path / "x")
    with pytest.raises(IngestError, match=r"clients\.csv: .*--dialect standard"):
        ingest_extract(settings, extract, BANK_LATIN1)


def test_decimal_with_dot_in_comma_dialect_is_a_type_error(tmp_path, settings):
    rows = copy.deepcopy(BASE_ROWS)
    extract = write_extract(tmp_path / "x", dialect=BANK_LATIN1, rows=rows, manifest=False)
    path = extract / "collection_actions.csv"
    text = path.read_text(encoding="latin-1").replace(";8000\n", ";8.000\n")
    path.write_text(text, encoding="latin-1")
    ingest_extract(settings, extract, BANK_LATIN1)
    assert quarantine(settings) == {
        ("collection_actions.csv", 2, "cost", "not a valid decimal number")
    }


def test_dialect_from_toml_file(tmp_path, settings):
    from cobranza.contract import load_dialect

    toml = tmp_path / "pipes.toml"
    toml.write_text(
        '[dialect]\ndelimiter = "|"\nencoding = "cp1252"\ndecimal = ","\n'
        'date_format = "%d.%m.%Y"\ntimestamp_format = "%d.%m.%Y %H:%M:%S"\n'
    )
    dialect = load_dialect(str(toml))
    rows = copy.deepcopy(BASE_ROWS)
    rows["clients"][0][3] = "José Ñáñez"
    extract = write_extract(tmp_path / "x", dialect=dialect, rows=rows)
    assert b"|" in (extract / "clients.csv").read_bytes().splitlines()[0]
    report = ingest_extract(settings, extract, dialect)
    assert report["dialect"] == "pipes"
    assert report["rows_quarantined"] == 0
    clients = raw_rows(settings, "clients")
    assert clients[0]["full_name"] == "José Ñáñez"
    assert str(clients[0]["customer_since"]) == "2015-01-10"
    assert clients[0]["monthly_income"] == pytest.approx(3500000.5)


def test_as_of_without_manifest_is_the_last_cut_date(tmp_path, settings):
    from cobranza.lake import Lake

    extract = write_extract(tmp_path / "x", manifest=False)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["as_of"] == "2023-03-31"  # the last cut_date in portfolio_cuts.csv
    info = Lake(settings.lake).run_info("raw")
    assert info["as_of"] == "2023-03-31"
    assert info["manifest"] is False
    assert len(info["inputs"]["clients.csv"]["sha256"]) == 64


def test_empty_line_inside_a_quoted_value_is_reported(tmp_path, settings):
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "clients.csv"
    text = path.read_text()
    path.write_text(text.replace("Ana Pérez", '"Ana\n\nPérez"'))
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["clients.csv"]["rows_accepted"] == 3
    assert any("clients.csv: empty lines inside quoted values" in w for w in report["warnings"])
    assert raw_rows(settings, "clients")[0]["full_name"] == "Ana\n\nPérez"


def test_dates_in_another_format_are_quarantined_with_a_dialect_warning(tmp_path, settings):
    from cobranza.contract import Dialect

    day_first = Dialect(
        name="day-first", date_format="%d/%m/%Y", timestamp_format="%d/%m/%Y %H:%M:%S"
    )
    extract = write_extract(tmp_path / "x", dialect=day_first)
    report = ingest_extract(settings, extract, STANDARD)  # the wrong dialect: nothing is lost
    clients = report["files"]["clients.csv"]
    assert clients["rows_accepted"] == 0
    assert clients["rows_quarantined"] == clients["rows_read"] == 3
    assert any(
        w.startswith("clients.csv: 100% of column customer_since is not a valid date")
        and w.endswith("is the dialect right?")
        for w in report["warnings"]
    )
