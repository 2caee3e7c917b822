"""The ingest's memory budget: files validated at once, DuckDB's share of the budget, and where a
file's text is staged (in memory, spilling past the budget, or in a compressed database file when
the spill would crowd the disk).

Sizes are DuckDB's spellings ("4GB", "3584MiB"); a relative limit ("80%") passes through.
"""

from __future__ import annotations

import os
import re
import shutil
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


# A file staged in DuckDB takes about 1.6-2.9 times its CSV bytes (typed columns, line, row hash;
# measured on the simulator's files); a gzip file holds about 3.5-4 times its bytes of text.
STAGED_PER_TEXT_BYTE = 1.7
GZIP_TEXT_PER_BYTE = 4.0
# The raw zone's Parquet per byte of CSV text (0.26 on the 10M-client book: 17.5 GB for 68 GB).
RAW_PER_TEXT_BYTE = 0.3
# The staging's spill and the raw zone being written may take at most this share of the free disk.
DISK_SHARE = 0.5


def staging(settings: Settings, paths: list[Path], free_bytes: int | None = None) -> str:
    """Where to stage, "memory" or "disk": `ingest_staging`, or for "auto" memory unless its spill
    would crowd the disk.

    Memory (several files at once, spilling uncompressed to the lake's temp folder past DuckDB's
    budget) is the faster path: on a 1M-client book 148 s and 276 CPU s against 160 s and 302 for
    the compressed database file, which also validates one file at a time. The database file is
    for books whose spill (the largest files staged at once, past the budget) plus the raw zone
    being written would take more than DISK_SHARE of the disk's free space (`free_bytes`, by
    default that of the lake's file system): a 10M-client book on this machine.
    """
    if settings.ingest_staging != "auto":
        return settings.ingest_staging
    workers = ingest_workers(settings)
    texts = sorted(
        (p.stat().st_size * (GZIP_TEXT_PER_BYTE if is_gzip(p) else 1.0) for p in paths),
        reverse=True,
    )
    staged = STAGED_PER_TEXT_BYTE * sum(texts[:workers])
    budget = _bytes(duckdb_limit(settings.duckdb_memory_limit, workers))
    if budget is None or staged <= budget:
        return "memory"
    free = _free_bytes(Path(settings.lake)) if free_bytes is None else free_bytes
    needed = staged - budget + RAW_PER_TEXT_BYTE * sum(texts)
    return "memory" if needed <= DISK_SHARE * free else "disk"


def _free_bytes(path: Path) -> int:
    """Free bytes of the file system that holds `path` (or would: its nearest existing folder)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


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
