"""API keys: creation (shown once), verification and revocation; only a SHA-256 hash is stored.

A key looks like `cbz_<key_id>_<secret>`: the public `key_id` finds the row, the hash of the whole key
is compared in constant time. Keys carry 256 bits of randomness, so a fast hash is enough (no
password stretching needed). Roles are ordered: viewer < operator < admin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from cobranza.api.control import ControlDB, control_path, now_iso
from cobranza.config import Settings
from cobranza.errors import CobranzaError

ROLES = ("viewer", "operator", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
PREFIX = "cbz_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role (never the key itself)."""

    key_id: str
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_role(role: str) -> str:
    if role not in RANK:
        raise CobranzaError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role


def issue_key(db: ControlDB, role: str, name: str, created_by: str | None = None) -> dict[str, Any]:
    """Insert a new key; the returned dict is the only place the clear key ever appears."""
    check_role(role)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise CobranzaError("key name must be 1 to 100 characters")
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    created_at = now_iso()
    db.execute(
        "INSERT INTO api_keys (key_id, name, role, key_hash, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (key_id, name, role, hash_key(key), created_at, created_by),
    )
    return {"key": key, "key_id": key_id, "role": role, "name": name, "created_at": created_at}


def create_key(settings: Settings, role: str, name: str) -> dict[str, Any]:
    """CLI entry point (`cobranza keys create`): the key is printed once and stored hashed."""
    db = ControlDB(control_path(settings.lake))
    try:
        out = issue_key(db, role, name, created_by="cli")
    finally:
        db.close()
    out["note"] = "store this key now: it is not shown again"
    return out


def list_keys_cli(settings: Settings) -> list[dict[str, Any]]:
    """CLI entry point (`cobranza keys list`): every key's id, name, role and dates; never a key."""
    db = ControlDB(control_path(settings.lake))
    try:
        return list_keys(db)
    finally:
        db.close()


def revoke_key_cli(settings: Settings, key_id: str) -> dict[str, Any]:
    """CLI entry point (`cobranza keys revoke`): works without the API, e.g. when the only admin
    key is lost or leaked."""
    db = ControlDB(control_path(settings.lake))
    try:
        row = revoke_key(db, key_id)
    finally:
        db.close()
    if row is None:
        raise CobranzaError(f"no API key with id {key_id!r}; `cobranza keys list` shows them")
    return row


def authenticate(db: ControlDB, key: str) -> Principal | None:
    """The principal for a presented key, or None if unknown, malformed or revoked."""
    if not key.startswith(PREFIX) or len(key) > 200:
        return None
    key_id = key[len(PREFIX) :].split("_", 1)[0]
    row = db.one(
        "SELECT key_id, name, role, key_hash, revoked_at FROM api_keys WHERE key_id = ?", (key_id,)
    )
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["key_hash"], hash_key(key)):
        return None
    return Principal(row["key_id"], row["name"], row["role"])


def list_keys(db: ControlDB) -> list[dict[str, Any]]:
    return db.all(
        "SELECT key_id, name, role, created_at, created_by, revoked_at FROM api_keys "
        "ORDER BY created_at, key_id"
    )


def revoke_key(db: ControlDB, key_id: str) -> dict[str, Any] | None:
    row = db.one("SELECT key_id FROM api_keys WHERE key_id = ?", (key_id,))
    if row is None:
        return None
    db.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?",
        (now_iso(), key_id),
    )
    return db.one(
        "SELECT key_id, name, role, created_at, created_by, revoked_at FROM api_keys "
        "WHERE key_id = ?",
        (key_id,),
    )
