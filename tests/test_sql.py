"""SQL literals for statements that take no bound parameter (view definitions)."""

from __future__ import annotations

import duckdb
import numpy as np

from cobranza.sql import literal, literal_list


def test_literals_by_type():
    assert literal(None) == "NULL"
    assert literal(True) == "TRUE" and literal(False) == "FALSE"
    assert literal(3) == "3" and literal(0.25) == "0.25"
    assert literal(np.float64(0.5)) == "0.5"
    assert literal("it's") == "'it''s'"
    assert literal_list(["a", "b'c"]) == "['a', 'b''c']"


def test_duckdb_reads_back_what_was_written(tmp_path):
    path = tmp_path / "o'brien" / "x.parquet"
    path.parent.mkdir()
    con = duckdb.connect()
    try:
        con.execute(f"COPY (SELECT 1 AS a) TO {literal(str(path))} (FORMAT parquet)")
        view = f"CREATE VIEW v AS SELECT * FROM read_parquet({literal_list([str(path)])})"
        con.execute(view)
        assert con.execute("SELECT a, " + literal("x'y") + " FROM v").fetchall() == [(1, "x'y")]
    finally:
        con.close()
