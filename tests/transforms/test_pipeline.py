"""run_etl's edges: clear errors, nothing published on failure, versions and summary recorded."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from cobranza.config import load_settings
from cobranza.errors import CobranzaError
from cobranza.lake import Lake
from cobranza.transforms import GOLD, SILVER, run_etl
from tests.transforms.rawdata import publish_raw, random_extract

SECRET_KEY = "s3cr3t-key-of-this-test-0123456789abcdef"


def test_no_raw_version_is_a_clear_error(tmp_path):
    with pytest.raises(CobranzaError, match="cobranza ingest"):
        run_etl(load_settings(lake=tmp_path))


def test_failure_publishes_nothing_and_names_the_step(tmp_path):
    tables, as_of = random_extract(n_clients=6, months=5, seed=3)
    publish_raw(tmp_path, tables, as_of)
    settings = load_settings(lake=tmp_path, duckdb_threads=1, pseudonym_key=SECRET_KEY)
    first = run_etl(settings)
    lake = Lake(tmp_path)
    # break one raw table of a new raw version: payments without its amount column
    publish_raw(tmp_path, tables, as_of)
    pdir = lake.table_dir("raw", "payments")
    path = next(pdir.glob("*.parquet"))
    pq.write_table(pq.read_table(path).drop(["amount"]), path)
    with pytest.raises(CobranzaError) as err:
        run_etl(settings)
    message = str(err.value)
    assert "raw.payments" in message and "amount" in message
    assert SECRET_KEY not in message
    assert lake.current_version("silver") == first["silver_version"]
    assert lake.current_version("gold") == first["gold_version"]
    assert [v["version"] for v in lake.versions("silver")] == [first["silver_version"]]


def test_summary_and_lineage(tmp_path):
    tables, as_of = random_extract(n_clients=6, months=5, seed=3)
    raw_version = publish_raw(tmp_path, tables, as_of)
    s = run_etl(load_settings(lake=tmp_path, duckdb_threads=1, horizon_days=20))
    lake = Lake(tmp_path)
    assert s["raw_version"] == raw_version and s["as_of"] == as_of.isoformat()
    assert lake.run_info("silver")["inputs"] == {"raw": raw_version}
    gold_info = lake.run_info("gold")
    assert gold_info["inputs"] == {"silver": s["silver_version"]}
    assert gold_info["horizon_days"] == 20 and gold_info["engine"] == "duckdb"
    assert set(lake.tables("silver")) == set(SILVER) and lake.tables("gold") == list(GOLD)
    assert s["silver_rows"]["clients"] == 6
    assert s["gold"]["rows"] == gold_info["tables"]["obligation_snapshots"]["rows"] > 0
    assert s["gold"]["labeled"] <= s["gold"]["rows"]
    assert set(s["seconds"]) >= {"silver", "gold", "total"}


def test_failing_step_is_named_and_the_secret_never_shown(tmp_path):
    import pyarrow as pa

    tables, as_of = random_extract(n_clients=6, months=5, seed=3)
    publish_raw(tmp_path, tables, as_of)
    lake = Lake(tmp_path)
    path = next(lake.table_dir("raw", "payments").glob("*.parquet"))
    t = pq.read_table(path)
    i = t.schema.get_field_index("amount")
    bad = pa.array(["not-a-number"] * t.num_rows, pa.string())
    pq.write_table(t.set_column(i, "amount", bad), path)
    settings = load_settings(lake=tmp_path, duckdb_threads=1, pseudonym_key=SECRET_KEY)
    with pytest.raises(CobranzaError) as err:
        run_etl(settings)
    assert "etl failed at silver.payments on duckdb" in str(err.value)
    assert SECRET_KEY not in str(err.value)
    assert lake.current_version("silver") is None and lake.current_version("gold") is None


def test_gold_failing_after_silver_leaves_both_zones_as_they_were(tmp_path, monkeypatch):
    """Gold dies after its first part is written: neither silver nor gold is published."""
    import cobranza.transforms.pipeline as pipeline

    tables, as_of = random_extract(n_clients=6, months=5, seed=3)
    publish_raw(tmp_path, tables, as_of)
    settings = load_settings(lake=tmp_path, duckdb_threads=1, gold_part_rows=1)
    first = run_etl(settings)
    assert Lake(tmp_path).run_info("gold")["parts"] > 1
    publish_raw(tmp_path, tables, as_of)
    assembled = []
    real_assemble = pipeline.assemble

    def broken_gold(*args, **kwargs):  # fault injection: the gold step dies at its second part
        assembled.append(1)
        if len(assembled) == 2:
            raise MemoryError("gold died")
        return real_assemble(*args, **kwargs)

    monkeypatch.setattr(pipeline, "assemble", broken_gold)
    with pytest.raises(CobranzaError, match=r"etl failed at gold\.obligation_snapshots"):
        run_etl(settings)
    assert len(assembled) == 2
    lake = Lake(tmp_path)
    assert lake.current_version("silver") == first["silver_version"]
    assert lake.current_version("gold") == first["gold_version"]
    assert [v["version"] for v in lake.versions("silver")] == [first["silver_version"]]
    assert len(list((tmp_path / "silver" / "versions").iterdir())) == 1


def test_a_version_1_raw_version_still_gives_silver_and_gold(tmp_path):
    """No assignment table, no reversed_ts: the gold of a version-2 raw with neither in it."""
    import copy

    import pandas as pd

    from tests.transforms.conftest import etl, read_gold, read_table

    tables, as_of = random_extract(n_clients=8, months=6, seed=3)
    plain = copy.deepcopy(tables)
    plain["collection_assignments"] = []
    for p in plain["payments"]:
        p["reversed_ts"] = None
    etl(tmp_path / "v1", tables, as_of, version=1)
    etl(tmp_path / "v2", plain, as_of)
    lake = Lake(tmp_path / "v1")
    assert "collection_assignments" not in lake.tables("raw")
    assert (
        "reversed_ts"
        not in pq.read_schema(next(lake.table_dir("raw", "payments").glob("*.parquet"))).names
    )
    silver = read_table(tmp_path / "v1", "silver", "payments")
    assert len(silver) > 20 and silver["reversed_ts"].isna().all()
    assert read_table(tmp_path / "v1", "silver", "collection_assignments").empty
    a, b = read_gold(tmp_path / "v1"), read_gold(tmp_path / "v2")
    pd.testing.assert_frame_equal(a.drop(columns="client_key"), b.drop(columns="client_key"))
    latest = a["cut_date"] == a["cut_date"].max()
    assert (a.loc[~latest, "arm"] == "ASSIGNED").all() and a.loc[latest, "arm"].isna().all()
