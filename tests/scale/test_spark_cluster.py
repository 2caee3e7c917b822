"""A Spark standalone cluster (a master and two workers, each its own JVM, on loopback), through
both entry points, doing the work in the workers' executors, not in the driver:

- `cobranza etl --engine spark --spark-master` builds the same silver and gold as DuckDB;
- a `score` job with `engine: spark` through a real `cobranza serve` on loopback, the service
  configured for the cluster the way an operator configures it, scores the champion with results
  equal to the DuckDB path's row for row on the same lake, capacity and holdout included. The
  service's settings reach a job's worker the same way whatever the job's type.

One file, so one worker starts the cluster once for both (`--dist loadfile`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from cobranza.api.keys import create_key
from cobranza.config import load_settings
from cobranza.decision.scoring import OUTPUT_COLUMNS
from cobranza.lake import Lake
from cobranza.tables import LATEST
from cobranza.transforms.schema import GOLD_TABLE, KEYS
from tests.api.conftest import LiveServer, free_port, wait_job
from tests.http import live_client
from tests.scale.conftest import cobranza, lake_copy, ok_json

pytestmark = [pytest.mark.spark, pytest.mark.slow]

EXECUTOR_MEMORY_MB = 768  # below the workers' 1g: the configured spark_conf reaches the cluster
SERVER_START_SECONDS = 300  # a loaded 2-core machine next to a running cluster starts slowly
FLOATS = ("probability", "p_roll_no_action", "p_roll_action", "roll_loss", "expected_benefit")


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


# ---- scoring through the service's job -----------------------------------------------------


def latest(lake, version: str) -> pd.DataFrame:
    table = ds.dataset(str(Lake(lake).table_dir("results", LATEST, version))).to_table()
    return table.to_pandas()


@pytest.fixture(scope="module")
def scored(built_lake, standalone, tmp_path_factory) -> dict:
    """A copy of the built lake trained and scored by DuckDB through the CLI, then scored on the
    cluster by the service's `score` job, with a capacity that binds and a fifth of the eligible
    rows held out. The service takes the master, driver and executor memory and the driver's
    address from COBRANZA_* settings, which every job worker receives."""
    lake = lake_copy(built_lake, tmp_path_factory.mktemp("cluster-score") / "lake")
    env = {
        "COBRANZA_GATE__MAX_ECE": "1.0",
        "COBRANZA_GATE__MAX_PSI": "100.0",
        "COBRANZA_EXPERIMENT__HOLDOUT_SHARE": "0.2",
        "COBRANZA_COSTS__DAILY_CAPACITY": "20",
    }
    trained = ok_json(cobranza(lake, "train", env=env))
    duck = ok_json(cobranza(lake, "score", env=env))
    key = create_key(load_settings(lake=lake), "operator", "cluster-score")["key"]
    before = {app["id"] for app in standalone.state()["completedapps"]}
    conf = {"spark.executor.memory": f"{EXECUTOR_MEMORY_MB}m", "spark.driver.host": "127.0.0.1"}
    server = LiveServer(
        lake,
        free_port(),
        env={
            **env,
            "COBRANZA_SPARK_MASTER": standalone.master_url,
            "COBRANZA_SPARK_DRIVER_MEMORY": "1g",
            "COBRANZA_SPARK_CONF": json.dumps(conf),
            "SPARK_LOCAL_IP": "127.0.0.1",
        },
    ).start(timeout=SERVER_START_SECONDS)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with live_client(base_url=server.url, timeout=60) as http:
            r = http.post(
                "/v1/jobs", json={"type": "score", "params": {"engine": "spark"}}, headers=headers
            )
            assert r.status_code == 202, r.text
            job = wait_job(server.url, headers, r.json()["job_id"], timeout=1200)
    finally:
        server.stop()
    assert job["status"] == "succeeded", job
    return {
        "lake": lake,
        "trained": trained,
        "duck": duck,
        "spark": job["result"],
        "before": before,
    }


def test_cluster_scoring_equals_duckdb_scoring(scored):
    lake, duck, spark = scored["lake"], scored["duck"], scored["spark"]
    assert spark["model_version"] == duck["model_version"] == scored["trained"]["version"]
    a = latest(lake, duck["results_version"])
    b = latest(lake, spark["results_version"])
    assert list(a.columns) == list(b.columns) == OUTPUT_COLUMNS
    assert len(a) == len(b) == duck["obligations"] > 30
    assert a["obligation_id"].tolist() == b["obligation_id"].tolist()
    for col in OUTPUT_COLUMNS:
        if col == "scoring_run_id":
            continue
        x, y = a[col], b[col]
        assert (x.isna() == y.isna()).all(), col
        m = x.notna().to_numpy()
        if col in FLOATS or col.endswith("_contribution") or col == "amount_past_due":
            np.testing.assert_allclose(
                x[m].to_numpy(float), y[m].to_numpy(float), rtol=1e-12, atol=1e-12, err_msg=col
            )
        else:
            assert x[m].tolist() == y[m].tolist(), col
    assert spark["capacity_limited"] == duck["capacity_limited"] > 0
    assert spark["holdout"] == duck["holdout"] > 0
    assert Lake(lake).current_version("results") == spark["results_version"]
    assert Lake(lake).run_info("results", spark["results_version"])["engine"] == "spark"


def test_the_scoring_ran_on_the_workers_executors(standalone, scored):
    """The master lists the scoring as a finished application on both workers' cores, and the
    executors' own logs show its tasks (the Arrow batches were scored there, not in the driver)."""
    state = standalone.state()
    apps = [a for a in state["completedapps"] if a["id"] not in scored["before"]]
    assert [a["name"] for a in apps] == ["cobranza-score"], state["completedapps"]
    app = apps[0]
    assert app["state"] == "FINISHED" and app["cores"] == 2
    assert app["memoryperexecutor"] == EXECUTOR_MEMORY_MB
    finished = 0
    for i in (1, 2):
        logs = sorted(standalone.worker_dir(i).glob(f"{app['id']}/*/stderr"))
        assert logs, f"worker {i} launched no executor for {app['id']}"
        finished += sum(log.read_text(errors="replace").count("Finished task") for log in logs)
    assert finished > 0
