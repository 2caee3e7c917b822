"""Auth and roles on every route of the OpenAPI document: 401 without a valid key, 403 below the role.

The minimum role of each route is read from the schema (`x-required-role`); a `/v1` route without
one fails the test, so a new route cannot be added unguarded. Bodies are empty on purpose: an
allowed caller gets past auth and is stopped by validation (422) or a missing resource (404), so no
job is started and nothing is changed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from cobranza.api import create_app
from cobranza.api.keys import create_key, revoke_key
from cobranza.config import load_settings
from tests.api.conftest import ROLES

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
    from cobranza.api.control import ControlDB, control_path

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
