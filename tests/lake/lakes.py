"""Helpers of the lake tests: small published versions, real `cobranza` and Python subprocesses,
and a child process that SIGKILLs itself at an exact point (an audit hook, `sys.addaudithook`:
no code of the lake replaced)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cobranza.lake import Lake

# Installed first in a child process: SIGKILL itself when `when(event, args)` is true.
KILL_HOOK = """
import os, signal, sys
def _kill_hook(event, args, _when=lambda event, args: {when}):
    if _when(event, args):
        os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(_kill_hook)
"""


def table(pub, name: str, values: list[int]) -> None:
    pq.write_table(pa.table({"x": values}), pub.table_dir(name) / "part-0.parquet")


def pair(lake: Lake, n: int = 1) -> tuple[str, str]:
    """A silver and a gold version built from it, published together (as `cobranza etl`)."""
    with lake.transaction() as tx:
        with tx.publish("silver") as s:
            table(s, "t", list(range(n)))
        with tx.publish("gold", inputs={"silver": s.version}) as g:
            table(g, "obligation_snapshots", list(range(n)))
    return s.version, g.version


def generations(lake: Lake, generations: int) -> list[dict[str, str]]:
    out = []
    for i in range(generations):
        with lake.publish("raw") as raw:
            table(raw, "clients", list(range(10 + i)))
        with lake.transaction() as tx:
            with tx.publish("silver", inputs={"raw": raw.version}) as silver:
                table(silver, "clients", list(range(9 + i)))
            with tx.publish("gold", inputs={"silver": silver.version}) as gold:
                table(gold, "obligation_snapshots", list(range(5 + i)))
        out.append({"raw": raw.version, "silver": silver.version, "gold": gold.version})
    return out


WIDE = {**os.environ, "COLUMNS": "1000"}  # rich wraps error lines at the terminal width


def cli(lake: Lake | Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    root = lake.root if isinstance(lake, Lake) else lake
    return subprocess.run(
        ["cobranza", "--lake", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=WIDE,
    )


def python(script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, check=False
    )


def flat(text: str) -> str:
    """stderr as one line (rich wraps long messages at the terminal width)."""
    return " ".join(text.split())


def pointers(lake: Lake) -> dict[str, str | None]:
    return {z: lake.current_version(z) for z in ("silver", "gold")}


def held_shared(lake: Lake) -> bool:
    fd = os.open(lake.root / ".lake.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
