"""Shared fixtures of the transform tests: one local Spark session and small raw extracts."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from cobranza.config import load_settings
from cobranza.lake import Lake
from cobranza.transforms import run_etl
from tests.transforms.rawdata import publish_raw, random_extract


@pytest.fixture(scope="session")
def spark():
    """One Spark session (local[2]) for every Spark test; stopped at the end of the session."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.appName("cobranza-tests")
        .master("local[2]")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# One pseudonym key for every lake these tests build: two lakes made from one extract (a cut
# extract beside the whole one, DuckDB beside Spark) must give the same client_key.
PSEUDONYM_KEY = "transforms-tests-key-5f0c9d2e7b1a4c3d8e6f"


def etl(
    root: Path,
    tables: dict,
    as_of: date,
    engine: str = "duckdb",
    spark: Any = None,
    version: int = 2,
    **kw,
) -> dict:
    """Publish `tables` as a raw version of contract `version` into a lake at `root` and run the
    ETL on it."""
    publish_raw(root, tables, as_of, version=version)
    kw.setdefault("pseudonym_key", PSEUDONYM_KEY)
    settings = load_settings(lake=root, engine=engine, duckdb_threads=1, **kw)
    return run_etl(settings, spark_session=spark)


def read_table(root: Path, zone: str, table: str) -> pd.DataFrame:
    glob = Lake(root).table_glob(zone, table)
    con = duckdb.connect()
    try:
        return con.execute(f"SELECT * FROM read_parquet('{glob}')").fetch_df()
    finally:
        con.close()


def read_gold(root: Path) -> pd.DataFrame:
    df = read_table(root, "gold", "obligation_snapshots")
    return df.sort_values(["obligation_id", "cut_date"]).reset_index(drop=True)


@pytest.fixture(scope="session")
def small_extract() -> tuple[dict, date]:
    return random_extract(n_clients=40, months=14, seed=7)


@pytest.fixture(scope="session")
def duckdb_lake(tmp_path_factory, small_extract) -> Path:
    """The small extract through the DuckDB ETL once, for the tests that only read its output."""
    root = tmp_path_factory.mktemp("duckdb_lake")
    tables, as_of = small_extract
    etl(root, tables, as_of)
    return root


def read_version(root: Path, zone: str, table: str, version: str) -> pd.DataFrame:
    glob = Lake(root).table_glob(zone, table, version)
    con = duckdb.connect()
    try:
        df = con.execute(f"SELECT * FROM read_parquet('{glob}')").fetch_df()
    finally:
        con.close()
    if zone == "gold":
        df = df.sort_values(["obligation_id", "cut_date"]).reset_index(drop=True)
    return df


@pytest.fixture(scope="session")
def sim_lake(tmp_path_factory, sim_extract_clean) -> Path:
    """The shared clean simulated extract ingested once into a lake of its own."""
    from cobranza.contract import STANDARD
    from cobranza.ingest import ingest_extract

    root = tmp_path_factory.mktemp("sim_lake")
    ingest_extract(load_settings(lake=root), sim_extract_clean, STANDARD)
    return root


@pytest.fixture(scope="session")
def sim_duckdb(sim_lake) -> dict:
    """Summary of the DuckDB ETL on the simulated extract (versions to read its output)."""
    return run_etl(load_settings(lake=sim_lake, engine="duckdb", duckdb_threads=1))


@pytest.fixture(scope="session")
def sim_spark(sim_lake, sim_duckdb, spark) -> dict:
    """Summary of the Spark ETL on the same raw version (runs after DuckDB's, same lake), its gold
    written in parts of at most 400 rows: DuckDB's gold of one statement is what it must equal."""
    settings = load_settings(lake=sim_lake, engine="spark", gold_part_rows=400)
    return run_etl(settings, spark_session=spark)


@pytest.fixture(scope="session")
def sim_v2_lake(tmp_path_factory, sim_extract_v2) -> Path:
    """The version-2 simulated extract ingested once into a lake of its own."""
    from cobranza.contract import STANDARD
    from cobranza.ingest import ingest_extract

    root = tmp_path_factory.mktemp("sim_v2_lake")
    ingest_extract(load_settings(lake=root), sim_extract_v2, STANDARD)
    return root


@pytest.fixture(scope="session")
def sim_v2_duckdb(sim_v2_lake) -> dict:
    return run_etl(load_settings(lake=sim_v2_lake, engine="duckdb", duckdb_threads=1))


@pytest.fixture(scope="session")
def sim_v2_spark(sim_v2_lake, sim_v2_duckdb, spark) -> dict:
    return run_etl(load_settings(lake=sim_v2_lake, engine="spark"), spark_session=spark)
