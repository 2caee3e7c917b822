"""Ibis transforms raw -> silver -> gold on DuckDB or Spark; `run_etl` is the entry point."""

from cobranza.transforms.pipeline import GOLD, SILVER, run_etl

__all__ = ["GOLD", "SILVER", "run_etl"]
