"""Retention of lake versions: what `cobranza lake versions` lists and `cobranza lake prune` removes.

Every run publishes a new version and nothing is overwritten, so the lake only grows (one raw
version of 1M clients x 24 months is several GB). Pruning removes the table data of old versions
of raw, silver and gold and keeps their `_run.json`, marked `pruned_at`, so
`ml_metadata.lake_runs` still lists every version ever published. Always kept:

- the current version of each zone and the `keep` newest complete versions;
- the lineage of every kept version (the silver a gold was built from, the raw behind a silver);
- the gold version every registered model was trained on, as the caller tells it (`TrainingGold`,
  from `cobranza.ml.lineage`: the model registry and the `model_runs` mirror), so the data behind
  any model can be read again; when a registered version's gold cannot be told at all, no gold
  version is pruned;
- the versions the catalog's views read (`catalog.versions.json`): after a refresh that failed, a
  stale catalog still reads the previous versions;
- the whole results zone: its `scores` tables are the history of decisions (what was decided on
  which obligation, when, by which model and why), which the bank keeps.

Folders of runs that died before publishing are removed once no process holds their writer lock,
and so are the `_tmp/` working folders of dead runs. Pruning refuses to start while a command uses
the lake (each holds `<lake>/.lake.lock` shared, prune needs it exclusively) or a run is writing
into it, since those may be reading a version that would otherwise go.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cobranza.lake.catalog import catalog_stale, catalog_versions, refresh_catalog
from cobranza.lake.fs import drop_dead_lock, write_json_atomic
from cobranza.lake.layout import RUN_FILE, ZONES, LakeError
from cobranza.lake.locks import lock_path, writer_alive
from cobranza.lake.store import Lake
from cobranza.summary import Summary

log = logging.getLogger(__name__)
PRUNABLE = ("raw", "silver", "gold")  # results hold the decision history: never pruned
LINEAGE = {"gold": ("silver", "silver"), "silver": ("raw", "raw")}  # zone: (input key, zone)


@dataclass
class Plan:
    """Which versions stay and why, and which go; a pure function of the records (`plan_prune`)."""

    keep: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # zone: version: reasons
    prune: dict[str, list[str]] = field(default_factory=dict)  # zone: versions, oldest first


def plan_prune(
    records: dict[str, list[dict[str, Any]]],
    current: dict[str, str | None],
    keep: int,
    model_gold: dict[str, list[str]],
    catalog: dict[str, set[str]] | None = None,
    hold_gold: str | None = None,
) -> Plan:
    """Decide from the versions' `_run.json` records (oldest first per zone) what to prune.

    `model_gold` maps a gold version to the model versions trained on it; `catalog` maps a zone to
    the versions the catalog's views read; `hold_gold`, when given, is why no gold may go at all.
    """
    if keep < 1:
        raise LakeError("keep must be at least 1: the newest version of each zone always stays")
    reasons: dict[str, dict[str, list[str]]] = {z: {} for z in PRUNABLE}
    by_version = {z: {r["version"]: r for r in records.get(z, [])} for z in PRUNABLE}

    def hold(zone: str, version: str | None, why: str) -> None:
        if version and version in by_version[zone]:
            reasons[zone].setdefault(version, []).append(why)

    for zone in PRUNABLE:
        live = [r["version"] for r in records.get(zone, []) if not r.get("pruned_at")]
        for version in live[-keep:]:
            hold(zone, version, f"among the {keep} newest")
        hold(zone, current.get(zone), "current")
    for version, models in model_gold.items():
        hold("gold", version, "trained model version " + ", ".join(sorted(models, key=_by_number)))
    for zone, versions in (catalog or {}).items():
        for version in sorted(versions):
            if zone in reasons and version != current.get(zone):
                hold(zone, version, "read by the catalog's views (stale: run `cobranza catalog`)")
    if hold_gold:
        for record in records.get("gold", []):
            if not record.get("pruned_at"):
                hold("gold", record["version"], hold_gold)
    for zone in ("gold", "silver"):  # lineage, downstream first so it chains gold -> silver -> raw
        key, upstream = LINEAGE[zone]
        for version in list(reasons[zone]):
            source = (by_version[zone][version].get("inputs") or {}).get(key)
            hold(upstream, source, f"input of {zone} {version}")
    plan = Plan()
    for zone in PRUNABLE:
        plan.keep[zone] = reasons[zone]
        plan.prune[zone] = [
            r["version"]
            for r in records.get(zone, [])
            if r["version"] not in plan.keep[zone] and not r.get("pruned_at")
        ]
    return plan


def _by_number(version: str) -> tuple[int, str]:
    head = version.split()[0] if version.split() else version
    return (int(head), version) if head.isdigit() else (2**62, version)


def _bytes(path: os.PathLike | str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed while we walked
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _table_dirs(lake: Lake, zone: str, version: str) -> list:
    vdir = lake.zone_dir(zone) / "versions" / version
    return [p for p in vdir.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]


def protected(lake: Lake, zone: str) -> set[str]:
    """Versions never taken for orphans: the one CURRENT points at, those of a journal.

    Raises LakeError when the pointer is broken: then nobody can tell what is current.
    """
    out = set(lake.journal_versions().get(zone, set()))
    current = lake.current_version(zone)
    if current is not None:
        out.add(current)
    return out


def incomplete(
    lake: Lake, zone: str, keep: set[str] | None = None
) -> list[tuple[Path, bool | None]]:
    """Version folders without `_run.json`, each with `writer_alive` (True: a run in progress).

    The version a pointer names is never among them, even without its record: it is current
    (`cobranza lake versions` shows it as such), never an orphan.
    """
    vroot = lake.zone_dir(zone) / "versions"
    if not vroot.exists():
        return []
    keep = protected(lake, zone) if keep is None else keep
    return [
        (vdir, writer_alive(vdir))
        for vdir in sorted(vroot.iterdir())
        if vdir.is_dir()
        and not vdir.name.startswith(".")
        and vdir.name not in keep
        and not (vdir / RUN_FILE).exists()
    ]


def clean_orphans(lake: Lake, min_age_seconds: float = 3600.0) -> list[Path]:
    """Remove version folders left by dead runs; never a complete one, one being written or
    one a pointer names.

    A folder whose writer lock is free is an orphan at once. One without a lock file (left by
    an older cobranza) counts as an orphan only when untouched for `min_age_seconds`.
    """
    removed = []
    for zone in ZONES:
        for vdir, alive in incomplete(lake, zone):
            if alive:
                continue
            if alive is None and time.time() - vdir.stat().st_mtime < min_age_seconds:
                continue
            if (vdir / RUN_FILE).exists():  # its writer recorded it while we looked
                continue
            if vdir.name in protected(lake, zone):  # switched to while we looked
                continue
            shutil.rmtree(vdir, ignore_errors=True)
            lock_path(vdir.parent, vdir.name).unlink(missing_ok=True)
            removed.append(vdir)
        vroot = lake.zone_dir(zone) / "versions"
        for lock in vroot.glob(".*.lock") if vroot.is_dir() else []:
            if not (vroot / lock.name[1:-5]).exists():  # killed between lock and folder
                drop_dead_lock(lock)
    return removed


def list_versions(lake: Lake) -> list[dict[str, Any]]:
    """Every version folder of every zone: complete, pruned, being written or orphaned.

    Shows what is wrong rather than failing: a broken CURRENT is a row `pointer broken` (with the
    problem in `problem`), a current version without `_run.json` is `current, record missing`,
    one whose folder is gone `current, folder missing`.
    """
    rows = []
    for zone in ZONES:
        problem = None
        try:
            current = lake.current_version(zone)
        except LakeError as exc:
            current, problem = None, str(exc)
            rows.append(_row(zone, None, "pointer broken", True, problem=problem))
        vroot = lake.zone_dir(zone) / "versions"
        for vdir in sorted(vroot.iterdir()) if vroot.is_dir() else []:
            if vdir.name.startswith(".") or not (vdir / RUN_FILE).exists():
                continue
            version = vdir.name
            try:
                record = lake.run_info(zone, version)
            except LakeError as exc:
                rows.append(
                    _row(zone, version, "record broken", version == current, _bytes(vdir), str(exc))
                )
                continue
            tables = record.get("tables") or {}
            rows.append(
                _row(
                    zone,
                    version,
                    "pruned" if record.get("pruned_at") else "complete",
                    version == current,
                    _bytes(vdir),
                    published_at=record.get("published_at"),
                    run_id=record.get("run_id"),
                    rows=sum(int(t.get("rows") or 0) for t in tables.values()),
                    pruned_at=record.get("pruned_at"),
                )
            )
        if current is not None and not (vroot / current / RUN_FILE).exists():
            missing = "record" if (vroot / current).is_dir() else "folder"
            rows.append(
                _row(
                    zone,
                    current,
                    f"current, {missing} missing",
                    True,
                    _bytes(vroot / current),
                    f"{vroot / current / RUN_FILE if missing == 'record' else vroot / current} "
                    f"is missing; `cobranza lake use {zone} VERSION` points {zone} at a "
                    "complete version",
                )
            )
        keep = lake.journal_versions().get(zone, set()) | ({current} if current else set())
        for vdir, alive in incomplete(lake, zone, keep):
            rows.append(
                _row(zone, vdir.name, "writing" if alive else "orphan", False, _bytes(vdir))
            )
    return rows


def _row(
    zone: str,
    version: str | None,
    state: str,
    current: bool,
    size: int = 0,
    problem: str | None = None,
    **info: Any,
) -> dict[str, Any]:
    row = {
        "zone": zone,
        "version": version,
        "state": state,
        "current": current,
        "published_at": info.get("published_at"),
        "run_id": info.get("run_id"),
        "rows": info.get("rows"),
        "mb": round(size / 2**20, 1),
        "pruned_at": info.get("pruned_at"),
    }
    if problem is not None:
        row["problem"] = problem
    return row


class _PruneLock:
    """One prune at a time per lake (`<lake>/.prune.lock`, non-blocking flock)."""

    def __init__(self, lake: Lake):
        self.fd = os.open(lake.root / ".prune.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise LakeError("another `cobranza lake prune` is running on this lake") from None

    def close(self) -> None:
        os.close(self.fd)


def _writing(lake: Lake) -> Iterable[str]:
    for zone in ZONES:
        for vdir, alive in incomplete(lake, zone):
            if alive:
                yield f"{zone} {vdir.name}"


@dataclass
class PruneResult(Summary):
    """What a prune removed and what it kept, with why."""

    dry_run: bool
    keep: int
    pruned: dict[str, list[str]]  # zone -> versions whose tables were removed
    pruned_versions: int
    freed_mb: float
    kept: dict[str, dict[str, list[str]]]  # zone -> version -> reasons
    orphans_removed: list[str]
    tmp_removed: list[str]
    warnings: list[str]


@dataclass
class TrainingGold:
    """The gold versions behind the registered models, as the model registry tells them.

    `by_gold`: gold version -> labels of the model versions trained on it (always kept);
    `unknown`: registered versions whose gold cannot be told (then every gold is kept), with
    `warning` saying what to do about them.
    """

    by_gold: dict[str, list[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    warning: str | None = None


def prune(
    lake: Lake,
    training_gold: Callable[[], TrainingGold],
    keep: int = 3,
    dry_run: bool = False,
) -> PruneResult:
    """Remove the data of versions no one needs (see the module docstring); returns what it did.

    `training_gold` is asked once the lake is held exclusively (no training can register a model
    meanwhile); `lake` has been `ensure`d (a transaction a dead process left decided is complete).
    """
    lock = _PruneLock(lake)
    warnings: list[str] = []
    try:
        with lake.exclusive("nothing was pruned, try again when it has finished"):
            busy = list(_writing(lake))
            if busy:
                raise LakeError(
                    f"a run is writing into the lake ({', '.join(busy)}); nothing was pruned, try "
                    "again when it has finished"
                )
            current = {zone: lake.current_version(zone) for zone in ZONES}
            if not dry_run and catalog_stale(lake):
                refresh_catalog(lake, attempts=2)
            catalog = catalog_versions(lake)
            if catalog is None and lake.catalog_path.exists():
                raise LakeError(
                    f"cannot tell which versions the views of {lake.catalog_path} read (it was "
                    "never refreshed by this cobranza and cannot be now); nothing was pruned. "
                    "Run `cobranza catalog` once no other client has it open, then prune again"
                )
            records = {zone: lake.versions(zone) for zone in ZONES}
            models = training_gold()
            hold_gold = None
            if models.unknown:
                hold_gold = (
                    "the training gold of model version "
                    + ", ".join(models.unknown)
                    + " is unknown"
                )
                warnings.append(models.warning or hold_gold)
            plan = plan_prune(records, current, keep, models.by_gold, catalog, hold_gold)
            freed = 0
            pruned: dict[str, list[str]] = {}
            for zone in PRUNABLE:
                for version in plan.prune[zone]:
                    size = _bytes(lake.version_dir(zone, version))
                    if not dry_run:
                        _prune_version(lake, zone, version, size)
                    pruned.setdefault(zone, []).append(version)
                    freed += size
                for record in records[zone]:  # leftovers of a prune that was itself interrupted
                    if record.get("pruned_at") and not dry_run:
                        for tdir in _table_dirs(lake, zone, record["version"]):
                            shutil.rmtree(tdir, ignore_errors=True)
            orphans = [] if dry_run else [str(p) for p in clean_orphans(lake)]
            tmp = [] if dry_run else [str(p) for p in lake.clean_tmp()]
            if pruned and not dry_run:
                refresh_catalog(lake)
    finally:
        lock.close()
    for w in warnings:
        log.warning(w)
    return PruneResult(
        dry_run=dry_run,
        keep=keep,
        pruned=pruned,
        pruned_versions=sum(len(v) for v in pruned.values()),
        freed_mb=round(freed / 2**20, 1),
        kept=plan.keep,
        orphans_removed=orphans,
        tmp_removed=tmp,
        warnings=warnings,
    )


def _prune_version(lake: Lake, zone: str, version: str, size: int) -> None:
    """Mark the record first, then delete: an interrupted prune leaves a marked version whose
    remaining files the next prune removes, never an unmarked version with missing tables."""
    record = lake.run_info(zone, version)
    record["pruned_at"] = datetime.now(UTC).isoformat()
    record["pruned_bytes"] = size
    write_json_atomic(lake.version_dir(zone, version) / RUN_FILE, record)
    for tdir in _table_dirs(lake, zone, version):
        shutil.rmtree(tdir, ignore_errors=True)
