"""Against a real `cobranza serve`: authentication before the body (audit D6), one key header
(D7), only the documented open pages (D8), security headers (U3), webhook hosts and credentials
(U1, U2); in process: forged cursors (D3) and delivery-time host checks.
"""

from __future__ import annotations

import base64
import json
import time
from types import SimpleNamespace

import pytest

from cobranza.api.control import ControlDB, control_path
from cobranza.api.keys import create_key
from cobranza.api.webhooks import Webhooks, mask_url
from cobranza.config import load_settings
from tests.api.conftest import LiveServer, auth, free_port, publish_results, results_frame
from tests.api.test_webhooks import Receiver
from tests.http import live_client

PASSWORD = "s3cretPassw0rd"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
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


def _audit(http, keys) -> list[dict]:
    return http.get("/v1/audit", params={"limit": 1000}, headers=auth(keys["admin"])).json()[
        "items"
    ]


@pytest.mark.parametrize(
    "body",
    [b'{"type": "etl",', b'{"type": "\xff\xfe"}', b"[" * 100_000, b"\xff\xfe"],
    ids=["truncated-json", "invalid-utf8", "deep-nesting", "binary"],
)
@pytest.mark.parametrize("key", [None, "cbz_nope_nope"], ids=["no-key", "unknown-key"])
def test_without_a_valid_key_an_unreadable_body_is_401(live, body, key):
    http, keys = live.http, live.keys
    headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}
    resp = http.post("/v1/jobs", content=body, headers=headers)
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    latest = _audit(http, keys)[0]
    assert (latest["path"], latest["status"], latest["outcome"]) == ("/v1/jobs", 401, "denied")
    assert latest["action"] == "POST /v1/jobs"  # the route is named though routing never ran


def test_with_a_valid_key_the_body_is_read_and_validated(live):
    http, keys = live.http, live.keys
    headers = {"Content-Type": "application/json", **auth(keys["operator"])}
    assert http.post("/v1/jobs", content=b'{"type": "etl",', headers=headers).status_code == 422
    # role still decided by the route (403), after a valid key
    viewer = {"Content-Type": "application/json", **auth(keys["viewer"])}
    assert http.post("/v1/jobs", json={"type": "etl"}, headers=viewer).status_code == 403


def test_oversized_body_is_401_without_a_key_and_413_with_one(live):
    http, keys = live.http, live.keys
    big = b'{"role": "viewer", "name": "' + b"x" * 1_100_000 + b'"}'
    headers = {"Content-Type": "application/json"}
    assert http.post("/v1/keys", content=big, headers=headers).status_code == 401
    resp = http.post("/v1/keys", content=big, headers={**headers, **auth(keys["admin"])})
    assert resp.status_code == 413
    latest = _audit(http, keys)[0]
    assert latest["status"] == 413 and latest["key_name"] == "hard-admin"  # who is known now


def test_unknown_v1_paths_need_a_key_too(live):
    http, keys = live.http, live.keys
    assert http.get("/v1/nothing-here").status_code == 401
    assert http.get("/v1/nothing-here", headers=auth(keys["viewer"])).status_code == 404


@pytest.mark.parametrize(
    "pair",
    [
        ("X-API-Key", "viewer", "X-API-Key", "admin"),
        ("X-API-Key", "admin", "X-API-Key", "junk"),
        ("X-API-Key", "admin", "X-API-Key", "admin"),
        ("Authorization", "admin", "Authorization", "viewer"),
        ("Authorization", "admin", "Authorization", "admin"),
    ],
    ids=lambda p: "-".join(p),
)
def test_a_repeated_key_header_is_refused(live, pair):
    http, keys = live.http, live.keys

    def value(header: str, who: str) -> str:
        key = keys.get(who, who)
        return f"Bearer {key}" if header == "Authorization" else key

    headers = [(pair[0], value(pair[0], pair[1])), (pair[2], value(pair[2], pair[3]))]
    resp = http.get("/v1/me", headers=headers)
    assert resp.status_code == 401, resp.text
    assert "more than one" in resp.json()["detail"]


def test_one_key_in_each_header_is_still_fine_when_it_is_the_same(live):
    http, keys = live.http, live.keys
    same = {"Authorization": f"Bearer {keys['viewer']}", "X-API-Key": keys["viewer"]}
    assert http.get("/v1/me", headers=same).status_code == 200
    other = {"Authorization": f"Bearer {keys['viewer']}", "X-API-Key": keys["admin"]}
    assert http.get("/v1/me", headers=other).status_code == 401


def test_only_the_documented_pages_are_open(live):
    http = live.http
    assert http.get("/docs").status_code == 200
    spec = http.get("/openapi.json")
    assert spec.status_code == 200
    assert "oauth2-redirect" not in http.get("/docs").text
    for path in ("/redoc", "/docs/oauth2-redirect"):
        assert http.get(path).status_code == 404, path
    assert not {p for p in spec.json()["paths"] if "redoc" in p or "oauth2" in p}


def test_security_headers(live):
    http, keys = live.http, live.keys
    for resp in (
        http.get("/v1/summary", headers=auth(keys["viewer"])),  # 404: no results yet
        http.get("/v1/jobs", headers=auth(keys["viewer"])),
        http.get("/v1/jobs"),  # 401 from the middleware
    ):
        assert resp.headers.get_list("cache-control") == ["no-store"], resp.url
        assert resp.headers.get_list("x-content-type-options") == ["nosniff"]
    health = http.get("/healthz")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in health.headers
    page = http.get("/dashboard")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers.get_list("x-content-type-options") == ["nosniff"]


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


def _forged(version: str, key: list) -> str:
    raw = json.dumps([version, "risk", key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_forged_cursor_numbers_are_400_not_500(client, lake_dir, keys):
    version = publish_results(lake_dir, results_frame(20))
    viewer = auth(keys["viewer"])
    first = client.get("/v1/scores", params={"sort": "risk", "limit": 5}, headers=viewer).json()
    assert first["next_cursor"]
    page = client.get(
        "/v1/scores",
        params={"sort": "risk", "limit": 5, "cursor": first["next_cursor"]},
        headers=viewer,
    )
    assert page.status_code == 200 and page.json()["count"] == 5
    for middle in ([10**40, 1, "z"], [0.5, -(10**40), "z"], [1e300, 0, "z"]):
        cursor = _forged(version, ["2025-06-30", *middle])
        resp = client.get("/v1/scores", params={"sort": "risk", "cursor": cursor}, headers=viewer)
        assert resp.status_code == 400, (middle, resp.text)
        assert "cursor is not valid" in resp.json()["detail"]
    # 1e309 and -1e309 are inf in JSON: refused too, not taken as an open bound
    raw = f'["{version}","risk",["2025-06-30",1e309,-1e309,"z"]]'
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    resp = client.get("/v1/scores", params={"sort": "risk", "cursor": cursor}, headers=viewer)
    assert resp.status_code == 400
