"""Files delivered as NAME.csv.gz: read as a stream with the same rows, lines and errors as plain."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json

import pytest

from cobranza.contract import STANDARD
from cobranza.ingest import ingest_extract
from cobranza.ingest.scan import fingerprint
from cobranza.lake import Lake
from tests.ingest.conftest import BASE_ROWS_V2, fails_publishing_nothing, write_extract
from tests.ingest.test_validate import quarantine, raw_rows, raw_rows_q


def _defective_rows() -> dict:
    rows = copy.deepcopy(BASE_ROWS_V2)
    p = rows["payments"]  # lines 2-3 valid
    p.append(["P3", "O1", "2023-03-01 9h", "10", "PSE", ""])  # line 4: bad timestamp
    p.append(
        ["P4\nx", "O1", "2023-03-01 09:00:00", "10", "PSE", ""]
    )  # lines 5-6: an id with a newline
    p.append(["P5", "O1", "2023-03-01 09:00:00", "10", "CASH", ""])  # line 7: channel not allowed
    return rows


def test_a_gzip_file_gives_the_raw_rows_and_line_numbers_of_the_plain_file(tmp_path, settings):
    from cobranza.config import load_settings

    plain = write_extract(tmp_path / "plain", rows=_defective_rows(), version=2)
    packed = write_extract(
        tmp_path / "packed", rows=_defective_rows(), version=2, gzipped=("payments", "clients")
    )
    assert (packed / "payments.csv.gz").is_file() and not (packed / "payments.csv").exists()
    other = load_settings(lake=tmp_path / "lake2", duckdb_memory_limit="512MB", duckdb_threads=1)
    a = ingest_extract(settings, plain, STANDARD)
    b = ingest_extract(other, packed, STANDARD)
    assert b["files"]["payments.csv.gz"] == a["files"]["payments.csv"]
    assert b["files"]["clients.csv.gz"] == a["files"]["clients.csv"]
    for table in ("payments", "clients"):
        assert raw_rows(other, table) == raw_rows(settings, table), table
    qa = {x[1:] for x in quarantine(settings) if x[0] == "payments.csv"}
    qb = {x[1:] for x in quarantine(other) if x[0] == "payments.csv.gz"}
    assert (
        qa
        == qb
        == {
            (4, "payment_ts", "not a valid timestamp"),
            # the record of lines 5-6 is named by its first line; its id holds a newline
            (5, "payment_id", "not a valid identifier"),
            (7, "channel", "not an allowed value"),
        }
    )
    assert [r["_line"] for r in raw_rows(other, "payments")] == [2, 3]
    # the record names the file as delivered, its hash and size those of the delivered bytes
    body = (packed / "payments.csv.gz").read_bytes()
    entry = Lake(other.lake).run_info("raw")["inputs"]["payments.csv.gz"]
    assert entry["sha256"] == hashlib.sha256(body).hexdigest()
    assert entry["bytes"] == len(body)


def test_the_fingerprint_hashes_the_delivered_bytes_and_scans_the_text(tmp_path):
    text = b"a,b\n1,2\n\n3,4\n" * 1000
    path = tmp_path / "x.csv.gz"
    # two gzip members: a valid gzip file, and each must be read
    path.write_bytes(gzip.compress(text[:7000], mtime=0) + gzip.compress(text[7000:], mtime=0))
    plain = tmp_path / "x.csv"
    plain.write_bytes(text)
    fz, fp = fingerprint(path), fingerprint(plain)
    assert fz.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() != fp.sha256
    assert fz.delivered_size == path.stat().st_size and fp.delivered_size == len(text)
    assert (
        (fz.size, fz.lines, fz.tail) == (fp.size, fp.lines, fp.tail) == (len(text), 4000, fp.tail)
    )
    assert fz.blank_lines.tolist() == fp.blank_lines.tolist() == list(range(3, 4000, 4))


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda b: b[: len(b) // 2], "Compressed file ended before the end-of-stream marker"),
        (lambda b: b[:-8] + bytes(8), "CRC check failed"),
        (lambda b: b"not a gzip file at all\n", "Not a gzipped file"),
        (lambda b: b[:40] + bytes(x ^ 0xFF for x in b[40:80]) + b[80:], ""),
    ],
    ids=["truncated", "bad-check-value", "not-gzip", "corrupt-data"],
)
def test_a_damaged_gzip_file_is_one_line_naming_it(tmp_path, settings, published, damage, detail):
    rows = copy.deepcopy(BASE_ROWS_V2)
    rows["installments"] = [["O1", str(i), "2023-02-15", "10"] for i in range(1, 400)]
    extract = write_extract(tmp_path / "x", rows=rows, version=2, gzipped=("installments",))
    path = extract / "installments.csv.gz"
    path.write_bytes(damage(path.read_bytes()))
    _rehash(extract)
    msg = fails_publishing_nothing(
        settings, extract, r"^installments\.csv\.gz: not a valid gzip file \(", published
    )
    assert detail in msg
    assert msg.endswith("the file is damaged or incomplete; deliver it again")


def test_a_file_delivered_both_plain_and_compressed_is_refused(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", version=2, gzipped=("payments",))
    (extract / "payments.csv").write_bytes(
        gzip.decompress((extract / "payments.csv.gz").read_bytes())
    )
    msg = fails_publishing_nothing(settings, extract, r"^payments\.csv: delivered twice", published)
    assert "as payments.csv and payments.csv.gz; keep one of them" in msg


def test_bad_bytes_deep_in_a_gzip_file_name_their_line(tmp_path, settings, published, monkeypatch):
    import cobranza.ingest.reader as reader

    monkeypatch.setattr(reader, "BLOCK", 256)  # the bad byte arrives in a later parser block
    extract = write_extract(tmp_path / "x", manifest=False)  # no manifest: version 1, gzip too
    body = [b"obligation_id,installment_no,due_date,amount_due"]
    body += [f"O1,{i},2023-02-15,10".encode() for i in range(1, 300)]
    body[200] = b"O1,200,2023-02-15,1\xff0"  # line 201
    (extract / "installments.csv").unlink()
    (extract / "installments.csv.gz").write_bytes(gzip.compress(b"\n".join(body) + b"\n"))
    msg = fails_publishing_nothing(
        settings, extract, r"^installments\.csv\.gz: bytes that are not valid utf-8", published
    )
    assert "line 201" in msg


def test_a_quote_left_open_in_a_gzip_file_names_its_line(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", manifest=False)
    lines = ["payment_id,obligation_id,payment_ts,amount,channel"]
    lines += [f"P{i},O1,2023-02-15 08:00:00,{1000 + i},BRANCH" for i in range(1, 40)]
    lines[39] = lines[39].replace(",BRANCH", ',"BRANCH')  # line 40, the last record
    (extract / "payments.csv").unlink()
    (extract / "payments.csv.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    fails_publishing_nothing(
        settings,
        extract,
        r"^payments\.csv\.gz: the quote opened at line 40 is never closed",
        published,
    )


def test_quarantine_and_reports_name_the_file_as_delivered(tmp_path, settings):
    extract = write_extract(
        tmp_path / "x", rows=_defective_rows(), version=2, gzipped=("payments",)
    )
    report = ingest_extract(settings, extract, STANDARD)
    assert "payments.csv.gz" in report["files"] and "payments.csv" not in report["files"]
    files = {r["file"] for r in raw_rows_q(settings)}
    assert files == {"payments.csv.gz"}
    info = Lake(settings.lake).run_info("raw")
    assert info["tables"]["payments"]["source"] == "payments.csv.gz"


def _rehash(extract) -> None:
    manifest = json.loads((extract / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        entry["sha256"] = hashlib.sha256((extract / name).read_bytes()).hexdigest()
    (extract / "manifest.json").write_text(json.dumps(manifest))


def test_a_gzip_file_is_scanned_as_a_stream_never_whole_in_memory(tmp_path, monkeypatch):
    """The scan's memory follows its chunk size, not the file: twice the text, the same peak."""
    import tracemalloc

    import cobranza.ingest.scan as scan

    monkeypatch.setattr(scan, "CHUNK", 1 << 20)
    header = b"obligation_id,installment_no,due_date,amount_due\n"
    peaks = {}
    for rows in (10, 1_200_000, 2_400_000):
        text = header + b"O1,1,2023-02-15,10\n" * rows
        path = tmp_path / f"installments-{rows}.csv.gz"
        path.write_bytes(gzip.compress(text, compresslevel=1))
        tracemalloc.start()
        try:
            fp = fingerprint(path)
            peaks[rows] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert fp.size == len(text) and fp.lines == rows + 1
    assert peaks[2_400_000] <= peaks[1_200_000] + (1 << 20)  # no growth with the text
    assert peaks[2_400_000] < len(text) / 3  # far below the 46 MB of text


# ---- files are opened inside the extract folder, never through a symbolic link ----------------
def test_a_contract_file_that_is_a_symlink_is_refused(tmp_path, settings, published):
    extract = write_extract(tmp_path / "linked")
    outside = tmp_path / "outside.csv"
    (extract / "clients.csv").rename(outside)
    (extract / "clients.csv").symlink_to(outside)
    message = fails_publishing_nothing(settings, extract, "symbolic link", published)
    assert message.startswith("clients.csv: ") and str(outside) not in message


def test_a_symlinked_manifest_is_refused(tmp_path, settings, published):
    extract = write_extract(tmp_path / "linked")
    outside = tmp_path / "manifest-outside.json"
    (extract / "manifest.json").rename(outside)
    (extract / "manifest.json").symlink_to(outside)
    fails_publishing_nothing(settings, extract, "manifest.json: .*symbolic link", published)


def test_a_fifo_named_like_a_contract_file_is_not_read(tmp_path, settings, published):
    import os

    extract = write_extract(tmp_path / "fifo", manifest=False)
    (extract / "payments.csv").unlink()
    os.mkfifo(extract / "payments.csv")
    fails_publishing_nothing(settings, extract, "payments.csv: missing file", published)


def _checked(folder, roots):
    from cobranza.stages import CheckedFolder

    return CheckedFolder.of(folder.resolve(), tuple(r.resolve() for r in roots))


def test_a_folder_swapped_after_the_check_is_refused(tmp_path, settings, published):
    from cobranza.ingest import IngestError

    root = tmp_path / "root"
    extract = write_extract(root / "extract")
    checked = _checked(extract, [root])
    elsewhere = write_extract(tmp_path / "elsewhere")
    extract.rename(root / "moved")
    extract.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(IngestError, match=r"outside|replaced"):
        ingest_extract(settings, extract, STANDARD, checked=checked)
    # the same swap for a folder inside the roots: refused as replaced
    inside = write_extract(root / "other")
    extract.unlink()
    extract.symlink_to(inside, target_is_directory=True)
    with pytest.raises(IngestError, match="replaced after the service checked it"):
        ingest_extract(settings, extract, STANDARD, checked=checked)
    assert Lake(settings.lake).current_version("raw") == published


def test_the_checked_folder_is_ingested_when_unchanged(tmp_path, settings):
    root = tmp_path / "root"
    extract = write_extract(root / "extract")
    summary = ingest_extract(settings, extract, STANDARD, checked=_checked(extract, [root]))
    assert summary["version"] == Lake(settings.lake).current_version("raw")
