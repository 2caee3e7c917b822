"""Names and places of the lake: zones, the files of a version and of a zone, run and version ids.

`<lake>/<zone>/versions/<version>/<table>/*.parquet` with `<version>/_run.json` (the version's
record, written last) and `<lake>/<zone>/CURRENT` (the pointer). The lock and journal files live
at the lake's root. Every other lake module builds its paths from these names.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cobranza.errors import CobranzaError

ZONES = ("raw", "silver", "gold", "results")
RUN_FILE = "_run.json"
POINTER = "CURRENT"
VERSIONS = "versions"
# `<lake>/.transaction.json`: the redo journal of a transaction being committed (journal.py)
JOURNAL = ".transaction.json"
# `<lake>/.commit.lock`: held (flock, exclusive) while records are written and pointers switched
COMMIT_LOCK = ".commit.lock"
# `<lake>/.lake.lock`: held shared by every command reading versions, exclusively by prune
IN_USE_LOCK = ".lake.lock"
TMP = "_tmp"
METADATA = "ml_metadata"
CATALOG = "catalog.duckdb"
# Folders only the lake's owner (the service account) may enter: raw holds the bank's personal data
# (names, documents, e-mails, phones), _tmp the ingest's working database of the same rows, control
# the API's key hashes and webhook secrets. Whoever else opens the catalog (BI, analysts) reads
# silver, gold and results, and gets "permission denied" on raw.
PRIVATE = ("raw", TMP, "control")


class LakeError(CobranzaError):
    """A lake problem a person can act on (no published version, unknown table...)."""


def new_run_id() -> str:
    """Sortable by time, unique across processes."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def new_version_name(run_id: str) -> str:
    """A version folder name: sortable by time to the microsecond, ending with the run's id."""
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{run_id[-8:]}"


def metadata_stamp(iso: str) -> str:
    """An ISO timestamp as a file-name part of an ml_metadata event (sorts like the time)."""
    return iso.replace(":", "").replace("-", "").replace("+", "_")


def is_version_name(name: Any) -> bool:
    """A version name usable as one path component (a pointer can never lead outside the zone)."""
    return isinstance(name, str) and bool(name) and "/" not in name and not name.startswith(".")


def zone_dir(root: Path, zone: str) -> Path:
    if zone not in ZONES:
        raise LakeError(f"unknown zone {zone!r}; zones are {', '.join(ZONES)}")
    return root / zone


def versions_dir(root: Path, zone: str) -> Path:
    return zone_dir(root, zone) / VERSIONS


def pointer_path(root: Path, zone: str) -> Path:
    return zone_dir(root, zone) / POINTER


def record_path(root: Path, zone: str, version: str) -> Path:
    """The `_run.json` of a version."""
    return versions_dir(root, zone) / version / RUN_FILE


def journal_path(root: Path) -> Path:
    return root / JOURNAL


def pointed_version(root: Path, zone: str) -> str | None:
    """The version a zone's pointer names; None when there is no pointer or it is unreadable
    (`Lake.pointer` says what is wrong with a broken one)."""
    try:
        data = json.loads(pointer_path(root, zone).read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError, ValueError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if is_version_name(version) else None
