"""The deployment's pseudonym key: the HMAC-SHA256 key behind `client_key` and `account_key`.

Silver pseudonymizes the bank's identifiers with this key (`transforms.silver.pseudonym`). A
pseudonym is only as strong as its key is secret: with a key anyone can guess (a constant in the
code, a short word), `client_key` is reversed to its `client_id` by hashing candidate ids.

Where the key comes from, first match wins:

1. `pseudonym_key` in the settings (`COBRANZA_PSEUDONYM_KEY`), at least 32 characters;
2. `<lake>/control/pseudonym.key`, generated on first use: 32 random bytes as 64 hex digits,
   written owner-only (0600) into the owner-only control folder, created atomically so that two
   commands starting together end with the same key.

A known development constant or a short key is refused (`PseudonymKeyError`) unless the settings
say `pseudonym_development` (demos; never a deployment that holds real data). Rotating the key
re-keys every pseudonym from the next `cobranza etl` on: see docs/security.md.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from cobranza.lake.fs import fsync_dir, private_dir
from cobranza.lake.layout import LakeError

if TYPE_CHECKING:
    from cobranza.config import Settings

KEY_FILE = "pseudonym.key"
MIN_KEY_CHARS = 32
KEY_BYTES = 32
# Keys that have appeared in code, docs or examples: anyone can try them.
DEVELOPMENT_KEYS = frozenset(
    {
        "cobranza-development-secret",
        "cobranza-development-key",
        "cobranza-dev-key",
        "changeme",
        "change-me",
        "secret",
        "development",
    }
)


class PseudonymKeyError(LakeError):
    """A pseudonym key that may not be used, or a key file that cannot be read or written."""


def key_path(lake: Path) -> Path:
    return Path(lake).resolve() / "control" / KEY_FILE


def is_development_key(key: str) -> bool:
    return key.strip().lower() in DEVELOPMENT_KEYS or len(key) < MIN_KEY_CHARS


def pseudonym_key(settings: Settings, create: bool = True) -> bytes | None:
    """The key as bytes (UTF-8 of its text), generating the lake's key file when `create`.

    Without `create` (the API's start), None when no key is configured and none generated yet.
    """
    configured = settings.pseudonym_key
    if configured is not None:
        text = configured.get_secret_value()
        source = "COBRANZA_PSEUDONYM_KEY (pseudonym_key)"
    else:
        path = key_path(settings.lake)
        found = _read_key_file(path)
        if found is None:
            if not create:
                return None
            found = _create_key_file(path)
        text, source = found, str(path)
    if is_development_key(text) and not settings.pseudonym_development:
        why = (
            "is a known development key"
            if text.strip().lower() in DEVELOPMENT_KEYS
            else f"is shorter than {MIN_KEY_CHARS} characters"
        )
        raise PseudonymKeyError(
            f"the pseudonym key from {source} {why}: anyone could reverse client_key to the "
            "bank's client_id with it. Unset COBRANZA_PSEUDONYM_KEY to have a random key "
            "generated in the lake, or set a random one (`python -c 'import secrets; "
            "print(secrets.token_hex(32))'`); a demo may set COBRANZA_PSEUDONYM_DEVELOPMENT=true"
        )
    return text.encode("utf-8")


def _read_key_file(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PseudonymKeyError(
            f"{path}: the pseudonym key cannot be read ({exc.strerror or exc})"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PseudonymKeyError(f"{path}: the pseudonym key is not a regular file")
        if info.st_mode & 0o077:
            raise PseudonymKeyError(
                f"{path}: the pseudonym key is readable by other accounts (mode "
                f"{stat.S_IMODE(info.st_mode):o}); make it owner-only: chmod 600 {path}"
            )
        text = os.read(fd, 4096).decode("utf-8", errors="replace").strip()
    finally:
        os.close(fd)
    if not text:
        raise PseudonymKeyError(
            f"{path}: the pseudonym key file is empty; restore it from a backup (a new key "
            "re-keys every pseudonym, docs/security.md)"
        )
    return text


def _create_key_file(path: Path) -> str:
    """A new random key, linked into place only if no other process made one first."""
    private_dir(path.parent)
    text = secrets.token_hex(KEY_BYTES)
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, (text + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if the name exists: the first key made stays the key
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_dir(path.parent)
    found = _read_key_file(path)
    if found is None:  # pragma: no cover - removed between the link and the read
        raise PseudonymKeyError(f"{path}: the pseudonym key vanished while it was created")
    return found
