"""Gold is a function of silver's content, never of its row order: the same silver tables stored in
another order give gold equal bit for bit, every column.

DuckDB runs on one thread here, so the order in which an aggregate meets its rows follows the
order the rows are stored in. The money of two obligations (payments, collection actions) and one
account (its months) is set to values whose floating-point sum depends on the order of addition
(0.1 + 1e15 - 1e15 is 0.125 or 0.1 in double precision): only an exact sum gives the same gold
whatever the order.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from cobranza.config import load_settings
from cobranza.lake import Lake
from cobranza.transforms import SILVER
from cobranza.transforms.engines import DuckDBEngine
from cobranza.transforms.gold import assemble, snapshot_parts
from cobranza.transforms.schema import KEYS

# A cycle of money amounts whose double-precision sum changes with the order of addition.
ORDER_SENSITIVE = (0.1, 1e15, -1e15, 0.7, 3e14, -3e14)


def _order_sensitive(table: pa.Table, key: str, value: str, columns: tuple[str, ...]) -> pa.Table:
    """`table` with `columns` set to the ORDER_SENSITIVE cycle on the rows where `key` is `value`."""
    rows = np.flatnonzero(pc.equal(table[key], value).to_numpy(zero_copy_only=False))
    assert len(rows) >= 3, f"{key} {value} has {len(rows)} rows"
    for i, column in enumerate(columns):
        values = table[column].to_numpy(zero_copy_only=False).astype(float)
        values[rows] = [ORDER_SENSITIVE[(i + j) % len(ORDER_SENSITIVE)] for j in range(len(rows))]
        table = _with(table, column, pa.array(values, pa.float64()))
    return table


def _in_threes(table: pa.Table, obligation: str, id_column: str, money: str) -> pa.Table:
    """`table` with each event of `obligation` made three on the same day, with amounts 0.1, 1e15
    and -1e15: every period and every horizon holding one of its events holds all three."""
    mine = pc.equal(table["obligation_id"], obligation)
    rows = table.filter(mine)
    assert rows.num_rows > 0, f"no row of {obligation}"
    copies = [
        _with(
            _with(rows, id_column, pc.binary_join_element_wise(rows[id_column], suffix, "")),
            money,
            pa.array([amount] * rows.num_rows, pa.float64()),
        )
        for suffix, amount in zip(("", "-b", "-c"), ORDER_SENSITIVE[:3], strict=True)
    ]
    return pa.concat_tables([table.filter(pc.invert(mine)), *copies])


def _with(table: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.column_names.index(column), column, values)


def _most_frequent(table: pa.Table, column: str) -> str:
    counts = (
        table.group_by(column)
        .aggregate([([], "count_all")])
        .sort_by([("count_all", "descending"), (column, "ascending")])
    )
    return counts[column][0].as_py()


@pytest.fixture(scope="module")
def silver(duckdb_lake) -> tuple[dict[str, pa.Table], dict]:
    """The small extract's silver tables, with order-sensitive money on the obligations with the
    most payments and the most collection actions (each event made three), and on the account
    with the most months."""
    lake = Lake(duckdb_lake)
    version = lake.require_version("silver")
    tables = {
        name: ds.dataset(str(lake.table_dir("silver", name, version))).to_table() for name in SILVER
    }
    for name, id_column, money in (
        ("payments", "payment_id", "amount"),
        ("collection_actions", "action_id", "cost"),
    ):
        obligation = _most_frequent(tables[name], "obligation_id")
        tables[name] = _in_threes(tables[name], obligation, id_column, money)
    account = _most_frequent(tables["account_monthly"], "account_key")
    tables["account_monthly"] = _order_sensitive(
        tables["account_monthly"],
        "account_key",
        account,
        ("avg_balance", "inflow_total", "outflow_total", "payroll_inflow"),
    )
    meta = lake.run_info("silver", version)
    return tables, meta


def _gold(lake_root: Path, tables: dict[str, pa.Table], as_of: date) -> pd.DataFrame:
    """Gold of these silver tables on the ETL's DuckDB engine with one thread, sorted by its keys."""
    settings = load_settings(lake=lake_root, duckdb_threads=1)
    with DuckDBEngine(settings) as eng:
        silver = {name: eng.con.create_table(name, t) for name, t in tables.items()}
        latest_cut = max(tables["cut_calendar"]["cut_date"].to_pylist())
        parts = snapshot_parts(
            silver, as_of, latest_cut, settings.horizon_days, materialize=eng.materialize
        )
        gold = eng.con.to_pyarrow(assemble(parts))
    return gold.to_pandas().sort_values(list(KEYS)).reset_index(drop=True)


def _reordered(tables: dict[str, pa.Table], order: str) -> dict[str, pa.Table]:
    rng = np.random.default_rng(20261206)
    out = {}
    for name, t in tables.items():
        rows = np.arange(t.num_rows)[::-1] if order == "reversed" else rng.permutation(t.num_rows)
        out[name] = t.take(pa.array(rows, pa.int64()))
    return out


def _differing_columns(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """Columns whose values are not identical (nulls in the same rows, equal values elsewhere)."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    differ = []
    for col in a.columns:
        x, y = a[col], b[col]
        same_nulls = (x.isna() == y.isna()).all()
        m = x.notna() & y.notna()
        if not same_nulls or not (x[m] == y[m]).all():
            differ.append(col)
    return differ


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_gold_is_identical_whatever_the_row_order_of_silver(tmp_path, silver, order):
    tables, meta = silver
    as_of = date.fromisoformat(meta["as_of"])
    stored = _gold(tmp_path, tables, as_of)
    again = _gold(tmp_path, _reordered(tables, order), as_of)
    assert len(stored) > 100
    differing = _differing_columns(stored, again)
    assert not differing, f"gold differs in {differing}"
