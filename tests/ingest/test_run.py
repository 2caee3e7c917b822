"""Files validated side by side: the same raw zone as one at a time, and the same failure."""

from __future__ import annotations

import json

import pytest

from cobranza.config import load_settings
from cobranza.contract import FILES, STANDARD
from cobranza.ingest import IngestError, ingest_extract
from cobranza.ingest.run import _schedule_order, ingest_workers, ordered_files
from cobranza.lake import Lake
from tests.ingest.conftest import write_extract
from tests.ingest.test_validate import raw_rows, raw_rows_q


def _settings(tmp_path, name: str, workers: int):
    return load_settings(
        lake=tmp_path / name, duckdb_memory_limit="512MB", duckdb_threads=2, ingest_workers=workers
    )


@pytest.mark.slow
def test_parallel_files_give_exactly_the_serial_raw_zone(tmp_path, sim_extract):
    reports, tables = {}, {}
    for workers in (1, 4):
        s = _settings(tmp_path, f"w{workers}", workers)
        assert ingest_workers(s) == workers
        reports[workers] = ingest_extract(s, sim_extract, STANDARD)
        tables[workers] = {spec.stem: raw_rows(s, spec.stem) for spec in FILES}
        tables[workers]["quarantine"] = raw_rows_q(s)
    assert reports[1]["files"] == reports[4]["files"]
    assert list(reports[4]["files"]) == [spec.filename for spec in FILES]  # contract order
    assert reports[4]["rows_quarantined"] > 0  # the extract has defects, so rules really ran
    for name, rows in tables[1].items():
        assert rows == tables[4][name], name


def test_a_failing_file_among_parallel_ones_fails_the_run_and_publishes_nothing(tmp_path):
    settings = _settings(tmp_path, "lake", 4)
    extract = write_extract(tmp_path / "x")
    manifest = json.loads((extract / "manifest.json").read_text())
    manifest["files"]["installments.csv"]["rows"] = 99
    (extract / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IngestError, match=r"^installments\.csv: 3 data rows read but manifest"):
        ingest_extract(settings, extract, STANDARD)
    lake = Lake(settings.lake)
    assert lake.versions("raw") == []
    assert not (lake.root / "_tmp").exists() or not list((lake.root / "_tmp").iterdir())


def test_schedule_puts_parents_first_and_large_files_early(tmp_path):
    extract = write_extract(tmp_path / "x")
    paths = {s.stem: extract / s.filename for s in FILES}
    (extract / "account_monthly.csv").write_bytes(
        (extract / "account_monthly.csv").read_bytes() * 50
    )
    order = [s.stem for s in _schedule_order(ordered_files(), paths)]
    assert order[0] == "account_monthly"  # no parent and the largest: it starts first
    for spec in FILES:
        for _, parent, _ in spec.references:
            assert order.index(parent) < order.index(spec.stem), spec.stem


def test_duckdb_gets_the_budget_less_what_parallel_files_use_outside_it():
    from cobranza.ingest.run import duckdb_limit

    assert duckdb_limit("4GB", 1) == "4GB"  # one file: DuckDB's own limit, as configured
    assert duckdb_limit("4GiB", 2) == "2048MiB"  # 4 GiB less 1 GiB per file
    assert duckdb_limit("4GB", 4) == f"{int(4e9 / 2 // 2**20)}MiB"  # never below half
    assert duckdb_limit("6 gb", 2) == f"{int((6e9 - 2 * 2**30) // 2**20)}MiB"
    assert duckdb_limit("80%", 2) == "80%"  # relative limits pass through
