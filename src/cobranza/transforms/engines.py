"""The I/O edge of the transforms: an Ibis connection on DuckDB or Spark, Parquet in and out.

The same Ibis expressions run on both; only how tables are read, cached and written differs.
DuckDB writes with `COPY ... TO` (Ibis `to_parquet`); Spark writes natively from its executors
(`DataFrame.write.parquet`), never collecting to the driver.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from cobranza.config import Settings
from cobranza.errors import CobranzaError


class EngineError(CobranzaError):
    """The engine could not start or run (Java missing, memory, bad master URL...)."""


class Engine:
    name = "base"
    con: Any

    def read(self, table_dir: Path) -> ir.Table:
        raise NotImplementedError

    def write(self, expr: ir.Table, out_dir: Path, part: int = 0) -> None:
        """Writes `expr` as part `part` of the table in `out_dir` (part 0 replaces the folder's
        content, later parts add to it)."""
        raise NotImplementedError

    def materialize(self, name: str, expr: ir.Table) -> ir.Table:
        return expr

    def release(self, table: ir.Table) -> None:
        """Frees what `materialize` kept for `table` (nothing when it kept nothing)."""

    def part_rows(self) -> int | None:
        """The most gold rows one write should assemble; None when the engine's joins spill."""
        return None

    def rows_by(self, expr: ir.Table, column: str) -> list[tuple[Any, int]]:
        """(value, rows) for each value of `column`, through Arrow."""
        counts = self.con.to_pyarrow(expr.group_by(column).aggregate(n=expr.count()))
        return list(zip(counts[column].to_pylist(), counts["n"].to_pylist(), strict=True))

    def scalar(self, expr: ir.Scalar) -> Any:
        # through Arrow: Ibis' `execute` imports pandas (seconds of start-up) for one value
        return self.con.to_pyarrow(expr).as_py()

    def close(self) -> None:
        pass

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Memory DuckDB needs per gold row to assemble gold in one statement (nine hash joins built at
# once, none spilling). Measured on a 1M-client book (980k gold rows): one statement failed at a
# 1.2 GB limit (1.2 KB a row) and ran at 6 GB; parts of about 245k rows ran at 1.2 GB (4.9 KB a
# row). 8 KiB leaves a margin.
GOLD_ROW_BYTES = 8 * 1024
_UNITS = {
    "": 1,
    "B": 1,
    "BYTES": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}


def memory_bytes(text: str) -> int:
    """Bytes of a DuckDB memory setting as DuckDB prints it ("11.1 GiB", "4.0 GB", "512 MiB")."""
    number, _, unit = text.strip().partition(" ")
    try:
        return int(float(number) * _UNITS[unit.strip().upper()])
    except (KeyError, ValueError):
        raise EngineError(f"cannot read DuckDB's memory limit {text!r}") from None


class DuckDBEngine(Engine):
    """In-process DuckDB with a memory limit and a spill folder of its own.

    The spill folder is a locked working folder of the lake (`<lake>/_tmp/duckdb-*`, owner-only,
    like raw whose rows it may hold), removed on close or, after a kill, by the next run.
    """

    name = "duckdb"

    def __init__(self, settings: Settings, cache: bool = True):
        from cobranza.lake import Lake

        self._work = Lake(settings.lake).work_dir(f"duckdb-{uuid.uuid4().hex[:12]}")
        self._tmp = self._work.path
        config = {
            "memory_limit": settings.duckdb_memory_limit,
            "temp_directory": str(self._tmp),
            "preserve_insertion_order": False,
        }
        if settings.duckdb_threads:
            config["threads"] = settings.duckdb_threads
        try:
            self.con = ibis.duckdb.connect(**config)
        except BaseException:
            self._work.close()
            raise
        self.cache = cache
        self._n = 0

    def read(self, table_dir: Path) -> ir.Table:
        return self.con.read_parquet(str(Path(table_dir) / "**" / "*.parquet"))

    def write(self, expr: ir.Table, out_dir: Path, part: int = 0) -> None:
        self.con.to_parquet(
            expr, Path(out_dir) / f"part-{part}.parquet", compression="zstd", compression_level=1
        )

    def part_rows(self) -> int | None:
        """DuckDB's budget over GOLD_ROW_BYTES: its final chain of hash joins does not spill."""
        limit = self.con.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        return max(1, memory_bytes(limit) // GOLD_ROW_BYTES)

    def materialize(self, name: str, expr: ir.Table) -> ir.Table:
        """Temp tables for results read several times: DuckDB would recompute an inlined CTE."""
        if not self.cache:
            return expr
        self._n += 1
        return self.con.create_table(f"_tmp_{name}_{self._n}", expr, temp=True)

    def release(self, table: ir.Table) -> None:
        op = table.op()
        if self.cache and isinstance(op, ops.DatabaseTable) and op.name.startswith("_tmp_"):
            self.con.drop_table(op.name, force=True)

    def close(self) -> None:
        try:
            self.con.disconnect()
        finally:
            self._work.close()


def spark_session(settings: Settings, app_name: str) -> Any:
    """A Spark session on `settings.spark_master` with cobranza's properties, then `spark_conf`'s
    (which override them); the ETL's and distributed scoring's one recipe.

    Executors run Python code only to score (`decision.spark_scoring`): by default with this
    process's interpreter, which has cobranza and the champion's libraries; on a cluster whose
    hosts install it elsewhere, `PYSPARK_PYTHON` or `spark.pyspark.python` in `spark_conf`.
    """
    from pyspark.sql import SparkSession

    python = {} if os.environ.get("PYSPARK_PYTHON") else {"spark.pyspark.python": sys.executable}
    try:
        builder = (
            SparkSession.builder.appName(app_name)
            .master(settings.spark_master)
            .config("spark.driver.memory", settings.spark_driver_memory)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.sql.adaptive.enabled", "true")
            .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        )
        for key, value in {**python, **settings.spark_conf.properties()}.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
    except Exception as exc:  # Java missing, bad master URL...
        raise EngineError(f"could not start Spark ({settings.spark_master}): {exc}") from exc


class SparkEngine(Engine):
    """PySpark through Ibis; the session is created here unless one is passed (tests share one)."""

    name = "spark"

    def __init__(self, settings: Settings, session: Any = None):
        self._own = session is None
        self.session = session if session is not None else spark_session(settings, "cobranza-etl")
        self.con = ibis.pyspark.connect(self.session)
        self._cached: list[Any] = []
        self._views: dict[str, Any] = {}  # temp view -> its cached DataFrame
        self._n = 0

    def read(self, table_dir: Path) -> ir.Table:
        return self.con.read_parquet(str(table_dir), recursiveFileLookup="true")

    def _frame(self, expr: ir.Table) -> Any:
        """The Spark DataFrame of an expression, with the column types Ibis declares.

        Spark SQL may widen or narrow integer arithmetic (int32 where Ibis says int64), so the
        types are pinned here and both engines write the same Parquet schema.
        """
        from ibis.backends.pyspark.datatypes import PySparkType
        from pyspark.sql import functions as sf

        df = self.session.sql(self.con.compile(expr))
        return df.select(
            *[
                sf.col(f"`{name}`").cast(PySparkType.from_ibis(dtype)).alias(name)
                for name, dtype in expr.schema().items()
            ]
        )

    def write(self, expr: ir.Table, out_dir: Path, part: int = 0) -> None:
        self._frame(expr).write.mode("overwrite" if part == 0 else "append").parquet(str(out_dir))

    def materialize(self, name: str, expr: ir.Table) -> ir.Table:
        df = self._frame(expr).cache()
        self._cached.append(df)
        self._n += 1  # never reused: a released view's number stays taken
        view = f"cobranza_{name}_{self._n}"
        df.createOrReplaceTempView(view)
        self._views[view] = df
        return self.con.table(view)

    def release(self, table: ir.Table) -> None:
        op = table.op()
        df = self._views.pop(op.name, None) if isinstance(op, ops.DatabaseTable) else None
        if df is not None:
            df.unpersist()
            self._cached.remove(df)
            self.session.catalog.dropTempView(op.name)

    def close(self) -> None:
        for df in self._cached:
            df.unpersist()
        self._cached.clear()
        if self._own:
            self.session.stop()


def open_engine(settings: Settings, spark_session: Any = None) -> Engine:
    if settings.engine == "duckdb":
        return DuckDBEngine(settings)
    if settings.engine == "spark":
        from cobranza.lake import Lake

        Lake(settings.lake).clean_tmp()  # working folders of killed runs (DuckDB does it itself)
        return SparkEngine(settings, session=spark_session)
    raise EngineError(f"unknown engine {settings.engine!r}: use duckdb or spark")
