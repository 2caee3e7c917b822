"""`cobranza etl --engine spark` on a Spark standalone cluster (a master and two workers, each its own
JVM, on loopback) builds the same silver and gold as DuckDB, with the work done by the workers'
executors, not in the driver. The service's jobs on the cluster are proved by
`test_spark_scoring_cluster.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from cobranza.lake import Lake
from cobranza.transforms.schema import GOLD_TABLE, KEYS
from tests.scale.conftest import cobranza, lake_copy, ok_json

pytestmark = [pytest.mark.spark, pytest.mark.slow]

EXECUTOR_MEMORY_MB = 768  # below the workers' 1g: the session's spark_conf reaches the cluster


def read_gold(lake: Path, version: str) -> pd.DataFrame:
    table = ds.dataset(str(Lake(lake).table_dir("gold", GOLD_TABLE, version))).to_table()
    return table.to_pandas().sort_values(list(KEYS)).reset_index(drop=True)


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns, keys, nulls and values (numbers to 1e-9 relative: sums in another order)."""
    assert list(a.columns) == list(b.columns)
    assert a[list(KEYS)].equals(b[list(KEYS)])
    for col in a.columns:
        x, y = a[col], b[col]
        assert (x.isna() == y.isna()).all(), f"nulls differ in {col}"
        m = x.notna()
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            np.testing.assert_allclose(
                x[m].astype(float), y[m].astype(float), rtol=1e-9, atol=1e-9, err_msg=col
            )
        else:
            assert (x[m] == y[m]).all(), f"values differ in {col}"


@pytest.fixture(scope="module")
def cluster_etl(built_lake, standalone, tmp_path_factory) -> dict:
    """The CLI's Spark ETL, driver in its own process, executors on the cluster's workers."""
    lake = lake_copy(built_lake, tmp_path_factory.mktemp("cluster") / "lake")
    before = {app["id"] for app in standalone.state()["completedapps"]}
    env = {
        "SPARK_LOCAL_IP": "127.0.0.1",
        "COBRANZA_SPARK_DRIVER_MEMORY": "1g",
        "COBRANZA_SPARK_CONF": json.dumps({"spark.executor.memory": f"{EXECUTOR_MEMORY_MB}m"}),
    }
    out = cobranza(
        lake, "etl", "--engine", "spark", "--spark-master", standalone.master_url, env=env
    )
    return {"lake": lake, "summary": ok_json(out), "apps_before": before}


def test_cluster_gold_equals_duckdb_gold(built_lake, cluster_etl):
    duck, spark = built_lake[1], cluster_etl["summary"]
    assert spark["engine"] == "spark" and spark["raw_version"] == duck["raw_version"]
    assert spark["silver_rows"] == duck["silver_rows"]
    assert spark["gold"] == duck["gold"] and duck["gold"]["rows"] > 500
    lake = cluster_etl["lake"]
    a = read_gold(lake, duck["gold_version"])
    b = read_gold(lake, spark["gold_version"])
    assert_same_table(a, b)
    sa = ds.dataset(str(Lake(lake).table_dir("gold", GOLD_TABLE, duck["gold_version"]))).schema
    sb = ds.dataset(str(Lake(lake).table_dir("gold", GOLD_TABLE, spark["gold_version"]))).schema
    assert [(f.name, f.type) for f in sa] == [(f.name, f.type) for f in sb]
    assert Lake(lake).current_version("gold") == spark["gold_version"]


def test_the_work_ran_on_the_workers_executors(standalone, cluster_etl):
    """The master lists the ETL as a finished application on both workers' cores, each worker
    launched an executor for it, and the executors ran its tasks (their own logs say so)."""
    state = standalone.state()
    apps = [a for a in state["completedapps"] if a["id"] not in cluster_etl["apps_before"]]
    assert [a["name"] for a in apps] == ["cobranza-etl"], state["completedapps"]
    app = apps[0]
    assert app["state"] == "FINISHED"
    assert app["cores"] == 2  # one executor core on each worker
    assert app["memoryperexecutor"] == EXECUTOR_MEMORY_MB
    finished = {}
    for i in (1, 2):
        logs = sorted(standalone.worker_dir(i).glob(f"{app['id']}/*/stderr"))
        assert logs, f"worker {i} launched no executor for {app['id']}"
        finished[i] = sum(log.read_text(errors="replace").count("Finished task") for log in logs)
    assert sum(finished.values()) > 50, finished
