"""Fatal problems: one message naming the file, nothing published, previous raw version current."""

from __future__ import annotations

import json
import re

import pytest

from cobranza.contract import STANDARD
from cobranza.ingest import IngestError, ingest_extract
from cobranza.lake import Lake
from tests.ingest.conftest import write_extract


@pytest.fixture
def published(tmp_path, settings):
    """A first good ingest: its version must stay current after each failing run."""
    ingest_extract(settings, write_extract(tmp_path / "good"), STANDARD)
    lake = Lake(settings.lake)
    return lake.current_version("raw")


def _fails(settings, extract, match: str, published: str) -> str:
    with pytest.raises(IngestError, match=match) as err:
        ingest_extract(settings, extract, STANDARD)
    lake = Lake(settings.lake)
    assert lake.current_version("raw") == published
    assert [v["version"] for v in lake.versions("raw")] == [published]
    versions = list((lake.zone_dir("raw") / "versions").iterdir())
    assert [v.name for v in versions] == [published]  # the failed run left no folder
    assert not (lake.root / "_tmp").exists() or not list((lake.root / "_tmp").iterdir())
    return str(err.value)


def test_missing_file(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    (extract / "debit_attempts.csv").unlink()
    _fails(settings, extract, r"^debit_attempts\.csv: missing file", published)


def test_missing_required_column(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    path = extract / "obligations.csv"
    lines = path.read_text().splitlines()
    cut = [",".join(line.split(",")[:-2] + line.split(",")[-1:]) for line in lines]  # drop status
    path.write_text("\n".join(cut) + "\n")
    msg = _fails(settings, extract, r"^obligations\.csv: missing required column", published)
    assert "status" in msg


def test_bad_encoding_names_file_and_line(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "clients.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"SME", b"SM\xe9")  # a Latin-1 byte in a UTF-8 file, line 4
    path.write_bytes(b"\n".join(lines))
    msg = _fails(settings, extract, r"^clients\.csv: bytes that are not valid utf-8", published)
    assert "line 4" in msg
    assert "bank-latin1" in msg


def test_manifest_hash_mismatch(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    path = extract / "payments.csv"
    path.write_bytes(path.read_bytes().replace(b"BRANCH", b"DIGITAL"))
    _fails(settings, extract, r"^payments\.csv: sha256 .* differs from manifest\.json", published)


def test_manifest_row_mismatch(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    manifest = json.loads((extract / "manifest.json").read_text())
    manifest["files"]["installments.csv"]["rows"] = 99
    (extract / "manifest.json").write_text(json.dumps(manifest))
    _fails(
        settings,
        extract,
        r"^installments\.csv: 3 data rows read but manifest\.json says 99",
        published,
    )


def test_empty_extract(tmp_path, settings, published):
    (tmp_path / "empty").mkdir()
    _fails(settings, tmp_path / "empty", "empty extract", published)


def test_extract_with_only_headers_is_empty(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", rows={s: [] for s in _stems()}, manifest=False)
    _fails(settings, extract, "empty extract", published)


def test_new_extract_publishes_new_version_and_keeps_old_listed(tmp_path, settings, published):
    report = ingest_extract(settings, write_extract(tmp_path / "again"), STANDARD)
    lake = Lake(settings.lake)
    assert lake.current_version("raw") == report["version"] != published
    assert [v["version"] for v in lake.versions("raw")] == [published, report["version"]]
    info = lake.run_info("raw")
    assert info["extract_dir"] == str((tmp_path / "again").resolve())
    assert set(info["inputs"]) == {f"{s}.csv" for s in _stems()}
    assert all(len(v["sha256"]) == 64 for v in info["inputs"].values())
    assert set(info["timings"]) >= {f"{s}" for s in _stems()}


def _stems():
    from cobranza.contract import FILES

    return [f.stem for f in FILES]


def test_bad_encoding_deep_in_a_large_file(tmp_path, settings, published, monkeypatch):
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 256)  # the bad byte arrives in a later parser block
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "installments.csv"
    lines = path.read_bytes().splitlines()
    body = [lines[0]] + [f"O1,{i},2023-02-15,10".encode() for i in range(1, 300)]
    body[200] = b"O1,200,2023-02-15,1\xff0"  # line 201
    path.write_bytes(b"\n".join(body) + b"\n")
    msg = _fails(
        settings, extract, r"^installments\.csv: bytes that are not valid utf-8", published
    )
    assert "line 201" in msg


def test_unknown_encoding_in_a_dialect(tmp_path, settings, published):
    from cobranza.contract import Dialect

    extract = write_extract(tmp_path / "x")
    with pytest.raises(IngestError, match="unknown encoding 'latin-9x'"):
        ingest_extract(settings, extract, Dialect(name="typo", encoding="latin-9x"))
    assert Lake(settings.lake).current_version("raw") == published


# --- D1: a quote left open -------------------------------------------------------------------


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
    msg = _fails(
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
    _fails(
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
    _fails(
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
    _fails(
        settings,
        extract,
        r"^installments\.csv: the quote opened at line 101 is not closed",
        published,
    )


# --- D6: a record longer than the parser block ------------------------------------------------


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
    msg = _fails(
        settings,
        extract,
        r"^installments\.csv: the record that starts at line 202 is longer than about 8 KiB",
        published,
    )
    assert "straddl" not in msg


# --- D3: no personal data in header messages -------------------------------------------------


def test_headerless_clients_file_never_echoes_the_first_row(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    path = extract / "clients.csv"
    path.write_text("\n".join(path.read_text().split("\n")[1:]))
    msg = _fails(settings, extract, r"^clients\.csv: missing required column", published)
    assert msg == (
        "clients.csv: missing required column(s) client_id, document_type, document_number, "
        "segment, customer_since; line 1 under dialect 'standard' has 14 cells and none of them "
        "is a contract column: is the header row missing (the first line a data row)?"
    )
    for value in ("1001", "Ana", "ana@example.com", "3001234567", "c1", "bogot"):
        assert value not in msg.lower()


def test_a_repeated_non_contract_header_cell_is_not_echoed(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    path = extract / "payments.csv"
    lines = path.read_text().split("\n")
    lines[0] += ",3001234567,3001234567"  # looks like data: never printed
    lines[1:3] = [line + ",a,b" for line in lines[1:3]]
    path.write_text("\n".join(lines))
    msg = _fails(settings, extract, r"^payments\.csv: the same name appears twice", published)
    assert "3001234567" not in msg
    assert "positions 6 and 7" in msg


# --- D7: malformed manifest entries ----------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (None, "must be an object with rows and sha256 (got null)"),
        ("x", "must be an object with rows and sha256"),
        ({}, "has no rows"),
        ({"rows": 2}, "has no sha256"),
        ({"rows": "many", "sha256": "0" * 64}, "rows must be an integer >= 0"),
        ({"rows": 2.0, "sha256": "0" * 64}, "rows must be an integer >= 0"),
        ({"rows": True, "sha256": "0" * 64}, "rows must be an integer >= 0"),
        ({"rows": -1, "sha256": "0" * 64}, "rows must be an integer >= 0"),
        ({"rows": 2, "sha256": ""}, "sha256 must be 64 hexadecimal digits (got an empty string)"),
        ({"rows": 2, "sha256": "0" * 63}, "sha256 must be 64 hexadecimal digits"),
        ({"rows": 2, "sha256": "g" * 64}, "sha256 must be 64 hexadecimal digits"),
        ({"rows": 2, "sha256": None}, "sha256 must be 64 hexadecimal digits (got null)"),
    ],
)
def test_malformed_manifest_entry_is_fatal(tmp_path, settings, published, entry, problem):
    extract = write_extract(tmp_path / "x")
    manifest = json.loads((extract / "manifest.json").read_text())
    manifest["files"]["payments.csv"] = entry
    (extract / "manifest.json").write_text(json.dumps(manifest))
    msg = _fails(settings, extract, r"^manifest\.json: the entry of payments\.csv", published)
    assert problem in msg


def test_manifest_checks_are_never_skipped(tmp_path, settings, published):
    """An entry that listed no count or hash used to let an altered file through."""
    extract = write_extract(tmp_path / "x")
    manifest = json.loads((extract / "manifest.json").read_text())
    manifest["files"]["payments.csv"]["sha256"] = manifest["files"]["payments.csv"][
        "sha256"
    ].upper()
    (extract / "manifest.json").write_text(json.dumps(manifest))
    with (extract / "payments.csv").open("a") as fh:
        fh.write("P9,O1,2023-02-15 08:00:00,1,BRANCH\n")
    _fails(settings, extract, r"^payments\.csv: sha256 .* differs from manifest\.json", published)


# --- D8: CR-only line endings ----------------------------------------------------------------


def test_cr_only_line_endings_fail_with_one_message(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "payments.csv"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    _fails(settings, extract, r"^payments\.csv: .*CR-only line endings", published)


# --- U1: UTF-8 bytes under a Latin-1 dialect -------------------------------------------------


def test_utf8_file_read_as_latin1_is_refused(tmp_path, settings, published):
    from cobranza.contract import BANK_LATIN1

    extract = write_extract(tmp_path / "x", dialect=BANK_LATIN1, manifest=False)
    for name in ("clients.csv", "debit_mandates.csv"):
        path = extract / name
        path.write_text(path.read_text(encoding="latin-1"), encoding="utf-8")  # re-encoded
    with pytest.raises(IngestError) as err:
        ingest_extract(settings, extract, BANK_LATIN1)
    assert str(err.value).startswith("clients.csv: looks like UTF-8, not latin-1")
    assert "use a UTF-8 dialect" in str(err.value)
    assert Lake(settings.lake).current_version("raw") == published


# --- D4: dialects that cannot work -----------------------------------------------------------


def test_a_dialect_built_in_code_is_checked_before_any_file(tmp_path, settings, published):
    from cobranza.contract import Dialect

    extract = write_extract(tmp_path / "x")
    for bad, match in [
        (Dialect(name="two", delimiter=";;"), "delimiter must be one ASCII character"),
        (Dialect(name="num", delimiter=5), "delimiter must be a string"),  # type: ignore[arg-type]
        (Dialect(name="q", date_format="%Q"), "date_format '%Q' has the directive '%Q'"),
        (Dialect(name="y", date_format="%y-%m-%d"), r"date_format '%y-%m-%d' uses %y"),
    ]:
        with pytest.raises(IngestError, match=f"^dialect '{bad.name}': {match}"):
            ingest_extract(settings, extract, bad)
    assert Lake(settings.lake).current_version("raw") == published


def test_a_misspelled_header_name_is_shown_when_the_line_is_surely_a_header(
    tmp_path, settings, published
):
    extract = write_extract(tmp_path / "x")
    path = extract / "obligations.csv"
    path.write_text(path.read_text().replace(",status,", ",estado,", 1))
    msg = _fails(settings, extract, r"^obligations\.csv: missing required column", published)
    assert msg == (
        "obligations.csv: missing required column(s) status; line 1 under dialect 'standard' "
        "has 12 cells, 11 of them contract columns: check the column names "
        "(not in the contract: estado)"
    )
