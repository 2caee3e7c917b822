"""Fixtures of the scale-out tests: a lake ingested from the shared simulated extract and built on
DuckDB (through the CLI, as a user runs it), a Spark standalone cluster and a PostgreSQL server.

The cluster is started once per session, the server once per module; both are stopped in
teardown, also when a test fails. They skip only when their binaries are absent
(`tools/install-test-deps.sh` installs them on CI), with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scale import postgres, spark_cluster

COBRANZA = str(Path(sys.executable).with_name("cobranza"))
WIDE = {"COLUMNS": "1000"}  # rich wraps error lines at the terminal width


def cobranza(
    lake: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """`cobranza --lake LAKE --json ARGS` as a separate process."""
    return subprocess.run(
        [COBRANZA, "--lake", str(lake), "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **WIDE, **(env or {})},
    )


def ok_json(out: subprocess.CompletedProcess) -> dict:
    """The JSON summary of a command that must have succeeded (its stderr otherwise)."""
    assert out.returncode == 0, f"{out.args[3:]} exited {out.returncode}:\n{out.stderr[-3000:]}"
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def built_lake(tmp_path_factory, sim_extract_clean) -> tuple[Path, dict]:
    """The clean shared extract through `cobranza ingest` and `cobranza etl` (DuckDB); returns
    the lake and the ETL's summary. Tests work on copies (`lake_copy`)."""
    lake = tmp_path_factory.mktemp("scale") / "lake"
    ok_json(cobranza(lake, "ingest", str(sim_extract_clean)))
    summary = ok_json(cobranza(lake, "etl", "--engine", "duckdb"))
    return lake, summary


def lake_copy(built: tuple[Path, dict], dest: Path) -> Path:
    """A copy of the built lake (a lake may be copied with its registry, `docs/lake.md`)."""
    shutil.copytree(built[0], dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def standalone(tmp_path_factory):
    """A master and two workers on loopback, shared by the cluster tests of every module and
    stopped (process groups) at the end of the session."""
    reason = spark_cluster.missing_binaries()
    if reason:
        pytest.skip(f"no Spark standalone cluster: {reason}")
    cluster = spark_cluster.SparkStandalone(tmp_path_factory.mktemp("spark-cluster"))
    with cluster:
        yield cluster
    left = cluster.live_groups()
    assert not left, f"processes of the cluster's groups {left} still run after stop"


@pytest.fixture(scope="module")
def pg_server():
    """A PostgreSQL server on a free loopback port, stopped and removed after the module."""
    reason = postgres.missing_binaries()
    if reason:
        pytest.skip(f"no PostgreSQL server: {reason}")
    with postgres.PostgresServer() as server:
        yield server
