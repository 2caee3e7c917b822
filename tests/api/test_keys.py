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
