"""DuckDB and Spark run the same Ibis transforms: identical gold and silver on the same extract.

One Spark run (the slowest thing here) per shared simulated extract, version 1 and version 2 (arms,
reversals: every treatment and label column takes all its values); DuckDB's run on the same raw
version is reused from the end-to-end fixtures.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.dataset as ds
import pytest

from cobranza.lake import Lake
from cobranza.transforms import SILVER
from cobranza.transforms.schema import GOLD_TABLE, KEYS
from tests.transforms.conftest import read_version

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_gold_identical(sim_lake, sim_duckdb, sim_spark):
    """DuckDB's gold of one statement equals Spark's written in parts (appended one by one)."""
    assert sim_duckdb["gold_version"] != sim_spark["gold_version"]
    lake = Lake(sim_lake)
    assert lake.run_info("gold", sim_duckdb["gold_version"])["parts"] == 1
    assert lake.run_info("gold", sim_spark["gold_version"])["parts"] >= 3
    _assert_same_gold(sim_lake, sim_duckdb, sim_spark)


def test_gold_identical_on_a_version_2_extract(sim_v2_lake, sim_v2_duckdb, sim_v2_spark):
    gold = _assert_same_gold(sim_v2_lake, sim_v2_duckdb, sim_v2_spark)
    assert set(gold["arm"].dropna()) == {"ASSIGNED", "HOLDOUT", "RULE"}
    for column in ("self_cure_debit", "cure_any", "roll_31_plus", "assigned"):
        assert set(gold[column].dropna()) == {0, 1}, column
    assert gold["days_to_first_action"].notna().any() and (gold["action_cost"] > 0).any()
    for table, key in (("payments", "payment_id"), ("collection_assignments", "obligation_id")):
        a, b = (
            read_version(sim_v2_lake, "silver", table, run["silver_version"])
            .sort_values([key, *(["cut_date"] if table == "collection_assignments" else [])])
            .reset_index(drop=True)
            for run in (sim_v2_duckdb, sim_v2_spark)
        )
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=f"silver.{table}")
    assert (
        read_version(sim_v2_lake, "silver", "payments", sim_v2_duckdb["silver_version"])[
            "reversal_date"
        ]
        .notna()
        .any()
    )


def _assert_same_gold(lake_root, duckdb_run: dict, spark_run: dict):
    """Both engines' gold of one raw version, column by column; returns DuckDB's."""
    assert spark_run["engine"] == "spark" and spark_run["raw_version"] == duckdb_run["raw_version"]
    a = read_version(lake_root, "gold", GOLD_TABLE, duckdb_run["gold_version"])
    b = read_version(lake_root, "gold", GOLD_TABLE, spark_run["gold_version"])
    assert list(a.columns) == list(b.columns)
    assert len(a) > 500 and a[list(KEYS)].equals(b[list(KEYS)])
    for col in a.columns:
        x, y = a[col], b[col]
        assert (x.isna() == y.isna()).all(), f"nulls differ in {col}"
        m = x.notna()
        # floats too, bit for bit: money is summed exactly (`features.money_sum`), whatever the
        # order each engine adds the rows in
        assert (x[m] == y[m]).all(), f"values differ in {col}"
    lake = Lake(lake_root)
    sa = ds.dataset(str(lake.table_dir("gold", GOLD_TABLE, duckdb_run["gold_version"]))).schema
    sb = ds.dataset(str(lake.table_dir("gold", GOLD_TABLE, spark_run["gold_version"]))).schema
    assert [(f.name, f.type) for f in sa] == [(f.name, f.type) for f in sb]
    return a


def test_silver_identical_counts_and_keys(sim_lake, sim_duckdb, sim_spark):
    assert set(sim_duckdb["silver_rows"]) == set(SILVER) == set(sim_spark["silver_rows"])
    assert sim_duckdb["silver_rows"] == sim_spark["silver_rows"]
    assert sim_duckdb["gold"] == sim_spark["gold"]
    # pseudonyms agree bit for bit (same keyed hash in both engines)
    ka = read_version(sim_lake, "silver", "clients", sim_duckdb["silver_version"])
    kb = read_version(sim_lake, "silver", "clients", sim_spark["silver_version"])
    assert set(ka["client_key"]) == set(kb["client_key"])
    assert len(ka) == sim_duckdb["silver_rows"]["clients"] > 1000
