"""Headers: names mapped onto the contract, the dialect never guessed, personal data never echoed."""

from __future__ import annotations

import pytest

from cobranza.contract import BANK_LATIN1, STANDARD
from cobranza.ingest import IngestError, ingest_extract
from cobranza.lake import Lake
from tests.ingest.conftest import HEADERS_V2, fails_publishing_nothing, write_extract
from tests.ingest.test_validate import raw_rows


def test_missing_required_column(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    path = extract / "obligations.csv"
    lines = path.read_text().splitlines()
    cut = [",".join(line.split(",")[:-2] + line.split(",")[-1:]) for line in lines]  # drop status
    path.write_text("\n".join(cut) + "\n")
    msg = fails_publishing_nothing(
        settings, extract, r"^obligations\.csv: missing required column", published
    )
    assert "status" in msg


def test_headerless_clients_file_never_echoes_the_first_row(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    path = extract / "clients.csv"
    path.write_text("\n".join(path.read_text().split("\n")[1:]))
    msg = fails_publishing_nothing(
        settings, extract, r"^clients\.csv: missing required column", published
    )
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
    msg = fails_publishing_nothing(
        settings, extract, r"^payments\.csv: the same name appears twice", published
    )
    assert "3001234567" not in msg
    assert "positions 6 and 7" in msg


def test_cr_only_line_endings_fail_with_one_message(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "payments.csv"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    fails_publishing_nothing(
        settings, extract, r"^payments\.csv: .*CR-only line endings", published
    )


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


def test_a_misspelled_header_name_is_located_by_line_and_column_never_echoed(
    tmp_path, settings, published
):
    extract = write_extract(tmp_path / "x")
    path = extract / "obligations.csv"
    path.write_text(path.read_text().replace(",status,", ",estado,", 1))
    msg = fails_publishing_nothing(
        settings, extract, r"^obligations\.csv: missing required column", published
    )
    assert msg == (
        "obligations.csv: missing required column(s) status; line 1 under dialect 'standard' "
        "has 12 cells, 11 of them contract columns: check the column names "
        "(line 1, column(s) 11 are not contract columns)"
    )
    assert "estado" not in msg


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
    assert list(rows[0]) == [*HEADERS_V2["payments"], "branch_code", "_line"]
    assert [r["branch_code"] for r in rows] == ["B0", "B1"]
    assert rows[0]["payment_id"] == "P1"
    assert any("branch_code" in w for w in report["warnings"])


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


def test_extra_columns_whose_raw_names_collide_keep_their_data(tmp_path, settings):
    """D9: `_line` is kept as `x_line_2` beside the file's own `x_line`; an empty name too."""
    extract = write_extract(tmp_path / "x", manifest=False)
    path = extract / "payments.csv"
    lines = path.read_text().splitlines()
    header = lines[0] + ",_line,x_line,,column_8,column_8_2"
    body = [f"{line},a{i},b{i},c{i},d{i},e{i}" for i, line in enumerate(lines[1:])]
    path.write_text("\n".join([header, *body]) + "\n")
    report = ingest_extract(settings, extract, STANDARD)
    rows = raw_rows(settings, "payments")
    extra = ["x_line_2", "x_line", "column_8_3", "column_8", "column_8_2"]
    assert list(rows[0]) == [*HEADERS_V2["payments"], *extra, "_line"]
    assert [[r[c] for c in extra] for r in rows] == [
        [f"a{i}", f"b{i}", f"c{i}", f"d{i}", f"e{i}"] for i in range(2)
    ]
    assert [r["_line"] for r in rows] == [2, 3]
    assert (
        f"payments.csv: extra column(s) {', '.join(extra)} kept in raw, not used"
        in (report["warnings"])
    )


@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
def test_utf8_sig_dialect_reads_files_with_and_without_bom(tmp_path, settings, bom):
    """D10: `utf-8-sig` is UTF-8; a byte-order mark is what it exists for."""
    from cobranza.contract import load_dialect

    toml = tmp_path / "sig.toml"
    toml.write_text('encoding = "utf-8-sig"\n')
    dialect = load_dialect(str(toml))
    extract = write_extract(tmp_path / "x", manifest=False)
    if bom:
        for name in ("clients.csv", "payments.csv"):
            path = extract / name
            path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = ingest_extract(settings, extract, dialect)
    assert report["rows_quarantined"] == 0
    clients = raw_rows(settings, "clients")
    assert clients[0]["client_id"] == "C1"
    assert clients[0]["full_name"] == "Ana Pérez"


def test_header_cells_of_a_malformed_file_never_reach_the_message(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    path = extract / "clients.csv"
    lines = path.read_text().splitlines()
    cells = lines[0].split(",")
    cells[3] = "juliana bermúdez"  # full_name replaced by a person's name
    cells[2] = "1032456789"  # document_number replaced by a document
    cells[0] = "CL-9"  # the required client_id is gone
    path.write_text("\n".join([",".join(cells), *lines[1:]]) + "\n")
    msg = fails_publishing_nothing(
        settings, extract, r"^clients\.csv: missing required column", published
    )
    assert "juliana" not in msg.lower() and "1032456789" not in msg and "CL-9" not in msg
    assert "line 1, column(s) 1, 3, 4 are not contract columns" in msg
