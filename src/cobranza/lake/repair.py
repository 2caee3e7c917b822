"""Repairs by hand: point a zone at one of its complete versions (`cobranza lake use`), recorded.

The repair for a broken or lost `CURRENT` (and a way back to an older version). The move takes the
commit lock like any publication, is a row of `ml_metadata.lake_pointer_events` (who, why, from
which version) and warns when gold and silver no longer come from each other.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from cobranza.lake.fs import write_json_atomic
from cobranza.lake.layout import POINTER, LakeError, is_version_name, metadata_stamp
from cobranza.lake.store import Lake

log = logging.getLogger(__name__)


def use_version(
    lake: Lake, zone: str, version: str, who: str, reason: str | None = None
) -> dict[str, Any]:
    """Point a zone at one of its complete, unpruned versions, by hand; recorded.

    The repair for a broken or lost current version (and a way back to an older one). Each
    move is a row of `ml_metadata.lake_pointer_events` (who, why, from which version).
    """
    vroot = lake.zone_dir(zone) / "versions"
    if not is_version_name(version) or not (vroot / version).is_dir():
        raise LakeError(
            f"the {zone} zone has no version {version!r} (no folder {vroot / version}); "
            f"`cobranza lake versions --zone {zone}` lists them"
        )
    record = lake.run_info(zone, version)
    if record.get("pruned_at"):
        raise LakeError(
            f"{zone} version {version} was pruned at {record['pruned_at']}: its tables are "
            f"gone; choose a complete version (`cobranza lake versions --zone {zone}`)"
        )
    missing = [t for t in record.get("tables") or {} if not (vroot / version / t).is_dir()]
    if missing:
        raise LakeError(
            f"{zone} version {version} lacks the folder of table(s) {', '.join(missing)}; "
            f"choose a complete version (`cobranza lake versions --zone {zone}`)"
        )
    at = datetime.now(UTC).isoformat()
    with lake.committing():
        try:
            previous = lake.current_version(zone)
        except LakeError:
            previous = None  # the broken pointer this repairs
        write_json_atomic(
            lake.zone_dir(zone) / POINTER,
            {
                "version": version,
                "run_id": record.get("run_id"),
                "published_at": record.get("published_at"),
                "set_by": who,
                "set_at": at,
                "set_reason": reason,
                "previous_version": previous,
            },
        )
    event = {
        "at": at,
        "zone": zone,
        "version": version,
        "previous_version": previous,
        "who": who,
        "reason": reason,
    }
    lake.write_metadata(
        "lake_pointer_events",
        [event],
        f"{metadata_stamp(at)}-{zone}",
    )
    warnings = lineage_warnings(lake, zone, version, record)
    for w in warnings:
        log.warning(w)
    return {**event, "catalog_refreshed": lake.after_commit(), "warnings": warnings}


def lineage_warnings(lake: Lake, zone: str, version: str, record: dict[str, Any]) -> list[str]:
    """Whether gold and silver still come from each other after pointing `zone` at `version`."""
    try:
        if zone == "gold":
            built_from = (record.get("inputs") or {}).get("silver")
            silver = lake.current_version("silver")
            if built_from != silver:
                return [
                    f"gold {version} was built from silver {built_from}, but the current "
                    f"silver is {silver}; point silver at it too (`cobranza lake use silver "
                    f"{built_from}`) or run `cobranza etl`"
                ]
        if zone == "silver":
            gold = lake.current_version("gold")
            if gold is not None:
                built_from = (lake.run_info("gold", gold).get("inputs") or {}).get("silver")
                if built_from != version:
                    return [
                        f"the current gold {gold} was built from silver {built_from}, not "
                        f"{version}; point gold at a version built from it (`cobranza lake "
                        "use gold VERSION`) or run `cobranza etl`"
                    ]
    except LakeError as exc:
        return [f"could not check the lineage of gold and silver: {exc}"]
    return []
