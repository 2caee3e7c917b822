"""The redo journal that makes a transaction of several zones (silver + gold) atomic, and recovery.

`<lake>/.transaction.json` holds, for every version of the transaction, its zone, its full record,
its new pointer and the pointer it replaces. Once the journal exists the transaction is decided:
`apply` writes the records (if missing) and switches every pointer, and is idempotent, so a process
that dies anywhere after the journal was written is completed by the next one (`roll_forward`).
`undo` sets the pointers back and removes the versions. Every function here runs with the commit
lock held (`Lake` takes it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from cobranza.errors import first_line
from cobranza.lake.fs import (
    count_parquet_rows,
    fsync_dir,
    stage_json,
    unlink_durable,
    write_json_atomic,
)
from cobranza.lake.layout import (
    JOURNAL,
    ZONES,
    is_version_name,
    journal_path,
    new_run_id,
    pointed_version,
    pointer_path,
    record_path,
    versions_dir,
    zone_dir,
)
from cobranza.lake.locks import lock_path

log = logging.getLogger(__name__)

Entry = dict[str, Any]  # zone, version, record, pointer, previous_pointer


def write(root: Path, run_id: str, entries: list[Entry]) -> None:
    """Decide the transaction: the journal written atomically and durably."""
    write_json_atomic(
        journal_path(root), {"run_id": run_id, "pid": os.getpid(), "entries": entries}
    )


def versions(root: Path) -> dict[str, set[str]]:
    """zone -> versions named by a journal not completed yet (read tolerantly)."""
    out: dict[str, set[str]] = {}
    try:
        for e in json.loads(journal_path(root).read_text(encoding="utf-8"))["entries"]:
            out.setdefault(e["zone"], set()).add(e["version"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return out


def _read_entries(path: Path, text: str) -> list[Entry] | None:
    """The journal's entries, or None when it is damaged (then moved aside, with a warning)."""
    try:
        entries = json.loads(text)["entries"]
        for e in entries:
            if e["zone"] not in ZONES or not is_version_name(e["version"]):
                raise ValueError(f"bad entry {e['zone']!r} {e['version']!r}")
            if not isinstance(e["record"], dict) or not isinstance(e["pointer"], dict):
                raise ValueError("bad record or pointer")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        # written with os.replace, so never half-written: something else damaged it
        aside = path.with_name(f"{JOURNAL}.broken-{new_run_id()}")
        os.replace(path, aside)
        log.warning(
            "%s was damaged (%s) and was moved to %s: a publication interrupted there could "
            "not be completed; check `cobranza lake versions` and point a zone at the version "
            "you want with `cobranza lake use ZONE VERSION`",
            path,
            first_line(exc),
            aside,
        )
        return None
    return entries


def roll_forward(root: Path) -> list[str]:
    """Redo the journal left by a dead process, if any; the zone and version of each completed
    entry (empty when there was none, or it could not be completed and was undone)."""
    path = journal_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = _read_entries(path, text)
    if entries is None:
        return []
    done = [f"{e['zone']} {e['version']}" for e in entries]
    gone = [problem for e in entries if (problem := incomplete_entry(root, e)) is not None]
    if gone:
        undo(root, entries)
        log.warning(
            "the publication of %s interrupted by the death of its process could not be "
            "completed (%s); those zones were set back to their previous versions",
            ", ".join(done),
            "; ".join(gone),
        )
        return []
    apply(root, entries)
    for e in entries:  # their writer is dead: its lock files protect nothing now
        lock_path(versions_dir(root, e["zone"]), e["version"]).unlink(missing_ok=True)
    unlink_durable(path)
    log.warning(
        "completed the publication of %s, interrupted by the death of its process (%s)",
        ", ".join(done),
        path,
    )
    return done


def incomplete_entry(root: Path, e: Entry) -> str | None:
    """What is missing from a journal entry's version (None: every table as recorded)."""
    vdir = versions_dir(root, e["zone"]) / e["version"]
    if not vdir.is_dir():
        return f"{vdir} is gone"
    for table, meta in (e["record"].get("tables") or {}).items():
        tdir = vdir / table
        if not tdir.is_dir():
            return f"{tdir} is gone"
        rows = (meta or {}).get("rows")
        try:
            found = count_parquet_rows(tdir)
        except Exception as exc:  # a truncated or unreadable file
            return f"{tdir} cannot be read ({first_line(exc)})"
        if rows is not None and found != rows:
            return f"{tdir} has {found} rows, {rows} recorded"
    return None


def apply(root: Path, entries: list[Entry]) -> None:
    """Write each version's record (if missing), then switch each pointer: idempotent."""
    for e in entries:
        run_file = record_path(root, e["zone"], e["version"])
        if not run_file.exists():
            write_json_atomic(run_file, e["record"])
    # every pointer staged (written, fsynced) first, then renamed back to back: readers see
    # new silver beside old gold for the time of one rename, not of two fsyncs
    staged = [(stage_json(pointer_path(root, e["zone"]), e["pointer"]), e) for e in entries]
    try:
        for tmp, e in staged:
            os.replace(tmp, pointer_path(root, e["zone"]))
    finally:
        for tmp, _ in staged:  # those not renamed
            with contextlib.suppress(OSError):
                tmp.unlink()
    for e in entries:
        fsync_dir(zone_dir(root, e["zone"]))


def undo(root: Path, entries: list[Entry]) -> None:
    """Set pointers back, remove the versions' records, the journal, then their folders."""
    for e in reversed(entries):
        pointer = pointer_path(root, e["zone"])
        if pointed_version(root, e["zone"]) == e["version"]:
            if e.get("previous_pointer") is None:
                pointer.unlink(missing_ok=True)
            else:
                write_json_atomic(pointer, e["previous_pointer"])
    for e in entries:
        record_path(root, e["zone"], e["version"]).unlink(missing_ok=True)
    unlink_durable(journal_path(root))
    for e in entries:
        shutil.rmtree(versions_dir(root, e["zone"]) / e["version"], ignore_errors=True)
