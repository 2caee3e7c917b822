"""The simulated extract in both dialects: exactly the recorded defective lines are quarantined."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cobranza.contract import BANK_LATIN1, FILES, STANDARD
from cobranza.ingest import ingest_extract
from cobranza.lake import Lake
from tests.ingest.test_validate import raw_rows, raw_rows_q

pytestmark = pytest.mark.slow


def _noise(extract) -> dict[str, list[dict]]:
    return json.loads((extract / "_truth" / "noise.json").read_text())["files"]


@pytest.mark.parametrize(
    ("fixture", "dialect"),
    [("sim_extract", STANDARD), ("sim_extract_latin1", BANK_LATIN1)],
    ids=["standard", "bank-latin1"],
)
def test_recorded_defects_are_exactly_the_quarantine(request, settings, fixture, dialect):
    extract = request.getfixturevalue(fixture)
    report = ingest_extract(settings, extract, dialect)
    noise = _noise(extract)
    quarantine = raw_rows_q(settings)
    manifest = json.loads((extract / "manifest.json").read_text())
    assert sum(len(v) for v in noise.values()) > 0
    for spec in FILES:
        name = spec.filename
        defects = noise.get(name, [])
        q = [r for r in quarantine if r["file"] == name]
        expected_lines = {d["line"] for d in defects if d["kind"] != "duplicate"}
        assert {r["line"] for r in q} == expected_lines, name
        # The column is the one the defect was put in (key conflicts name the key instead).
        expected_cells = {
            (d["line"], d["column"])
            for d in defects
            if d["kind"] not in ("duplicate", "conflicting_duplicate")
        }
        cells = {(r["line"], r["column"]) for r in q}
        assert expected_cells <= cells, name
        counts = report["files"][name]
        assert counts["duplicates_collapsed"] == sum(d["kind"] == "duplicate" for d in defects)
        assert counts["rows_quarantined"] == len(expected_lines)
        assert counts["rows_read"] == manifest["files"][name]["rows"]
        assert counts["rows_read"] == (
            counts["rows_accepted"] + counts["rows_quarantined"] + counts["duplicates_collapsed"]
        )
    kinds = Counter(d["kind"] for v in noise.values() for d in v)
    assert len(kinds) >= 5  # the fixture exercises most defect kinds
    assert Lake(settings.lake).run_info("raw")["as_of"] == manifest["as_of"]


def test_both_dialects_give_the_same_raw_data(tmp_path, sim_extract, sim_extract_latin1):
    from cobranza.config import load_settings

    tables = {}
    for name, extract, dialect in [
        ("standard", sim_extract, STANDARD),
        ("latin1", sim_extract_latin1, BANK_LATIN1),
    ]:
        s = load_settings(lake=tmp_path / name, duckdb_memory_limit="512MB", duckdb_threads=1)
        ingest_extract(s, extract, dialect)
        tables[name] = {t: raw_rows(s, t) for t in ("clients", "payments", "account_monthly")}
    for table in tables["standard"]:
        assert tables["standard"][table] == tables["latin1"][table], table


@pytest.mark.parametrize("dialect", [STANDARD, BANK_LATIN1], ids=lambda d: d.name)
def test_a_clean_simulation_ingests_with_nothing_quarantined(tmp_path, settings, dialect):
    """The number and year rules accept everything the simulator writes (contract version 2)."""
    from cobranza.simulate import simulate
    from tests.conftest import sim_config

    extract = tmp_path / "clean"
    # the bank's default holdout (10% over the last 6 months), not the test world's larger one:
    # there a held-out row's horizon can reach actions of the obligation's next, assigned cut
    simulate(extract, sim_config(noise=0.0, holdout_share=0.1, holdout_months=6), dialect)
    report = ingest_extract(settings, extract, dialect)
    assert report["rows_read"] > 10_000
    assert report["rows_quarantined"] == 0
    assert report["duplicates_collapsed"] == 0
    assert report["contract_version"] == 2
    assert report["warnings"] == []  # a complete version-2 extract: nothing to warn about
    assert report["rows_accepted"] == report["rows_read"]


def test_a_version_2_simulation_ingests_its_gzip_files_and_counts_its_arms(
    tmp_path, settings, sim_extract_v2
):
    """The upgraded simulated extract: nothing quarantined, files named as delivered, the arms and
    missing assignments the upgrade wrote, and its contamination (the simulator managed everyone)."""
    from tests.extracts import UPGRADE_FILE

    added = json.loads((sim_extract_v2 / "_truth" / UPGRADE_FILE).read_text())
    report = ingest_extract(settings, sim_extract_v2, STANDARD)
    assert report["contract_version"] == 2 and report["rows_quarantined"] == 0
    assert {"payments.csv.gz", "collection_assignments.csv.gz", "account_monthly.csv.gz"} <= set(
        report["files"]
    )
    a = report["assignments"]
    assert a["arms"] == added["arms"] and a["missing"] == added["missing"]
    assert a["latest_cut"] == added["latest_cut"] and a["latest_cut_undecided"] > 0
    assert a["contamination"]["actions"] > 0
    reversed_ts = [r["reversed_ts"] for r in raw_rows(settings, "payments")]
    assert sum(v is not None for v in reversed_ts) == added["reversed"] > 0
