"""Fixtures of the API tests: a tmp lake, keys per role, a hand-built results version, live servers.

The results version is written through `lake.publish` with the scoring layer's own schema
(`cobranza.decision.scoring.to_arrow`), so the read endpoints are tested on what `score` writes.
Live servers are real `cobranza serve` processes on loopback, started and stopped by pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cobranza.api import ApiOptions, create_app
from cobranza.api.keys import create_key
from cobranza.config import load_settings
from cobranza.lake import Lake
from tests.http import live_client

ROLES = ("viewer", "operator", "admin")
REPO = Path(__file__).resolve().parents[2]


def results_frame(n: int = 30, cut: date = date(2025, 6, 30), seed: int = 0) -> pd.DataFrame:
    """Rows in the results schema; every 7th obligation is ineligible (ASSIGN by rule).

    The estimates follow `decision.loss` under `POLICY`'s costs (roll loss from a balance of ten
    times the amount past due), and the decision is the policy's: NO_ASSIGN iff the expected
    benefit of managing is negative.
    """
    rng = np.random.default_rng(seed)
    eligible = np.array([i % 7 != 3 for i in range(n)])
    proba = np.where(eligible, rng.uniform(0.01, 0.99, n).round(4), np.nan)
    p_no = np.where(eligible, rng.uniform(0.02, 0.6, n).round(4), np.nan)
    p_act = np.where(eligible, (p_no * rng.uniform(0.3, 1.0, n)).round(4), np.nan)
    product = np.where(np.arange(n) % 3 == 0, "CREDIT_CARD", "CONSUMER_LOAN")
    amount = (100_000 + 1_000 * np.arange(n)).astype(np.float64)
    step = np.array(
        [POLICY["provision_step"].get(p, POLICY["default_provision_step"]) for p in product]
    )
    loss = 10 * amount * step + POLICY["later_collection_cost"]
    benefit = (p_no - p_act) * loss - POLICY["collection_action"]
    decision = np.where(eligible & (benefit < 0), "NO_ASSIGN", "ASSIGN")
    frame = pd.DataFrame(
        {
            "obligation_id": [f"OB{i:05d}" for i in range(n)],
            "cut_date": [cut] * n,
            "client_key": [f"ck{i % 11:04d}" for i in range(n)],
            "product": product,
            "segment": np.where(np.arange(n) % 2 == 0, "MASS", "AFFLUENT"),
            "days_past_due": (np.arange(n) % 30 + 1).astype(np.int64),
            "amount_past_due": amount,
            "eligible": eligible,
            "probability": proba,
            "decision": decision,
            "capacity_limited": np.zeros(n, dtype=bool),
            "p_roll_no_action": p_no,
            "p_roll_action": p_act,
            "roll_loss": loss,
            "expected_benefit": benefit,
            "model_version": "1",
            "scoring_run_id": "run-test",
            "arm": "CHAMPION",
        }
    )
    for i in (1, 2, 3):
        frame[f"reason_{i}_code"] = [f"feature_{i}" if e else None for e in eligible]
        frame[f"reason_{i}_text"] = [f"reason {i} in words" if e else None for e in eligible]
        frame[f"reason_{i}_contribution"] = np.where(eligible, 0.5 / i, np.nan)
    frame.loc[~eligible, "reason_1_code"] = "NO_ACTIVE_MANDATE"
    frame.loc[~eligible, "reason_1_text"] = "no active debit mandate"
    return frame


POLICY = {
    "collection_action": 8000.0,
    "later_collection_cost": 30000.0,
    "provision_step": {"CONSUMER_LOAN": 0.08, "CREDIT_CARD": 0.1},
    "default_provision_step": 0.05,
    "capacity": None,
    "expected_cost_per_obligation": 0.0,
    "baseline_cost_per_obligation": 0.0,
    "no_assign_share": 0.0,
    "n_fit": 0,
}


def publish_results(
    lake_root: Path,
    frame: pd.DataFrame,
    extra: dict | None = None,
    drop: tuple[str, ...] = (),
    policy: dict | None = None,
) -> str:
    """Publish a results version (scores history + latest) the way `cobranza score` does;
    `extra` columns (name -> values) are appended, as a later scoring layer may add them, or
    replace the column of that name; `drop` columns removed, as an earlier scoring layer wrote them
    without; `policy` replaces `POLICY`."""
    import pyarrow as pa

    from cobranza.decision.scoring import to_arrow

    lake = Lake(lake_root).ensure()
    table = to_arrow(frame)
    for name, values in (extra or {}).items():
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, name, pa.array(values, table.schema.field(name).type))
        else:
            table = table.append_column(name, pa.array(values))
    table = table.drop_columns(list(drop))
    with lake.publish("results") as pub:
        pq.write_table(table, pub.table_dir("scores") / "part-0.parquet")
        pq.write_table(table, pub.table_dir("latest") / "part-0.parquet")
        pub.history_tables.add("scores")
        pub.meta["policy"] = POLICY if policy is None else policy
        pub.meta["model_version"] = "1"
        pub.meta["scoring_run_id"] = pub.run_id
        pub.meta["as_of"] = str(frame["cut_date"].iloc[0])
    return pub.version


@pytest.fixture
def lake_dir(tmp_path) -> Path:
    path = tmp_path / "lake"
    Lake(path).ensure()
    return path


@pytest.fixture
def settings(lake_dir):
    return load_settings(lake=lake_dir)


@pytest.fixture
def keys(settings) -> dict[str, str]:
    return {role: create_key(settings, role, f"test-{role}")["key"] for role in ROLES}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def fast_options() -> ApiOptions:
    return ApiOptions(
        webhook_attempts=3,
        webhook_backoff_seconds=0.2,
        webhook_timeout_seconds=5,
        champion_check_seconds=0.5,
        kill_grace_seconds=3,
        webhook_hosts=["127.0.0.1"],  # the tests' receivers listen on loopback
    )


@pytest.fixture
def client(settings, keys, fast_options):
    from fastapi.testclient import TestClient

    app = create_app(settings, fast_options)
    with TestClient(app) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    """A `cobranza serve` subprocess on loopback."""

    lake: Path
    port: int
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # over the test defaults below

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240.0) -> LiveServer:  # the API imports for ~1 min at load 20
        env = {
            **os.environ,
            "COBRANZA_API_WEBHOOK_BACKOFF_SECONDS": "0.2",
            "COBRANZA_API_WEBHOOK_ATTEMPTS": "3",
            "COBRANZA_API_CHAMPION_CHECK_SECONDS": "0.5",
            "COBRANZA_API_KILL_GRACE_SECONDS": "3",
            **self.env,
        }
        self.log_path = self.lake.parent / f"server-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cobranza.cli",
                "--lake",
                str(self.lake),
                "serve",
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=log,
            env=env,
            cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not answer /healthz in time")

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to clean up (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_lines(self) -> list[dict]:
        lines = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return lines


@pytest.fixture
def live_server(lake_dir):
    server = LiveServer(lake_dir, free_port()).start()
    yield server
    server.stop()


def wait_job(base: str, headers: dict, job_id: str, timeout: float = 120.0) -> dict:
    """Poll a job until it is no longer queued or running."""
    deadline = time.monotonic() + timeout
    job = {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers, timeout=60).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout}s")


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """One real `cobranza serve` with a key of each role, webhooks limited to two hosts."""
    lake = tmp_path_factory.mktemp("hardening") / "lake"
    settings = load_settings(lake=lake)
    keys = {r: create_key(settings, r, f"hard-{r}")["key"] for r in ("viewer", "operator", "admin")}
    server = LiveServer(
        lake,
        free_port(),
        env={"COBRANZA_API_WEBHOOK_HOSTS": "127.0.0.1, n8n.internal"},
    ).start()
    http = live_client(base_url=server.url, timeout=60)
    try:
        yield SimpleNamespace(server=server, http=http, keys=keys)
    finally:
        http.close()
        server.stop()
