"""Rate limits, the sampled audit of refused calls, audit retention and job caps.

Against a real `cobranza serve` on loopback where the behaviour is the server's (429s, the size of
`control.db` under a flood of refused calls); on the objects themselves where a rule must hold
exactly (a token bucket on a hand-moved clock, the retention cutoff).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cobranza.api import create_app
from cobranza.api.control import ControlDB, control_path
from cobranza.api.keys import create_key
from cobranza.api.limits import RateLimiter, prune_audit
from cobranza.config import load_settings
from tests.api.conftest import LiveServer, auth, free_port
from tests.http import live_client


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    clock = Clock()
    bucket = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [bucket.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("k") == pytest.approx(0.5)  # one token comes back in 1/rate seconds
    assert bucket.take("other") == 0.0  # buckets are per name
    clock.now += 0.5
    assert bucket.take("k") == 0.0 and bucket.take("k") > 0
    assert RateLimiter(rate=0, burst=1).take("k") == 0.0  # rate 0: no limit


def _db_bytes(lake: Path) -> int:
    path = control_path(lake)
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_a_flood_of_refused_calls_is_counted_and_sampled_not_written_row_by_row(tmp_path):
    lake = tmp_path / "lake"
    create_key(load_settings(lake=lake), "admin", "reader")
    server = LiveServer(lake, free_port(), env={"COBRANZA_API_RATE_PER_ADDRESS": "0"}).start()
    try:
        with live_client(base_url=server.url, timeout=60) as http:
            http.post("/v1/jobs", json={"type": "etl"})  # the database's first pages
            before = _db_bytes(lake)
            for i in range(2000):
                headers = {"X-API-Key": f"cbz_wrong_{i}"} if i % 2 else {}
                resp = http.post("/v1/jobs", json={"type": "etl", "params": {}}, headers=headers)
                assert resp.status_code == 401
            metrics = http.get("/metrics").text
        grown = _db_bytes(lake) - before
    finally:
        server.stop()
    assert grown < 100_000, grown
    counted = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'^cobranza_api_refused_unauthenticated_total\{reason="(\w+)"\} (\S+)$',
            metrics,
            re.M,
        )
    }
    assert counted == {"missing": 1001.0, "unknown_or_revoked": 1000.0}
    con = sqlite3.connect(control_path(lake))
    rows = con.execute("SELECT status, outcome, detail FROM audit").fetchall()
    con.close()
    assert 1 <= len(rows) <= 3
    assert all(status == 401 and outcome == "denied" for status, outcome, _ in rows)
    assert json.loads(rows[0][2])["sampled"] is True


def test_a_burst_from_one_key_gets_429_while_another_key_is_served(tmp_path):
    lake = tmp_path / "lake"
    settings = load_settings(lake=lake)
    noisy = auth(create_key(settings, "viewer", "noisy")["key"])
    quiet = auth(create_key(settings, "viewer", "quiet")["key"])
    env = {"COBRANZA_API_RATE_PER_KEY": "5", "COBRANZA_API_BURST_PER_KEY": "10"}
    server = LiveServer(lake, free_port(), env=env).start()
    try:
        with live_client(base_url=server.url, timeout=60) as http:
            codes = [http.get("/v1/jobs", headers=noisy) for _ in range(40)]
            limited = [r for r in codes if r.status_code == 429]
            served = http.get("/v1/jobs", headers=quiet)
    finally:
        server.stop()
    assert limited, [r.status_code for r in codes]
    assert {r.status_code for r in codes} <= {200, 429}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert served.status_code == 200


def test_old_audit_rows_are_pruned_and_recent_ones_kept(tmp_path):
    db = ControlDB(control_path(tmp_path / "lake"))
    for at in ("2020-01-01T00:00:00.000+00:00", "2999-01-01T00:00:00.000+00:00"):
        db.execute(
            "INSERT INTO audit (at, method, path, status, outcome) VALUES (?, 'POST', '/x', 200, "
            "'ok')",
            (at,),
        )
    assert prune_audit(db, 0) == 0
    assert prune_audit(db, 30) == 1
    assert [r["at"][:4] for r in db.all("SELECT at FROM audit")] == ["2999"]


def test_jobs_are_capped_in_all_and_per_key(settings, keys, fast_options):
    options = fast_options.model_copy(update={"max_jobs": 2, "max_jobs_per_key": 1})
    with TestClient(create_app(settings, options)) as client:
        db = client.app.state.services.db
        op = client.get("/v1/jobs", headers=auth(keys["operator"]))
        assert op.status_code == 200
        operator_id = db.one("SELECT key_id FROM api_keys WHERE role = 'operator'")["key_id"]
        # a job of this operator is active (its zones touch nothing the next job writes)
        db.execute(
            "INSERT INTO jobs (job_id, type, params, zones, status, created_at, created_by) "
            "VALUES ('a1', 'monitor', '{}', '[]', 'running', '2026-01-01', ?)",
            (operator_id,),
        )
        resp = client.post("/v1/jobs", json={"type": "etl"}, headers=auth(keys["operator"]))
        assert resp.status_code == 429 and "this key" in resp.json()["detail"]
        assert int(resp.headers["Retry-After"]) > 0
        db.execute(
            "INSERT INTO jobs (job_id, type, params, zones, status, created_at, created_by) "
            "VALUES ('a2', 'monitor', '{}', '[]', 'queued', '2026-01-01', 'someone')"
        )
        resp = client.post("/v1/jobs", json={"type": "etl"}, headers=auth(keys["admin"]))
        assert resp.status_code == 429 and "at once" in resp.json()["detail"]
