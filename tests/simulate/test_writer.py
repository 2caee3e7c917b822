"""Spelling the extract: the version-2 file list, gzip delivery, and the manifest."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from cobranza.contract import COLLECTION_ASSIGNMENTS, FILES, MANIFEST, REVERSED_TS
from cobranza.simulate import SimulationConfig, simulate, writer
from cobranza.simulate.writer import extract_files, sha256


def test_extract_files_are_the_contract_files_plus_version_two():
    files = extract_files()
    assert [s.stem for s in files] == [s.stem for s in FILES] + ["collection_assignments"]
    payments = next(s for s in files if s.stem == "payments")
    assert payments.column_names[-1] == "reversed_ts"
    assert payments.column_names[:-1] == next(s for s in FILES if s.stem == "payments").column_names


def test_extract_files_do_not_change_once_the_contract_holds_version_two(monkeypatch):
    """When FILES itself carries the version-2 specs, the list (and its order) is FILES."""
    v2 = tuple(
        replace(s, columns=(*s.columns, REVERSED_TS)) if s.stem == "payments" else s for s in FILES
    )
    v2 = (*v2[:3], COLLECTION_ASSIGNMENTS, *v2[3:])
    monkeypatch.setattr(writer, "FILES", v2)
    assert extract_files() == v2


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
