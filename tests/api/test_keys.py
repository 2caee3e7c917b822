"""API keys: shown once, stored only as a SHA-256 hash, checked in constant time, revocable."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from cobranza.api.control import ControlDB, control_path
from cobranza.api.keys import authenticate, create_key, revoke_key
from cobranza.errors import CobranzaError


def test_create_key_stores_only_the_hash(settings):
    created = create_key(settings, "operator", "etl-bot")
    path = control_path(settings.lake)
    db = ControlDB(path)
    row = db.one("SELECT * FROM api_keys WHERE key_id = ?", (created["key_id"],))
    assert row["key_hash"] == hashlib.sha256(created["key"].encode()).hexdigest()
    assert created["key"] not in json.dumps(row)
    db.close()
    raw = b"".join(p.read_bytes() for p in path.parent.glob("control.db*"))
    assert created["key"].encode() not in raw


def test_authenticate_and_revoke(settings):
    created = create_key(settings, "viewer", "bi")
    db = ControlDB(control_path(settings.lake))
    principal = authenticate(db, created["key"])
    assert (principal.key_id, principal.role, principal.name) == (created["key_id"], "viewer", "bi")
    assert authenticate(db, created["key"][:-1] + "x") is None
    assert authenticate(db, "not-a-key") is None
    revoke_key(db, created["key_id"])
    assert authenticate(db, created["key"]) is None


def test_bad_role_or_name_is_a_clear_error(settings):
    with pytest.raises(CobranzaError, match="unknown role 'root'"):
        create_key(settings, "root", "x")
    with pytest.raises(CobranzaError, match="name"):
        create_key(settings, "viewer", "  ")


def test_cli_keys_create_prints_the_key_once_as_json(lake_dir):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cobranza.cli",
            "--lake",
            str(lake_dir),
            "--json",
            "keys",
            "create",
            "--role",
            "admin",
            "--name",
            "ops",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    body = json.loads(out.stdout)
    assert body["role"] == "admin" and body["key"].startswith("cbz_")
    db = ControlDB(control_path(lake_dir))
    assert authenticate(db, body["key"]).name == "ops"


def _cli(lake_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cobranza.cli", "--lake", str(lake_dir), "--json", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_keys_list_and_revoke_work_without_the_service(lake_dir):
    """An admin whose key leaked revokes it from the console; the list never shows a key."""
    created = json.loads(
        _cli(lake_dir, "keys", "create", "--role", "admin", "--name", "ops").stdout
    )
    other = json.loads(_cli(lake_dir, "keys", "create", "--role", "viewer", "--name", "bi").stdout)

    listed = _cli(lake_dir, "keys", "list")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert len(rows) == 2
    assert {(r["key_id"], r["role"], r["revoked_at"]) for r in rows} == {
        (created["key_id"], "admin", None),
        (other["key_id"], "viewer", None),
    }
    assert created["key"] not in listed.stdout and other["key"] not in listed.stdout

    revoked = _cli(lake_dir, "keys", "revoke", created["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    db = ControlDB(control_path(lake_dir))
    try:
        assert authenticate(db, created["key"]) is None
        assert authenticate(db, other["key"]).name == "bi"
    finally:
        db.close()

    unknown = _cli(lake_dir, "keys", "revoke", "abcdef")
    assert unknown.returncode == 1
    assert "no API key with id 'abcdef'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
