"""Scoring on Spark publishes the DuckDB path's results row for row: same probabilities and
estimates (to 1e-12), decisions, capacity flags, arms and reasons, in the same results schema and
lake mechanics, with and without a binding capacity; `cobranza score --engine spark` runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from cobranza.config import load_settings
from cobranza.decision import scoring, spark_scoring
from cobranza.decision.experiment import HOLDOUT
from cobranza.decision.reasons import CAPACITY_LIMITED, CONTROL_GROUP
from cobranza.lake import Lake
from cobranza.tables import LATEST, SCORES

pytestmark = pytest.mark.spark

COBRANZA = str(Path(sys.executable).with_name("cobranza"))
FLOATS = ("probability", "p_roll_no_action", "p_roll_action", "roll_loss", "expected_benefit")
# figures of a run, not of its rows
SPARK_ARGS = ("--engine", "spark", "--spark-master", "local[1]")
RUN_FIELDS = {"scoring_run_id", "results_version", "rows_per_second", "seconds", "timings"}


@pytest.fixture(scope="module")
def spark():
    """A local[2] session whose Arrow batches hold 40 rows: a cut is scored in many batches."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.appName("cobranza-score-tests")
        .master("local[2]")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "40")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def copied_lake(decision_lake, dest: Path) -> Path:
    """A copy of the decision tests' lake with its registry: results published here stay here."""
    shutil.copytree(decision_lake["lake"].root, dest, symlinks=True)
    return dest


def lake_settings(decision_lake, lake: Path, **overrides):
    return load_settings(
        lake=lake,
        truth_path=decision_lake["settings"].truth_path,
        experiment={"holdout_share": 0.2},
        **overrides,
    )


def results(lake: Path, version: str, table: str) -> pd.DataFrame:
    return ds.dataset(str(Lake(lake).table_dir("results", table, version))).to_table().to_pandas()


def run_info(lake: Path, version: str) -> dict:
    return Lake(lake).run_info("results", version)


@pytest.fixture(scope="module", params=[None, "tight"], ids=["no-capacity", "capacity"])
def both(request, decision_lake, spark, tmp_path_factory) -> dict:
    """The same lake scored by DuckDB, then by Spark; with a capacity of a third of the cut's
    eligible rows, or none."""
    lake = copied_lake(decision_lake, tmp_path_factory.mktemp("spark-score") / "lake")
    capacity = None
    if request.param == "tight":
        capacity = int(decision_lake["first"].eligible // 3)
    settings = lake_settings(decision_lake, lake, costs={"daily_capacity": capacity})
    duck = scoring.score(settings)
    sp = spark_scoring.score(settings, spark_session=spark)
    return {"lake": lake, "duck": duck, "spark": sp, "capacity": capacity}


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same columns and rows in the same order; floats to 1e-12, everything else exactly."""
    assert list(a.columns) == list(b.columns) == scoring.OUTPUT_COLUMNS
    assert len(a) == len(b) > 0
    assert a["obligation_id"].tolist() == sorted(a["obligation_id"])
    assert a["obligation_id"].tolist() == b["obligation_id"].tolist()
    for col in a.columns:
        if col == "scoring_run_id":
            continue
        x, y = a[col], b[col]
        assert (x.isna() == y.isna()).all(), f"nulls differ in {col}"
        m = x.notna().to_numpy()
        if col in FLOATS or col.endswith("_contribution") or col == "amount_past_due":
            np.testing.assert_allclose(
                x[m].to_numpy(float), y[m].to_numpy(float), rtol=1e-12, atol=1e-12, err_msg=col
            )
        else:
            assert x[m].tolist() == y[m].tolist(), f"values differ in {col}"


def test_spark_results_equal_duckdb_results_row_for_row(both):
    lake, duck, sp = both["lake"], both["duck"], both["spark"]
    for table in (LATEST, SCORES):
        a = results(lake, duck.results_version, table)
        b = results(lake, sp.results_version, table)
        assert_same_rows(a, b)
        assert (a["scoring_run_id"] == duck.scoring_run_id).all()
        assert (b["scoring_run_id"] == sp.scoring_run_id).all()
    # what the run's rows hold: every kind of row is compared, not only the easy ones
    b = results(lake, sp.results_version, LATEST)
    assert (b["arm"] == HOLDOUT).sum() > 0
    assert (b.loc[b["arm"] == HOLDOUT, "reason_1_code"] == CONTROL_GROUP).all()
    assert set(b["decision"]) == {"ASSIGN", "NO_ASSIGN"}


def test_a_binding_capacity_is_ranked_over_the_whole_cut(both):
    """With a binding capacity the cut's ASSIGN rows are exactly the capacity (the ineligible ones,
    ASSIGN by rule, first; then the largest expected benefits), whichever batch each row was
    scored in."""
    lake, sp = both["lake"], both["spark"]
    b = results(lake, sp.results_version, LATEST)
    limited = b["capacity_limited"].to_numpy(dtype=bool)
    if both["capacity"] is None:
        assert not limited.any()
        return
    assert limited.sum() > 10  # binds, across many 40-row batches
    assert (b["decision"] == "ASSIGN").sum() == both["capacity"]
    assigned_eligible = (b["decision"] == "ASSIGN") & b["eligible"]
    assert 0 < assigned_eligible.sum() < both["capacity"]
    assert (b.loc[limited, "decision"] == "NO_ASSIGN").all()
    assert (b.loc[limited, "reason_1_code"] == CAPACITY_LIMITED).all()
    # the capacity keeps the largest benefits: none limited above an eligible ASSIGN row's
    assert b.loc[limited, "expected_benefit"].max() <= (
        b.loc[assigned_eligible, "expected_benefit"].min()
    )


def test_the_summaries_and_run_records_agree(both):
    lake, duck, sp = both["lake"], both["duck"], both["spark"]
    a = {k: v for k, v in duck.to_json().items() if k not in RUN_FIELDS}
    b = {k: v for k, v in sp.to_json().items() if k not in RUN_FIELDS}
    assert a == b
    ra, rb = run_info(lake, duck.results_version), run_info(lake, sp.results_version)
    for key in ("policy", "model_version", "model_run_id", "as_of", "experiment", "inputs"):
        assert ra[key] == rb[key], key
    assert (ra["engine"], rb["engine"]) == ("duckdb", "spark")
    assert ra["history_tables"] == rb["history_tables"] == [SCORES]
    assert rb["tables"][LATEST]["rows"] == rb["tables"][SCORES]["rows"] == sp.obligations


def test_consumers_read_the_spark_version_through_the_catalog(both):
    """The catalog's results.latest is the Spark run's rows and results.scores holds both runs,
    in the DuckDB path's schema."""
    lake, duck, sp = both["lake"], both["duck"], both["spark"]
    assert Lake(lake).current_version("results") == sp.results_version
    con = duckdb.connect(str(Lake(lake).catalog_path), read_only=True)
    try:
        latest = con.execute(
            "SELECT count(*), count(DISTINCT scoring_run_id), any_value(scoring_run_id) "
            "FROM results.latest"
        ).fetchone()
        runs = dict(
            con.execute("SELECT scoring_run_id, count(*) FROM results.scores GROUP BY 1").fetchall()
        )
        schema = con.execute("DESCRIBE results.latest").fetchall()
    finally:
        con.close()
    assert latest == (sp.obligations, 1, sp.scoring_run_id)
    assert runs[duck.scoring_run_id] == runs[sp.scoring_run_id] == sp.obligations
    assert [r[0] for r in schema] == scoring.OUTPUT_COLUMNS
    sa = ds.dataset(str(Lake(lake).table_dir("results", LATEST, duck.results_version))).schema
    sb = ds.dataset(str(Lake(lake).table_dir("results", LATEST, sp.results_version))).schema
    assert [(f.name, f.type) for f in sa] == [(f.name, f.type) for f in sb]


def test_score_command_runs_on_spark(decision_lake, tmp_path):
    """`cobranza score --engine spark --spark-master local[1]`: the Spark path from the command
    line, its rows equal to the DuckDB path's on the same cut."""
    lake = copied_lake(decision_lake, tmp_path / "lake")
    settings = lake_settings(decision_lake, lake)
    duck = scoring.score(settings)
    env = {
        "COBRANZA_TRUTH_PATH": str(settings.truth_path),
        "COBRANZA_EXPERIMENT__HOLDOUT_SHARE": "0.2",
        "COBRANZA_SPARK_DRIVER_MEMORY": "1g",
        "COLUMNS": "1000",
    }
    out = subprocess.run(
        [COBRANZA, "--lake", str(lake), "--json", "score", *SPARK_ARGS],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, **env},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert run_info(lake, summary["results_version"])["engine"] == "spark"
    assert summary["obligations"] == duck.obligations
    assert_same_rows(
        results(lake, duck.results_version, LATEST),
        results(lake, summary["results_version"], LATEST),
    )


def test_spark_routes_the_challenger_arm_as_duckdb_does(challenger_lake, spark, tmp_path):
    """With a registered challenger, Spark decides the CHALLENGER arm with the challenger, as the
    DuckDB path does: same rows, same deciding versions, a capacity ranked over both arms, and
    the same challenger figures in the summary and the run's record."""
    from cobranza.decision.experiment import CHALLENGER

    lake = tmp_path / "lake"
    shutil.copytree(challenger_lake["lake"].root, lake, symlinks=True)
    base = challenger_lake["settings"]
    per_cut = int(challenger_lake["scored"].eligible // 3)
    settings = load_settings(
        lake=lake,
        pseudonym_key=base.pseudonym_key.get_secret_value(),
        experiment=base.experiment.model_dump(),
        costs={"daily_capacity": per_cut},
    )
    duck = scoring.score(settings)
    sp = spark_scoring.score(settings, spark_session=spark)
    a = results(lake, duck.results_version, LATEST)
    b = results(lake, sp.results_version, LATEST)
    assert_same_rows(a, b)
    routed = a["arm"] == CHALLENGER
    challenger = challenger_lake["challenger"]
    assert routed.any() and (a.loc[routed, "model_version"] == str(challenger.version)).all()
    assert a["capacity_limited"].any()
    assert sp.challenger == duck.challenger == int(routed.sum()) > 0
    assert sp.challenger_version == duck.challenger_version == str(challenger.version)
    duck_run, spark_run = run_info(lake, duck.results_version), run_info(lake, sp.results_version)
    assert duck_run["experiment"] == spark_run["experiment"]
    assert spark_run["experiment"]["challenger_version"] == str(challenger.version)
