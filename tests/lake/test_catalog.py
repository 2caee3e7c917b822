"""The catalog's views follow the pointers; a catalog held open by another client keeps the
versions its views read until the next command that can refreshes it."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from cobranza.config import load_settings
from cobranza.lake import Lake
from cobranza.lake.catalog import catalog_record, catalog_stale, refresh_if_stale
from cobranza.ml.lineage import prune
from tests.lake.lakes import (
    cli,
    flat,
    generations,
    pair,
)

HOLDER = """
import duckdb, sys
con = duckdb.connect({path!r}, read_only=True)
print("open", flush=True)
sys.stdin.read()
"""


def test_a_catalog_held_open_keeps_its_versions_until_it_is_refreshed(tmp_path, caplog):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = generations(lake, 2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(path=str(lake.catalog_path))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with caplog.at_level("WARNING"):
            new = pair(lake, 3)  # the publication succeeds; the refresh cannot
        warning = " ".join(r.getMessage() for r in caplog.records)
        assert str(lake.catalog_path) in warning
        assert f"still show the previous versions (gold {gens[1]['gold']}" in warning
        assert "run `cobranza catalog` once that client has closed it" in warning
        assert lake.current_version("gold") == new[1]
        record = catalog_record(lake)
        assert record["stale"] and record["current"]["gold"] == gens[1]["gold"]
        assert catalog_stale(lake)

        done = prune(settings, keep=1)  # its refresh fails too: the views' versions stay
        assert gens[1]["gold"] not in done.pruned.get("gold", [])
        assert "read by the catalog" in done.kept["gold"][gens[1]["gold"]][0]
        assert (lake.version_dir("gold", gens[1]["gold"]) / "obligation_snapshots").is_dir()
        assert done.pruned["gold"] == [gens[0]["gold"]]

        out = cli(lake, "catalog")  # refused while the client holds the file
        assert out.returncode == 1
        assert "held open by another DuckDB client" in flat(out.stderr)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    # the next command that can refreshes it (here one that then fails for its own reason)
    out = cli(lake, "ingest", str(tmp_path / "no-such-extract"))
    assert out.returncode == 1 and "does not exist" in out.stderr
    assert not catalog_stale(lake)
    cat = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        assert cat.execute("SELECT count(*) FROM gold.obligation_snapshots").fetchone()[0] == 3
    finally:
        cat.close()
    assert prune(settings, keep=1).pruned["gold"] == [gens[1]["gold"]]


def test_refresh_if_stale_is_a_no_op_on_a_fresh_catalog(tmp_path):
    lake = Lake(tmp_path / "lake").ensure()
    pair(lake)
    assert not catalog_stale(lake)
    assert refresh_if_stale(lake) is None


def test_lake_runs_are_listed_for_an_account_that_cannot_read_raw(tmp_path):
    """The runs view reads a copy in the metadata area, no zone folder: with raw gone from
    reach, a read-only connection still lists every run, raw's included."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = Lake(tmp_path / "lake").ensure()
    for zone in ("raw", "silver"):
        with lake.publish(zone) as pub:
            pq.write_table(pa.table({"x": [1]}), pub.table_dir("t") / "part-0.parquet")
    (lake.root / "raw").rename(tmp_path / "raw-out-of-reach")
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        zones = con.execute("SELECT zone FROM ml_metadata.lake_runs ORDER BY zone").fetchall()
    finally:
        con.close()
    assert zones == [("raw",), ("silver",)]
