"""The ingest's memory budget: files validated at once, DuckDB's share of the budget, and where a
file's text is staged (in memory, or in a compressed database file when it would not fit).

Sizes are DuckDB's spellings ("4GB", "3584MiB"); a relative limit ("80%") passes through.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cobranza.config import Settings
from cobranza.ingest.source import is_gzip

MAX_WORKERS = 4  # files validated at once; more only adds memory on this kind of machine
# Resident memory past DuckDB's limit per file validated at once (its Arrow scan of the parse,
# query state outside the buffer pool): measured 2.05 GiB for 2 files at 1M clients.
OUTSIDE_DUCKDB_PER_WORKER = 2**30


def ingest_workers(settings: Settings) -> int:
    """Files validated at once: one pyarrow parse thread each, DuckDB's threads shared."""
    return max(1, min(settings.ingest_workers or os.cpu_count() or 1, MAX_WORKERS))


# A file's text staged as DuckDB strings takes about 1.7 times its CSV bytes (measured on the
# simulator's account_monthly); a gzip file holds about 3.5-4 times its bytes of text.
STAGED_PER_TEXT_BYTE = 1.7
GZIP_TEXT_PER_BYTE = 4.0


def staging(settings: Settings, paths: list[Path]) -> str:
    """Where to stage, "memory" or "disk": `ingest_staging`, or for "auto" whether the largest
    files, staged at once (one per worker), fit DuckDB's budget as uncompressed strings."""
    if settings.ingest_staging != "auto":
        return settings.ingest_staging
    workers = ingest_workers(settings)
    texts = sorted(
        (p.stat().st_size * (GZIP_TEXT_PER_BYTE if is_gzip(p) else 1.0) for p in paths),
        reverse=True,
    )
    staged = STAGED_PER_TEXT_BYTE * sum(texts[:workers])
    budget = _bytes(duckdb_limit(settings.duckdb_memory_limit, workers))
    return "disk" if budget is not None and staged > budget else "memory"


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def _bytes(size: str) -> float | None:
    """Bytes of a DuckDB size ("4GB", "3584MiB"); None for anything else (a percentage)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", size)
    if not m or m.group(2).lower() not in _UNITS:
        return None
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def duckdb_limit(memory_limit: str, workers: int) -> str:
    """DuckDB's share of the ingest's memory budget.

    `duckdb_memory_limit` is the budget of the whole ingest, but DuckDB bounds only its buffer
    pool: each file validated at once adds resident memory outside it. That is set aside, leaving
    DuckDB never less than half the budget. A limit that is not an absolute size (e.g. a
    percentage) is passed through unchanged.
    """
    budget = _bytes(memory_limit)
    if budget is None or workers <= 1:
        return memory_limit
    share = max(budget - workers * OUTSIDE_DUCKDB_PER_WORKER, budget / 2)
    return f"{int(share // 2**20)}MiB"
