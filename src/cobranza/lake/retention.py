"""Retention of lake versions: what `cobranza lake versions` lists and `cobranza lake prune` removes.

Every run publishes a new version and nothing is overwritten, so the lake only grows (one raw
version of 1M clients x 24 months is several GB). Pruning removes the table data of old versions
of raw, silver and gold and keeps their `_run.json`, marked `pruned_at`, so
`ml_metadata.lake_runs` still lists every version ever published. Always kept:

- the current version of each zone and the `keep` newest complete versions;
- the lineage of every kept version (the silver a gold was built from, the raw behind a silver);
- the gold version every registered model was trained on (its `gold_version` tag), so the data
  behind any model in the registry can be read again;
- the whole results zone: its `scores` tables are the history of decisions (what was decided on
  which obligation, when, by which model and why), which the bank keeps.

Folders of runs that died before publishing are removed once no process holds their writer lock.
Pruning refuses to start while a run is writing into the lake, since that run may be reading a
version that would otherwise go.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cobranza.lake.store import RUN_FILE, ZONES, Lake, LakeError, _write_json_atomic

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
) -> Plan:
    """Decide from the versions' `_run.json` records (oldest first per zone) what to prune.

    `model_gold` maps a gold version to the registered model versions trained on it.
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
        hold("gold", version, "trained model version " + ", ".join(sorted(models, key=int)))
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


def list_versions(lake: Lake) -> list[dict[str, Any]]:
    """Every version folder of every zone: complete, pruned, being written or orphaned."""
    rows = []
    for zone in ZONES:
        current = lake.current_version(zone)
        for record in lake.versions(zone):
            version = record["version"]
            tables = record.get("tables") or {}
            rows.append(
                {
                    "zone": zone,
                    "version": version,
                    "state": "pruned" if record.get("pruned_at") else "complete",
                    "current": version == current,
                    "published_at": record.get("published_at"),
                    "run_id": record.get("run_id"),
                    "rows": sum(int(t.get("rows") or 0) for t in tables.values()),
                    "mb": round(_bytes(lake.version_dir(zone, version)) / 2**20, 1),
                    "pruned_at": record.get("pruned_at"),
                }
            )
        for vdir, alive in lake.incomplete(zone):
            rows.append(
                {
                    "zone": zone,
                    "version": vdir.name,
                    "state": "writing" if alive else "orphan",
                    "current": False,
                    "published_at": None,
                    "run_id": None,
                    "rows": None,
                    "mb": round(_bytes(vdir) / 2**20, 1),
                    "pruned_at": None,
                }
            )
    return rows


def _model_gold(settings: Any) -> dict[str, list[str]]:
    """gold version -> registered model versions trained on it, from the registry's tags."""
    from cobranza.ml.registry import list_models

    try:
        models = list_models(settings)
    except Exception as exc:
        raise LakeError(
            "cannot read the model registry, so cannot tell which gold versions trained a model; "
            f"nothing was pruned ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    out: dict[str, list[str]] = {}
    for m in models:
        if m.get("gold_version"):
            out.setdefault(m["gold_version"], []).append(str(m["version"]))
    return out


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
        for vdir, alive in lake.incomplete(zone):
            if alive:
                yield f"{zone} {vdir.name}"


def prune(settings: Any, keep: int = 3, dry_run: bool = False) -> dict[str, Any]:
    """Remove the data of versions no one needs (see the module docstring); returns what it did."""
    lake = Lake(settings.lake).ensure()
    lock = _PruneLock(lake)
    try:
        busy = list(_writing(lake))
        if busy:
            raise LakeError(
                f"a run is writing into the lake ({', '.join(busy)}); nothing was pruned, try "
                "again when it has finished"
            )
        records = {zone: lake.versions(zone) for zone in ZONES}
        current = {zone: lake.current_version(zone) for zone in ZONES}
        plan = plan_prune(records, current, keep, _model_gold(settings))
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
        orphans = [] if dry_run else [str(p) for p in lake.clean_orphans()]
    finally:
        lock.close()
    if pruned and not dry_run:
        from cobranza.lake.catalog import refresh_catalog

        refresh_catalog(lake)
    return {
        "dry_run": dry_run,
        "keep": keep,
        "pruned": pruned,
        "pruned_versions": sum(len(v) for v in pruned.values()),
        "freed_mb": round(freed / 2**20, 1),
        "kept": plan.keep,
        "orphans_removed": orphans,
    }


def _prune_version(lake: Lake, zone: str, version: str, size: int) -> None:
    """Mark the record first, then delete: an interrupted prune leaves a marked version whose
    remaining files the next prune removes, never an unmarked version with missing tables."""
    record = lake.run_info(zone, version)
    record["pruned_at"] = datetime.now(UTC).isoformat()
    record["pruned_bytes"] = size
    _write_json_atomic(lake.version_dir(zone, version) / RUN_FILE, record)
    for tdir in _table_dirs(lake, zone, version):
        shutil.rmtree(tdir, ignore_errors=True)
