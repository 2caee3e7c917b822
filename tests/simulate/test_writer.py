"""Spelling the extract: the version-2 file list, gzip delivery, and the manifest."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from cobranza.contract import COLLECTION_ASSIGNMENTS, FILES, MANIFEST, REVERSED_TS
from cobranza.simulate import SimulationConfig, simulate
from cobranza.simulate.writer import DefectLog, extract_files, sha256


def test_the_simulator_writes_every_file_of_contract_version_two_in_contract_order():
    files = extract_files()
    assert files == FILES
    assert COLLECTION_ASSIGNMENTS.stem in [s.stem for s in files]
    payments = next(s for s in files if s.stem == "payments")
    assert payments.column_names[-1] == REVERSED_TS.name


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_compressed_extract_holds_the_same_bytes_and_a_manifest_of_what_was_delivered(
    tmp_path: Path, noise
):
    cfg = SimulationConfig(clients=300, months=6, seed=3, noise=noise)
    plain = simulate(tmp_path / "plain", cfg)
    gz = simulate(tmp_path / "gz", replace(cfg, compress=True))
    manifest = json.loads((tmp_path / "gz" / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["contract_version"] == 2
    assert set(manifest["files"]) == {s.filename + ".gz" for s in extract_files()}
    for spec in extract_files():
        delivered = tmp_path / "gz" / (spec.filename + ".gz")
        assert not (tmp_path / "gz" / spec.filename).exists()
        assert manifest["files"][delivered.name]["sha256"] == sha256(delivered)
        assert (
            gzip.decompress(delivered.read_bytes())
            == (tmp_path / "plain" / spec.filename).read_bytes()
        )
    assert gz["rows"] == {k + ".gz": v for k, v in plain["rows"].items()}
    noise_gz = json.loads((tmp_path / "gz" / "_truth" / "noise.json").read_text())["files"]
    noise_plain = json.loads((tmp_path / "plain" / "_truth" / "noise.json").read_text())["files"]
    assert noise_gz == {k + ".gz": v for k, v in noise_plain.items()}


def test_a_rerun_replaces_the_other_spelling_of_its_files(tmp_path: Path):
    cfg = SimulationConfig(clients=60, months=4, seed=2, noise=0.0, holdout_months=2)
    simulate(tmp_path, replace(cfg, compress=True))
    simulate(tmp_path, cfg)
    names = {p.name for p in tmp_path.iterdir() if p.is_file()}
    assert names == {s.filename for s in extract_files()} | {MANIFEST}


def test_the_defect_log_writes_the_document_json_dumps_would_give(tmp_path):
    """Defects kept on disk come back as the same bytes as the whole document dumped at once:
    strings with line breaks and quotes, nested values, a file with no defect, none at all."""
    found = {
        "a.csv": [
            {"line": 7, "column": "amount", "case": 'bad "number"\nspread', "extra": {"k": [1]}},
            {"line": 9, "column": None, "case": "ñandú", "extra": {}},
        ],
        "b.csv.gz": [],
        "c.csv": [{}],
    }
    log = DefectLog(list(found))
    try:
        log.extend("a.csv", found["a.csv"][:1])
        log.extend("c.csv", found["c.csv"])
        log.extend("a.csv", found["a.csv"][1:])
        log.write(tmp_path / "noise.json", 0.002, 42)
    finally:
        log.close()
    expected = json.dumps({"rate": 0.002, "seed": 42, "files": found}, indent=1) + "\n"
    assert (tmp_path / "noise.json").read_text(encoding="utf-8") == expected
    assert log.counts == {"a.csv": 2, "b.csv.gz": 0, "c.csv": 1}
    with DefectLog([]) as empty:
        empty.write(tmp_path / "none.json", 0.0, 1)
    assert (tmp_path / "none.json").read_text(encoding="utf-8") == (
        json.dumps({"rate": 0.0, "seed": 1, "files": {}}, indent=1) + "\n"
    )
