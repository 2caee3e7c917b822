"""Bytes to rows: headers, BOM, dialects, accents and exact physical line numbers."""

from __future__ import annotations

import copy

import pytest

from cobranza.contract import BANK_LATIN1, FILES_BY_STEM, STANDARD
from cobranza.ingest import ingest_extract
from cobranza.ingest.reader import Parsed, fingerprint, read_header, stream_batches
from tests.ingest.conftest import BASE_ROWS, fails_publishing_nothing, write_extract
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


def test_empty_line_inside_a_quoted_value_keeps_line_numbers_exact(tmp_path, settings):
    """D5: an empty line inside a quoted value is part of the value, not a skipped blank line."""
    rows = copy.deepcopy(BASE_ROWS)
    rows["clients"][1][5] = "Q"  # gender not allowed: line 6, once the first record spans 2-5
    extract = write_extract(tmp_path / "x", rows=rows, manifest=False)
    path = extract / "clients.csv"
    text = path.read_text()
    path.write_text(text.replace("Ana Pérez", '"Ana\n\n\nPérez"') + "\n")  # and a blank at the end
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["clients.csv"]["rows_read"] == 3
    assert report["files"]["clients.csv"]["rows_accepted"] == 2
    assert not any("line numbers" in w for w in report["warnings"])
    assert raw_rows(settings, "clients")[0]["full_name"] == "Ana\n\n\nPérez"
    assert [r["_line"] for r in raw_rows(settings, "clients")] == [2, 7]
    clients_q = {q for q in quarantine(settings) if q[0] == "clients.csv"}
    assert clients_q == {("clients.csv", 6, "gender", "not an allowed value")}
    lines = path.read_text().split("\n")
    assert lines[5].startswith("C2,")  # line 6 as an editor shows it


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


def test_empty_lines_inside_quoted_values_across_blocks_are_exact(tmp_path, monkeypatch):
    """D5 at the parser level: quoted empty lines, blank lines, CRLF, tiny blocks."""
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 64)
    text = [b"obligation_id,installment_no,due_date,amount_due\n"]  # 1
    expected_good, expected_bad, line = [], [], 2
    for i in range(60):
        if i % 7 == 3:  # a value holding two empty lines: 3 physical lines
            text.append(f'"G{i}\n\n",1,2023-02-15,10\r\n'.encode())
            expected_good.append((line, f"G{i}\n\n"))
            line += 3
        elif i % 7 == 5:  # a blank line between records, then a bad one with an empty line
            text.append(f'\n"B{i}\n\nx",1\n'.encode())
            expected_bad.append(line + 1)
            line += 4
        else:
            text.append(f"G{i},1,2023-02-15,10\n".encode())
            expected_good.append((line, f"G{i}"))
            line += 1
    text.append(b"\n\r\n")  # trailing blank lines
    path = tmp_path / "installments.csv"
    path.write_bytes(b"".join(text))
    good, bad = _lines(path)
    assert good == expected_good
    assert [b for b, _ in bad] == expected_bad


def test_a_record_longer_than_the_parser_block_is_read_whole(tmp_path, settings):
    """D6: 2.2 MB in one cell (the 1 MiB block fails; the parse is retried larger)."""
    rows = copy.deepcopy(BASE_ROWS)
    big = "X" * 2_200_000
    rows["clients"][1][6] = big
    rows["clients"][2][5] = "Q"  # line 4, after the long record
    extract = write_extract(tmp_path / "x", rows=rows)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["clients.csv"]["rows_read"] == 3
    clients = raw_rows(settings, "clients")
    assert clients[1]["city"] == big
    assert ("clients.csv", 4, "gender", "not an allowed value") in quarantine(settings)


def test_retry_with_larger_blocks_keeps_rows_and_line_numbers(tmp_path, settings, monkeypatch):
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 256)  # 256 B, then 2 KiB, then 16 KiB
    monkeypatch.setattr(reader, "MAX_BLOCK", 16 << 10)
    extract = write_extract(tmp_path / "x", manifest=False)
    body = [f"O1,{i},2023-02-15,10" for i in range(1, 200)]
    body[50] = "O1,51,2023-02-15," + "1" * 5000  # line 52: 5 kB, over two of the tighter blocks
    body[150] = "O1,151,2023-02-15,x"  # line 152: not a number
    (extract / "installments.csv").write_text(
        "obligation_id,installment_no,due_date,amount_due\n" + "\n".join(body) + "\n"
    )
    report = ingest_extract(settings, extract, STANDARD)
    assert report["files"]["installments.csv"]["rows_read"] == 199
    rows = raw_rows(settings, "installments")
    assert [r["_line"] for r in rows] == [i + 2 for i in range(199) if i not in (50, 150)]
    assert {q for q in quarantine(settings) if q[0] == "installments.csv"} == {
        ("installments.csv", 52, "amount_due", "not a valid decimal number"),  # too many digits
        ("installments.csv", 152, "amount_due", "not a valid decimal number"),
    }


def test_carriage_return_without_line_feed_warns_with_its_line(tmp_path, settings):
    """D8's cousin: one lone CR inside a file the parser splits, and line numbers may shift."""
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "installments.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b",2023-03-15,", b",2023-03-15\r,")  # line 3
    path.write_bytes(b"\n".join(lines))
    report = ingest_extract(settings, extract, STANDARD)
    warning = [w for w in report["warnings"] if w.startswith("installments.csv: carriage")]
    assert warning and "after line 3 may be off by up to 1" in warning[0]


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('encodng = "latin-1"\n', r"unknown dialect fields \['encodng'\]"),
        ('delimiter = "\n', r"not valid TOML \(.*line 1"),
        ('name = "x"\n[dialect]\ndelimiter = ";"\n', r"keys \['name'\] outside the \[dialect\]"),
        ("dialect = 3\n", r"'dialect' must be a table"),
        ('delimiter = ";;"\n', r"delimiter must be one ASCII character.* \(got ';;'\)"),
        ("delimiter = 5\n", r"delimiter must be a string \(got int\)"),
        ('delimiter = "a"\n', r"delimiter must be one ASCII character, not a letter"),
        ('delimiter = "\\n"\n', r"delimiter must be one ASCII character"),
        ("quote = \"''\"\n", r"quote must be one ASCII character"),
        ('quote = ","\n', r"quote and delimiter must differ"),
        ('decimal = ","\n', r"decimal and delimiter must differ"),
        ('decimal = "·"\n', r"decimal must be one of '\.', ','"),
        ('encoding = "utf-16"\n', r"encoding 'utf-16' does not spell ASCII as ASCII"),
        ('encoding = "klingon"\n', r"unknown encoding 'klingon'"),
        ('date_format = "%Q"\n', r"date_format '%Q' has the directive '%Q'"),
        ('date_format = "%d/%m/%y"\n', r"uses %y \(two-digit year\); use %Y"),
        ('date_format = "%Y-%m"\n', r"date_format '%Y-%m' lacks %d"),
        ('date_format = "%Y-%m-%d-%d"\n', r"has %d twice"),
        ('date_format = "%Y,%m,%d"\n', r"contains the delimiter ','"),
        ('timestamp_format = "%Y-%m-%d"\n', r"timestamp_format '%Y-%m-%d' lacks %H %M"),
        ('timestamp_format = "%Y-%m-%d %H:%M:%S %z"\n', r"has the directive '%z'"),
    ],
)
def test_dialect_fields_are_checked_with_one_clear_message(tmp_path, toml, error):
    """D4: every way a dialect .toml can be wrong is a DialectError (a CobranzaError)."""
    from cobranza.contract import DialectError, load_dialect
    from cobranza.errors import CobranzaError

    path = tmp_path / "mine.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(DialectError, match=error) as err:
        load_dialect(str(path))
    assert isinstance(err.value, CobranzaError)


def test_dialect_names_and_paths_fail_clearly(tmp_path):
    from cobranza.contract import BANK_LATIN1, DIALECTS, DialectError, check_dialect, load_dialect

    with pytest.raises(DialectError, match=r"unknown dialect 'bank_latin1' \(did you mean"):
        load_dialect("bank_latin1")
    with pytest.raises(DialectError, match=r"missing\.toml: dialect file not found"):
        load_dialect(str(tmp_path / "missing.toml"))
    (tmp_path / "d.csv").write_text("x")
    with pytest.raises(DialectError, match=r"d\.csv: a dialect file must be a \.toml file"):
        load_dialect(str(tmp_path / "d.csv"))
    (tmp_path / "bad.toml").write_bytes(b'delimiter = "\xff"\n')
    with pytest.raises(DialectError, match="not valid UTF-8"):
        load_dialect(str(tmp_path / "bad.toml"))
    for dialect in DIALECTS.values():  # the built-in ones pass their own checks
        assert check_dialect(dialect) is dialect
    (tmp_path / "tab.toml").write_text('delimiter = "\\t"\nquote = ""\n')
    assert load_dialect(str(tmp_path / "tab.toml")).delimiter == "\t"
    assert load_dialect("bank-latin1") is BANK_LATIN1


def test_bad_encoding_names_file_and_line(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "clients.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"SME", b"SM\xe9")  # a Latin-1 byte in a UTF-8 file, line 4
    path.write_bytes(b"\n".join(lines))
    msg = fails_publishing_nothing(
        settings, extract, r"^clients\.csv: bytes that are not valid utf-8", published
    )
    assert "line 4" in msg
    assert "bank-latin1" in msg


def test_bad_encoding_deep_in_a_large_file(tmp_path, settings, published, monkeypatch):
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 256)  # the bad byte arrives in a later parser block
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "installments.csv"
    lines = path.read_bytes().splitlines()
    body = [lines[0]] + [f"O1,{i},2023-02-15,10".encode() for i in range(1, 300)]
    body[200] = b"O1,200,2023-02-15,1\xff0"  # line 201
    path.write_bytes(b"\n".join(body) + b"\n")
    msg = fails_publishing_nothing(
        settings, extract, r"^installments\.csv: bytes that are not valid utf-8", published
    )
    assert "line 201" in msg


def test_record_longer_than_the_largest_block_fails_naming_its_line(
    tmp_path, settings, published, monkeypatch
):
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 1024)
    monkeypatch.setattr(reader, "MAX_BLOCK", 8192)
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "installments.csv"
    body = [f"O1,{i},2023-02-15,10" for i in range(1, 300)]
    body[200] = "O1,201,2023-02-15," + "9" * 40_000  # line 202, no quote at all
    path.write_text("obligation_id,installment_no,due_date,amount_due\n" + "\n".join(body) + "\n")
    msg = fails_publishing_nothing(
        settings,
        extract,
        r"^installments\.csv: the record that starts at line 202 is longer than about 8 KiB",
        published,
    )
    assert "straddl" not in msg
