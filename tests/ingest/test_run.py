"""Files validated side by side: the same raw zone as one at a time, and the same failure."""

from __future__ import annotations

import gzip
import json
import os
import shutil

import pytest

from cobranza.config import load_settings
from cobranza.contract import FILES, STANDARD, files_for
from cobranza.ingest import IngestError, ingest_extract
from cobranza.ingest.budget import ingest_workers, staging
from cobranza.ingest.run import ordered_files, schedule_order
from cobranza.lake import Lake
from tests.ingest.conftest import fails_publishing_nothing, rewrite_manifest, write_extract
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
    # contract order, the files of the simulated extract's version (2)
    assert list(reports[4]["files"]) == [spec.filename for spec in FILES]
    assert reports[4]["rows_quarantined"] > 0  # the extract has defects, so rules really ran
    for name, rows in tables[1].items():
        assert rows == tables[4][name], name


@pytest.mark.slow
def test_staging_in_a_database_file_gives_exactly_the_raw_zone_staged_in_memory(
    tmp_path, sim_extract
):
    reports, tables = {}, {}
    for where in ("memory", "disk"):
        s = load_settings(
            lake=tmp_path / where,
            duckdb_memory_limit="512MB",
            ingest_workers=2,
            ingest_staging=where,
        )
        reports[where] = ingest_extract(s, sim_extract, STANDARD)
        assert reports[where]["staging"] == where
        tables[where] = {spec.stem: raw_rows(s, spec.stem) for spec in FILES}
        tables[where]["quarantine"] = raw_rows_q(s)
        tmp = Lake(s.lake).root / "_tmp"
        assert not tmp.exists() or not list(tmp.iterdir())  # the staging file went with the run
    assert reports["memory"]["files"] == reports["disk"]["files"]
    assert reports["disk"]["rows_quarantined"] > 0  # the extract has defects, so rules really ran
    for name, rows in tables["memory"].items():
        assert rows == tables["disk"][name], name


def test_auto_staging_goes_to_disk_only_when_the_spill_would_crowd_the_free_disk(tmp_path):
    """Staged files take about 1.7x their text (a gzip file holds about 4x its bytes); past the
    budget they spill, and the spill plus the raw zone (0.3x all the text) may take at most half
    the free disk before staging moves to the compressed database file."""
    plain, packed = tmp_path / "a.csv", tmp_path / "b.csv.gz"
    plain.write_bytes(b"x" * 500_000)  # 0.85 MB staged
    packed.write_bytes(gzip.compress(os.urandom(200_000), compresslevel=1))  # ~200 KB: 1.36 MB

    def where(paths, limit="1MB", mode="auto", free=10**12):
        s = load_settings(
            lake=tmp_path / "lake", duckdb_memory_limit=limit, ingest_workers=1, ingest_staging=mode
        )
        return staging(s, paths, free_bytes=free)

    text = 500_000 + 4 * packed.stat().st_size
    spill = 1.7 * 4 * packed.stat().st_size - 10**6  # one worker: the largest file alone
    needed = spill + 0.3 * text
    assert where([plain], free=0) == "memory"  # fits the budget: no spill at all
    assert where([plain, packed]) == "memory"  # spills, with room on the disk
    assert where([plain, packed], free=int(2 * needed) + 1) == "memory"
    assert where([plain, packed], free=int(2 * needed) - 1) == "disk"
    assert where([plain, packed], limit="2MB", free=0) == "memory"
    assert where([plain, packed], limit="80%", free=0) == "memory"  # relative: not compared
    assert where([plain], mode="disk") == "disk"
    assert where([plain, packed], mode="memory", free=0) == "memory"


def test_auto_staging_reads_the_free_space_of_the_lakes_disk(tmp_path):
    """Without a figure given, the free space is that of the file system the lake is (or will be)
    on: an extract whose spill would need more than it has is staged on disk."""
    big = tmp_path / "big.csv"
    with big.open("wb") as fh:  # sparse: claims its size, takes no disk
        fh.truncate(shutil.disk_usage(tmp_path).free)
    s = load_settings(lake=tmp_path / "not" / "yet" / "lake", duckdb_memory_limit="1MB")
    assert staging(s, [big]) == "disk"
    assert staging(s, [big], free_bytes=10**15) == "memory"


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
    order = [s.stem for s in schedule_order(ordered_files(), paths)]
    assert order[0] == "account_monthly"  # no parent and the largest: it starts first
    for spec in FILES:
        for _, parent, _ in spec.references:
            assert order.index(parent) < order.index(spec.stem), spec.stem


def test_duckdb_gets_the_budget_less_what_parallel_files_use_outside_it():
    from cobranza.ingest.budget import duckdb_limit

    assert duckdb_limit("4GB", 1) == "4GB"  # one file: DuckDB's own limit, as configured
    assert duckdb_limit("4GiB", 2) == "2048MiB"  # 4 GiB less 1 GiB per file
    assert duckdb_limit("4GB", 4) == f"{int(4e9 / 2 // 2**20)}MiB"  # never below half
    assert duckdb_limit("6 gb", 2) == f"{int((6e9 - 2 * 2**30) // 2**20)}MiB"
    assert duckdb_limit("80%", 2) == "80%"  # relative limits pass through


def test_missing_file(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x")
    (extract / "debit_attempts.csv").unlink()
    fails_publishing_nothing(settings, extract, r"^debit_attempts\.csv: missing file", published)


def test_empty_extract(tmp_path, settings, published):
    (tmp_path / "empty").mkdir()
    fails_publishing_nothing(settings, tmp_path / "empty", "empty extract", published)


def test_extract_with_only_headers_is_empty(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", rows={s: [] for s in _stems()}, manifest=False)
    fails_publishing_nothing(settings, extract, "empty extract", published)


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
    return [f.stem for f in files_for(1)]


def test_unknown_encoding_in_a_dialect(tmp_path, settings, published):
    from cobranza.contract import Dialect

    extract = write_extract(tmp_path / "x")
    with pytest.raises(IngestError, match="unknown encoding 'latin-9x'"):
        ingest_extract(settings, extract, Dialect(name="typo", encoding="latin-9x"))
    assert Lake(settings.lake).current_version("raw") == published


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


def test_as_of_without_manifest_is_the_last_cut_date(tmp_path, settings):
    from cobranza.lake import Lake

    extract = write_extract(tmp_path / "x", manifest=False)
    report = ingest_extract(settings, extract, STANDARD)
    assert report["as_of"] == "2023-03-31"  # the last cut_date in portfolio_cuts.csv
    info = Lake(settings.lake).run_info("raw")
    assert info["as_of"] == "2023-03-31"
    assert info["manifest"] is False
    assert len(info["inputs"]["clients.csv"]["sha256"]) == 64


def test_a_version_2_extract_without_its_assignment_file_is_refused(tmp_path, settings, published):
    extract = write_extract(tmp_path / "x", version=2)
    (extract / "collection_assignments.csv").unlink()
    msg = fails_publishing_nothing(
        settings, extract, r"^collection_assignments\.csv: missing file in ", published
    )
    assert msg.endswith("(collection_assignments.csv required in contract version 2)")


def test_an_assignment_file_in_a_version_1_extract_is_refused_not_ignored(
    tmp_path, settings, published
):
    extract = write_extract(tmp_path / "x", version=2, gzipped=("collection_assignments",))
    manifest = json.loads((extract / "manifest.json").read_text())
    del manifest["contract_version"]
    (extract / "manifest.json").write_text(json.dumps(manifest))
    msg = fails_publishing_nothing(
        settings,
        extract,
        r"^collection_assignments\.csv\.gz: a contract version 2 file, but the extract is "
        "version 1",
        published,
    )
    assert 'no "contract_version": 2' in msg


@pytest.mark.parametrize("version", [1, 2])
def test_reversed_ts_is_optional_in_both_versions(tmp_path, settings, version):
    from tests.ingest.conftest import BASE_ROWS, BASE_ROWS_V2, HEADERS_V2

    base = BASE_ROWS_V2 if version == 2 else BASE_ROWS
    # without the column: empty in raw; a version-2 extract says so, a version-1 one need not
    without = write_extract(tmp_path / "without", version=version)
    if version == 2:
        path = without / "payments.csv"
        lines = path.read_text().splitlines()
        path.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
        rewrite_manifest(without)
    report = ingest_extract(settings, without, STANDARD)
    assert [r["reversed_ts"] for r in raw_rows(settings, "payments")] == [None, None]
    absent = "payments.csv: optional column(s) reversed_ts absent, kept as empty"
    assert (absent in report["warnings"]) == (version == 2)
    # with it: read in both versions
    rows = {
        "payments": [
            [*r[:5], "2023-02-20 10:00:00" if i == 0 else ""]
            for i, r in enumerate(base["payments"])
        ]
    }
    with_it = write_extract(tmp_path / "with", version=version, rows=rows)
    path = with_it / "payments.csv"
    if version == 1:  # a version-1 writer would not know the column: add it by hand
        lines = path.read_text().splitlines()
        lines[0] = ",".join(HEADERS_V2["payments"])
        path.write_text("\n".join(lines) + "\n")
        rewrite_manifest(with_it)
    report = ingest_extract(settings, with_it, STANDARD)
    assert report["rows_quarantined"] == 0
    values = [r["reversed_ts"] for r in raw_rows(settings, "payments")]
    assert [str(v) if v else None for v in values] == ["2023-02-20 10:00:00", None]
    assert not any("reversed_ts" in w for w in report["warnings"])
