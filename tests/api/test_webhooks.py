"""Webhook delivery to a real local HTTP receiver: HMAC signature, retry after a failure, log."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from cobranza.api.control import ControlDB, control_path
from cobranza.api.keys import create_key
from cobranza.api.webhooks import Webhooks, mask_url, sign
from cobranza.config import load_settings
from tests.api.conftest import LiveServer, auth, free_port


class Receiver:
    """Answers 500 to the first `failures` POSTs, then 200; keeps what it got."""

    def __init__(self, failures: int = 1, port: int = 0):
        self.failures = failures
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                code = 500 if len(receiver.received) < receiver.failures else 200
                receiver.received.append((dict(self.headers), body, code))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_sign_is_hmac_sha256_of_the_raw_body():
    body = b'{"event":"job.succeeded"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == f"sha256={expected}"


def test_delivery_is_signed_retried_after_a_failure_and_recorded(client, keys):
    admin, op = auth(keys["admin"]), auth(keys["operator"])
    with Receiver(failures=1) as receiver:
        created = client.post(
            "/v1/webhooks",
            json={"url": receiver.url, "events": ["job.failed"], "description": "test"},
            headers=admin,
        )
        assert created.status_code == 201
        hook = created.json()
        secret = hook["secret"]
        assert "secret" not in client.get("/v1/webhooks", headers=admin).json()[0]
        job_id = client.post("/v1/jobs", json={"type": "etl", "params": {}}, headers=op).json()[
            "job_id"
        ]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(receiver.received) < 2:
            time.sleep(0.1)
    assert [code for _, _, code in receiver.received] == [500, 200]
    for headers, body, _ in receiver.received:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Cobranza-Signature"], expected)
    payload = json.loads(receiver.received[1][1])
    assert payload["event"] == "job.failed"
    assert payload["job"]["job_id"] == job_id and payload["job"]["status"] == "failed"
    first, second = receiver.received
    assert first[0]["X-Cobranza-Delivery"] == second[0]["X-Cobranza-Delivery"]
    assert (first[0]["X-Cobranza-Attempt"], second[0]["X-Cobranza-Attempt"]) == ("1", "2")
    deadline = time.monotonic() + 10
    deliveries = []
    while time.monotonic() < deadline and len(deliveries) < 2:
        deliveries = client.get(
            f"/v1/webhooks/{hook['webhook_id']}/deliveries", headers=admin
        ).json()
        time.sleep(0.1)
    by_attempt = {d["attempt"]: d for d in deliveries}
    assert by_attempt[1]["ok"] is False and by_attempt[1]["status_code"] == 500
    assert by_attempt[2]["ok"] is True and by_attempt[2]["status_code"] == 200
    assert {d["job_id"] for d in deliveries} == {job_id}


def test_unsubscribed_events_and_inactive_hooks_are_not_called(client, keys):
    admin, op = auth(keys["admin"]), auth(keys["operator"])
    with Receiver(failures=0) as receiver:
        only_success = client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["job.succeeded"]}, headers=admin
        ).json()
        removed = client.post("/v1/webhooks", json={"url": receiver.url}, headers=admin).json()
        resp = client.delete(f"/v1/webhooks/{removed['webhook_id']}", headers=admin)
        assert resp.json()["active"] is False
        job_id = client.post("/v1/jobs", json={"type": "etl", "params": {}}, headers=op).json()[
            "job_id"
        ]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if client.get(f"/v1/jobs/{job_id}", headers=op).json()["status"] == "failed":
                break
            time.sleep(0.2)
        time.sleep(1.0)
    assert receiver.received == []
    assert (
        client.get(f"/v1/webhooks/{only_success['webhook_id']}/deliveries", headers=admin).json()
        == []
    )


@pytest.mark.parametrize(
    "body",
    [
        {"url": "not a url"},
        {"url": "ftp://example.org/x"},
        {"url": "http://example.org/x", "events": ["job.exploded"]},
        {"url": "http://example.org/x", "events": []},
    ],
)
def test_bad_registrations_are_422(client, keys, body):
    resp = client.post("/v1/webhooks", json=body, headers=auth(keys["admin"]))
    assert resp.status_code == 422


def _deliveries(server: LiveServer, admin: dict, webhook_id: str, n: int) -> list[dict]:
    deadline = time.monotonic() + 60
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = httpx.get(
            f"{server.url}/v1/webhooks/{webhook_id}/deliveries", headers=admin, timeout=10
        ).json()
        if len(rows) >= n:
            break
        time.sleep(0.2)
    return sorted(rows, key=lambda d: d["attempt"])


@pytest.mark.slow
def test_a_retry_pending_when_the_service_dies_is_made_at_the_next_start(tmp_path):
    """Attempt 1 fails, the service is SIGKILLed during the backoff; the new one makes attempt 2."""

    lake = tmp_path / "lake"
    settings = load_settings(lake=lake)
    admin = auth(create_key(settings, "admin", "hooks")["key"])
    operator = auth(create_key(settings, "operator", "jobs")["key"])
    receiver_port = free_port()  # nothing listens there yet: attempt 1 is refused
    slow_retry = {"COBRANZA_API_WEBHOOK_BACKOFF_SECONDS": "600"}
    first = LiveServer(lake, free_port(), env=slow_retry).start()
    try:
        hook = httpx.post(
            f"{first.url}/v1/webhooks",
            json={"url": f"http://127.0.0.1:{receiver_port}/hook", "events": ["job.failed"]},
            headers=admin,
        ).json()
        job_id = httpx.post(  # etl on an empty lake fails at once
            f"{first.url}/v1/jobs", json={"type": "etl", "params": {}}, headers=operator
        ).json()["job_id"]
        before = _deliveries(first, admin, hook["webhook_id"], 1)
    finally:
        first.kill()
    assert [(d["attempt"], d["ok"]) for d in before] == [(1, False)]

    with Receiver(failures=0, port=receiver_port) as receiver:
        second = LiveServer(lake, free_port()).start()
        try:
            after = _deliveries(second, admin, hook["webhook_id"], 2)
            time.sleep(1.0)  # room for a wrong extra attempt to show up
        finally:
            second.stop()
    assert [(d["attempt"], d["ok"]) for d in after] == [(1, False), (2, True)]
    assert len(receiver.received) == 1
    headers, body, _ = receiver.received[0]
    assert headers["X-Cobranza-Attempt"] == "2"
    assert headers["X-Cobranza-Delivery"] == before[0]["delivery_id"]
    assert hmac.compare_digest(headers["X-Cobranza-Signature"], sign(hook["secret"], body))
    payload = json.loads(body)
    assert payload["job"]["job_id"] == job_id and payload["event"] == "job.failed"


PASSWORD = "s3cretPassw0rd"


def test_webhook_credentials_are_masked_and_hosts_limited(live):
    http, keys = live.http, live.keys
    admin, op = auth(keys["admin"]), auth(keys["operator"])
    url = f"http://hookuser:{PASSWORD}@127.0.0.1:{free_port()}/hook"
    created = http.post("/v1/webhooks", json={"url": url, "events": ["job.failed"]}, headers=admin)
    assert created.status_code == 201, created.text
    assert PASSWORD not in created.text and "***@127.0.0.1" in created.json()["url"]
    listed = http.get("/v1/webhooks", headers=admin)
    assert PASSWORD not in listed.text and "hookuser" not in listed.text

    for refused in (
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:22/",
        "http://10.0.0.1/",
    ):
        resp = http.post("/v1/webhooks", json={"url": refused}, headers=admin)
        assert resp.status_code == 422, refused
        (detail,) = resp.json()["detail"]
        assert detail["loc"] == ["body", "url"] and "COBRANZA_API_WEBHOOK_HOSTS" in detail["msg"]
        assert refused.split("//")[1].split("/")[0] not in resp.text
    assert (
        http.post(
            "/v1/webhooks",
            json={"url": "http://n8n.internal:5678/webhook/x", "events": ["job.succeeded"]},
            headers=admin,
        ).status_code
        == 201
    )

    job_id = http.post("/v1/jobs", json={"type": "etl"}, headers=op).json()["job_id"]
    hook_id = created.json()["webhook_id"]
    deadline = time.monotonic() + 90
    deliveries = []
    while time.monotonic() < deadline and len(deliveries) < 3:  # 3 attempts, all refused
        deliveries = http.get(f"/v1/webhooks/{hook_id}/deliveries", headers=admin).json()
        time.sleep(0.3)
    assert {d["job_id"] for d in deliveries} == {job_id}
    assert all(not d["ok"] for d in deliveries)
    assert PASSWORD not in json.dumps(deliveries)
    time.sleep(0.5)
    assert PASSWORD not in live.server.log_path.read_text(encoding="utf-8", errors="replace")


def test_mask_url_hides_user_and_password():
    assert mask_url("http://u:p@h:1/x?y=1") == "http://***@h:1/x?y=1"
    assert mask_url("https://token@hooks.example/x") == "https://***@hooks.example/x"
    assert mask_url("http://h:1/x@y") == "http://h:1/x@y"  # an @ in the path is no user


def test_a_hook_whose_host_left_the_allow_list_is_not_called(tmp_path):
    """The list is checked again at delivery: a hook registered before it shrank gets nothing."""
    db = ControlDB(control_path(tmp_path / "lake"))
    with Receiver(failures=0) as receiver:
        open_hooks = Webhooks(db, max_attempts=2, backoff_seconds=0.05)
        hook = open_hooks.register(receiver.url, ["job.failed"], None, None)
        limited = Webhooks(db, max_attempts=2, backoff_seconds=0.05, allowed_hosts=["n8n"])
        limited.job_finished({"job_id": "abc", "status": "failed", "type": "etl"})
        limited.join()
    assert receiver.received == []
    (delivery,) = limited.deliveries(hook["webhook_id"])
    assert delivery["ok"] is False and "COBRANZA_API_WEBHOOK_HOSTS" in delivery["error"]
    assert db.one("SELECT outcome FROM outbox")["outcome"] == "refused"
