"""The engines' sizes: DuckDB's memory setting read as bytes, and gold's part size derived from it."""

from __future__ import annotations

import pytest

from cobranza.config import load_settings
from cobranza.transforms.engines import GOLD_ROW_BYTES, DuckDBEngine, EngineError, memory_bytes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11.1 GiB", int(11.1 * 1024**3)),
        ("4.0 GB", 4 * 1000**3),
        ("512 MiB", 512 * 1024**2),
        ("953.6 KiB", int(953.6 * 1024)),
        ("100 bytes", 100),
        ("12 parsecs", None),
        ("lots", None),
    ],
)
def test_memory_setting_as_duckdb_prints_it_is_read_in_bytes(text, expected):
    if expected is None:
        with pytest.raises(EngineError, match="memory limit"):
            memory_bytes(text)
    else:
        assert memory_bytes(text) == expected


def test_duckdb_assembles_gold_in_parts_sized_by_its_memory_limit(tmp_path):
    settings = load_settings(lake=tmp_path, duckdb_memory_limit="1GB", duckdb_threads=1)
    with DuckDBEngine(settings) as eng:
        rows = eng.part_rows()
    assert 0.9e9 / GOLD_ROW_BYTES < rows <= 1e9 / GOLD_ROW_BYTES


def test_a_released_table_is_gone_from_each_engine(tmp_path, spark):
    """What `materialize` keeps (the pseudonym maps hold the bank's ids) `release` frees: the
    DuckDB temp table is dropped, Spark's cached view is dropped."""
    import ibis

    from cobranza.transforms.engines import SparkEngine

    settings = load_settings(lake=tmp_path, duckdb_threads=1)
    with DuckDBEngine(settings) as eng:
        kept = eng.materialize("ids", ibis.memtable({"_pid": ["C1", "C2"]}))
        assert eng.con.execute(kept.count()) == 2
        name = kept.op().name
        assert name in eng.con.list_tables()
        eng.release(kept)
        assert name not in eng.con.list_tables()
    eng = SparkEngine(load_settings(lake=tmp_path, engine="spark"), session=spark)
    try:
        table = spark.createDataFrame([("C1",), ("C2",)], ["_pid"])
        table.createOrReplaceTempView("ids_source")
        kept = eng.materialize("ids", eng.con.table("ids_source"))
        name = kept.op().name
        plan = spark.sql(f"EXPLAIN SELECT * FROM {name}").collect()[0][0]
        assert "InMemoryTableScan" in plan  # read from Spark's cache
        eng.release(kept)
        assert not spark.catalog.tableExists(name)
    finally:
        eng.close()
        spark.catalog.dropTempView("ids_source")
