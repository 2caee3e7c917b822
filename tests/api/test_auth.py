"""Auth and roles on every route of the OpenAPI document: 401 without a valid key, 403 below the role.

The minimum role of each route is read from the schema (`x-required-role`); a `/v1` route without
one fails the test, so a new route cannot be added unguarded. Bodies are empty on purpose: an
allowed caller gets past auth and is stopped by validation (422) or a missing resource (404), so no
job is started and nothing is changed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from cobranza.api import create_app
from cobranza.api.control import ControlDB, control_path
from cobranza.api.keys import create_key, revoke_key
from cobranza.config import load_settings
from tests.api.conftest import ROLES, auth

OPEN = {"/healthz", "/readyz", "/metrics"}
PATH_VALUES = {
    "job_id": "abc123",
    "obligation_id": "OB00001",
    "version": "1",
    "webhook_id": "abc123",
    "key_id": "abc123",
}


def _operations():
    app = create_app(
        load_settings(lake=Path(tempfile.mkdtemp(prefix="cobranza-openapi-")) / "lake")
    )
    spec = app.openapi()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield path, method, op.get("x-required-role")


OPERATIONS = list(_operations())


def _url(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def _call(client, method, path, headers):
    kwargs = {"headers": headers}
    if method in ("post", "put", "patch"):
        kwargs["json"] = {}
    return client.request(method.upper(), _url(path), **kwargs)


def test_every_versioned_route_declares_a_role_and_only_health_is_open():
    assert len(OPERATIONS) >= 18
    for path, _, role in OPERATIONS:
        if path in OPEN:
            assert role is None
        else:
            assert path.startswith("/v1/"), path
            assert role in ROLES, f"{path} has no x-required-role"


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One app for every route (one MLflow store to initialise, not one per route)."""
    from fastapi.testclient import TestClient

    settings = load_settings(lake=tmp_path_factory.mktemp("auth") / "lake")
    keys = {role: create_key(settings, role, f"test-{role}")["key"] for role in ROLES}
    with TestClient(create_app(settings)) as client:
        yield client, keys


@pytest.mark.parametrize(("path", "method", "role"), OPERATIONS, ids=lambda v: str(v))
def test_route_enforces_its_role(shared, path, method, role):
    client, keys = shared
    if role is None:
        assert _call(client, method, path, {}).status_code == 200 or path == "/readyz"
        return
    assert _call(client, method, path, {}).status_code == 401
    assert _call(client, method, path, {"X-API-Key": "cbz_nope_nope"}).status_code == 401
    rank = ROLES.index(role)
    for lower in ROLES[:rank]:
        resp = _call(client, method, path, {"Authorization": f"Bearer {keys[lower]}"})
        assert resp.status_code == 403, (lower, resp.text)
    for allowed in ROLES[rank:]:
        for header in ("Authorization", "X-API-Key"):
            value = keys[allowed] if header == "X-API-Key" else f"Bearer {keys[allowed]}"
            resp = _call(client, method, path, {header: value})
            assert resp.status_code not in (401, 403), (allowed, header, resp.text)


def test_revoked_key_is_refused(client, settings):
    created = create_key(settings, "admin", "short-lived")
    headers = {"X-API-Key": created["key"]}
    assert client.get("/v1/keys", headers=headers).status_code == 200

    revoke_key(ControlDB(control_path(settings.lake)), created["key_id"])
    assert client.get("/v1/keys", headers=headers).status_code == 401


def test_admin_creates_and_revokes_keys_through_the_api(client, keys):
    admin = {"X-API-Key": keys["admin"]}
    resp = client.post("/v1/keys", json={"role": "operator", "name": "n8n"}, headers=admin)
    assert resp.status_code == 201
    new = resp.json()
    assert new["key"].startswith("cbz_") and new["role"] == "operator"
    listed = client.get("/v1/keys", headers=admin).json()
    assert new["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k and "key_hash" not in k for k in listed)
    op = {"X-API-Key": new["key"]}
    assert client.get("/v1/jobs", headers=op).status_code == 200
    assert client.delete(f"/v1/keys/{new['key_id']}", headers=admin).json()["revoked_at"]
    assert client.get("/v1/jobs", headers=op).status_code == 401
    bad = client.post("/v1/keys", json={"role": "root", "name": "x"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "role"]


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
    """The refusal is counted in /metrics and sampled into the audit (not one row per call)."""
    http, keys = live.http, live.keys
    before = _refused_count(http)
    headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}
    resp = http.post("/v1/jobs", content=body, headers=headers)
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    assert _refused_count(http) == before + 1
    deadline = time.monotonic() + 10
    sampled = []
    while not sampled and time.monotonic() < deadline:
        sampled = [
            e
            for e in _audit(http, keys)
            if (e["path"], e["status"], e["outcome"]) == ("/v1/jobs", 401, "denied")
        ]
        time.sleep(0.1)
    assert sampled and sampled[0]["action"] == "refused without a valid key"
    assert sampled[0]["key_id"] is None


def _refused_count(http) -> float:
    text = http.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("cobranza_api_refused_unauthenticated_total{")
    )


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
