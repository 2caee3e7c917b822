"""The manifest is binding: version, hashes of the delivered bytes, row counts, well-formed entries."""

from __future__ import annotations

import json

import pytest

from tests.ingest.conftest import fails_publishing_nothing, write_extract


def test_manifest_hash_mismatch(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    path = extract / "payments.csv"
    path.write_bytes(path.read_bytes().replace(b"BRANCH", b"DIGITAL"))
    fails_publishing_nothing(
        settings, extract, r"^payments\.csv: sha256 .* differs from manifest\.json", published
    )


def test_manifest_row_mismatch(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    manifest = json.loads((extract / "manifest.json").read_text())
    manifest["files"]["installments.csv"]["rows"] = 99
    (extract / "manifest.json").write_text(json.dumps(manifest))
    fails_publishing_nothing(
        settings,
        extract,
        r"^installments\.csv: 3 data rows read but manifest\.json says 99",
        published,
    )


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
    msg = fails_publishing_nothing(
        settings, extract, r"^manifest\.json: the entry of payments\.csv", published
    )
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
    fails_publishing_nothing(
        settings, extract, r"^payments\.csv: sha256 .* differs from manifest\.json", published
    )


@pytest.mark.parametrize(
    ("version", "shown"),
    [
        (3, "number 3"),
        ("2", "a string of 1 characters"),
        (2.0, "number 2.0"),
        (True, "boolean true"),
        (None, "null"),
    ],
)
def test_a_contract_version_other_than_1_or_2_is_fatal(
    tmp_path, settings, published, version, shown
):
    extract = write_extract(tmp_path / "x", version=2)
    manifest = json.loads((extract / "manifest.json").read_text())
    manifest["contract_version"] = version
    (extract / "manifest.json").write_text(json.dumps(manifest))
    msg = fails_publishing_nothing(
        settings, extract, r"^manifest\.json: contract_version must be 1 or 2", published
    )
    assert msg.endswith(f"(got {shown})")


def test_a_manifest_without_contract_version_means_version_1(tmp_path, settings):
    from cobranza.contract import STANDARD
    from cobranza.ingest import ingest_extract

    report = ingest_extract(settings, write_extract(tmp_path / "x"), STANDARD)
    assert "contract_version" not in json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert report["contract_version"] == 1


def test_a_compressed_file_is_listed_by_its_delivered_name(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", version=2, gzipped=("payments",))
    manifest = json.loads((extract / "manifest.json").read_text())
    manifest["files"]["payments.csv"] = manifest["files"].pop("payments.csv.gz")
    (extract / "manifest.json").write_text(json.dumps(manifest))
    msg = fails_publishing_nothing(
        settings, extract, r"^payments\.csv\.gz: not listed in manifest\.json", published
    )
    assert "(it lists payments.csv: name the file as delivered)" in msg


def test_the_hash_of_a_compressed_file_covers_its_compressed_bytes(tmp_path, settings, published):
    import gzip
    import hashlib

    extract = write_extract(tmp_path / "x", version=2, gzipped=("payments",))
    manifest = json.loads((extract / "manifest.json").read_text())
    text = gzip.decompress((extract / "payments.csv.gz").read_bytes())
    manifest["files"]["payments.csv.gz"]["sha256"] = hashlib.sha256(text).hexdigest()
    (extract / "manifest.json").write_text(json.dumps(manifest))
    fails_publishing_nothing(
        settings, extract, r"^payments\.csv\.gz: sha256 .* differs from manifest\.json", published
    )
