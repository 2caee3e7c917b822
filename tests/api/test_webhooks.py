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


def test_sign_is_hmac_sha256_of_timestamp_delivery_id_and_raw_body():
    body = b'{"event":"job.succeeded"}'
    expected = hmac.new(b"s3cret", b"1700000000.d1." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1700000000, "d1", body) == f"sha256={expected}"
    assert sign("s3cret", 1700000000, "d2", body) != sign("s3cret", 1700000000, "d1", body)
    assert sign("s3cret", 1700000001, "d1", body) != sign("s3cret", 1700000000, "d1", body)


def _verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    ts, delivery = int(headers["X-Cobranza-Timestamp"]), headers["X-Cobranza-Delivery"]
    assert abs(time.time() - ts) < 600
    return hmac.compare_digest(headers["X-Cobranza-Signature"], sign(secret, ts, delivery, body))


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
        assert _verifies(secret, headers, body)
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
    loopback = {"COBRANZA_API_WEBHOOK_HOSTS": "127.0.0.1"}
    slow_retry = {"COBRANZA_API_WEBHOOK_BACKOFF_SECONDS": "600", **loopback}
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
        second = LiveServer(lake, free_port(), env=loopback).start()
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
    assert _verifies(hook["secret"], headers, body)
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
        "http://[::1]:22/",  # loopback, but not the listed address
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


INTERNAL_TARGETS = (
    "http://127.0.0.1:9/hook",
    "http://2130706433:9/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f000001:9/hook",  # ... and in hexadecimal
    "http://[::1]:9/hook",
    "http://[::ffff:127.0.0.1]:9/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://localhost:9/hook",  # a name resolving to loopback
    "http://10.1.2.3/hook",
    "http://224.0.0.1/hook",
)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """A real `cobranza serve` with no webhook allow-list (the default)."""
    lake = tmp_path_factory.mktemp("egress") / "lake"
    settings = load_settings(lake=lake)
    admin = auth(create_key(settings, "admin", "hooks")["key"])
    server = LiveServer(lake, free_port()).start()
    yield server, admin
    server.stop()


@pytest.mark.parametrize("url", INTERNAL_TARGETS)
def test_without_an_allow_list_internal_targets_are_refused(open_server, url):
    server, admin = open_server
    resp = httpx.post(f"{server.url}/v1/webhooks", json={"url": url}, headers=admin, timeout=30)
    assert resp.status_code == 422, resp.text
    (detail,) = resp.json()["detail"]
    assert detail["loc"] == ["body", "url"] and "COBRANZA_API_WEBHOOK_HOSTS" in detail["msg"]


def test_the_address_is_checked_again_at_delivery_and_nothing_is_sent(tmp_path):
    """A hook stored before the policy (or pointing at a name that later resolves inward) is
    refused at delivery on its resolved address, once, without a connection."""
    db = ControlDB(control_path(tmp_path / "lake"))
    with Receiver(failures=0) as receiver:
        name_url = receiver.url.replace("127.0.0.1", "localhost")
        stored = Webhooks(db).register(name_url, ["job.failed"], None, None)
        hooks = Webhooks(db, max_attempts=3, backoff_seconds=0.05)  # no allow-list
        hooks.job_finished({"job_id": "abc", "status": "failed", "type": "etl"})
        hooks.join()
    assert receiver.received == []
    (delivery,) = hooks.deliveries(stored["webhook_id"])
    assert delivery["error"].startswith("refused: ") and not delivery["ok"]


def test_an_allow_listed_network_is_called_on_its_checked_address(tmp_path):
    """`localhost` is allowed through the network of its address, and the request names it."""
    db = ControlDB(control_path(tmp_path / "lake"))
    with Receiver(failures=0) as receiver:
        url = receiver.url.replace("127.0.0.1", "localhost")
        hooks = Webhooks(db, max_attempts=1, allowed_hosts=["127.0.0.0/8"])
        assert hooks.refusal(url) is None and hooks.refusal("http://10.0.0.1/") is not None
        hook = hooks.register(url, ["job.failed"], None, None)
        hooks.job_finished({"job_id": "abc", "status": "failed", "type": "etl"})
        hooks.join()
    ((headers, body, code),) = receiver.received
    assert code == 200 and headers["Host"].startswith("localhost:")
    assert _verifies(hook["secret"], headers, body)


def test_redirects_are_never_followed(tmp_path):
    db = ControlDB(control_path(tmp_path / "lake"))
    with Receiver(failures=0) as target:

        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self):
                self.send_response(307)
                self.send_header("Location", target.url)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            hooks = Webhooks(db, max_attempts=1, allowed_hosts=["127.0.0.1"])
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            hook = hooks.register(url, ["job.failed"], None, None)
            hooks.job_finished({"job_id": "abc", "status": "failed", "type": "etl"})
            hooks.join()
        finally:
            server.shutdown()
            server.server_close()
    assert target.received == []
    (delivery,) = hooks.deliveries(hook["webhook_id"])
    assert delivery["status_code"] == 307 and not delivery["ok"]
