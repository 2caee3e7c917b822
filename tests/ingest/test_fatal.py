"""Fatal problems: one message naming the file, nothing published, previous raw version current."""

from __future__ import annotations

import json

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
    assert not (lake.root / "_tmp").exists()
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
