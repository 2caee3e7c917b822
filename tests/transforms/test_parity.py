"""DuckDB and Spark run the same Ibis transforms: identical gold and silver on the same extract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from cobranza.lake import Lake
from cobranza.transforms import SILVER
from cobranza.transforms.schema import GOLD_TABLE, KEYS
from tests.transforms.conftest import etl, read_gold, read_table


@pytest.fixture(scope="module")
def spark_lake(tmp_path_factory, small_extract, spark):
    root = tmp_path_factory.mktemp("spark_lake")
    tables, as_of = small_extract
    summary = etl(root, tables, as_of, engine="spark", spark=spark)
    assert summary["engine"] == "spark"
    return root


def _schema(root, zone, table):
    return ds.dataset(str(Lake(root).table_dir(zone, table)), format="parquet").schema


@pytest.mark.spark
def test_gold_identical(duckdb_lake, spark_lake):
    a, b = read_gold(duckdb_lake), read_gold(spark_lake)
    assert list(a.columns) == list(b.columns)
    assert a[list(KEYS)].equals(b[list(KEYS)])
    assert len(a) > 50
    for col in a.columns:
        x, y = a[col], b[col]
        assert (x.isna() == y.isna()).all(), f"nulls differ in {col}"
        m = x.notna()
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            np.testing.assert_allclose(
                x[m].astype(float), y[m].astype(float), rtol=0, atol=1e-9, err_msg=col
            )
        else:
            assert (x[m] == y[m]).all(), f"values differ in {col}"
    sa, sb = _schema(duckdb_lake, "gold", GOLD_TABLE), _schema(spark_lake, "gold", GOLD_TABLE)
    assert [(f.name, f.type) for f in sa] == [(f.name, f.type) for f in sb]


@pytest.mark.spark
def test_silver_row_counts_identical(duckdb_lake, spark_lake):
    ra = Lake(duckdb_lake).run_info("silver")["tables"]
    rb = Lake(spark_lake).run_info("silver")["tables"]
    assert set(ra) == set(SILVER) == set(rb)
    assert {t: ra[t]["rows"] for t in ra} == {t: rb[t]["rows"] for t in rb}
    # pseudonyms agree bit for bit (same keyed hash in both engines)
    ka = set(read_table(duckdb_lake, "silver", "clients")["client_key"])
    kb = set(read_table(spark_lake, "silver", "clients")["client_key"])
    assert ka == kb and len(ka) == ra["clients"]["rows"]
