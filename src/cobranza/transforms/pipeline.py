"""The wiring of the transforms: which table feeds which, and the run that publishes silver then gold.

`SILVER` and `GOLD` are the graph (Kedro nodes / Dagster assets style): each entry names the pure
function and the tables it reads. `run_etl` is the only place with I/O: it reads the current raw
version, writes a silver version, reads it back and writes a gold version, in one
`lake.transaction`: both become current together, and a failure at any step publishes neither.
A raw version from before contract version 2 (no `collection_assignments` table, no
`payments.reversed_ts`) is read in the version-2 shape (`conform_raw`): no assignment, no reversal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import ibis

from cobranza.config import Settings
from cobranza.contract import FILES_BY_STEM
from cobranza.errors import CobranzaError
from cobranza.lake import Lake
from cobranza.lake.keys import pseudonym_key
from cobranza.transforms import schema
from cobranza.transforms import silver as S
from cobranza.transforms.engines import Engine, open_engine
from cobranza.transforms.gold import assemble, cut_ranges, obligation_snapshots, snapshot_parts


class EtlError(CobranzaError):
    """A transform step failed; the message names the step and the table."""


@dataclass(frozen=True)
class Node:
    fn: Callable[..., Any]
    inputs: tuple[str, ...]  # raw tables (and key maps) for silver nodes, silver tables for gold


# The pseudonym maps (bank id -> pseudonym), read by the silver tables that carry an id: each id
# is hashed once for all of them. Kept in the engine for the run, never written (they hold ids).
# Each takes the pseudonym key as `key`.
KEYS: dict[str, Node] = {
    "client_keys": Node(S.client_keys, ("clients", "obligations")),
    "account_keys": Node(S.account_keys, ("debit_mandates", "account_monthly")),
}
SILVER: dict[str, Node] = {
    "clients": Node(S.silver_clients, ("clients", "client_keys")),
    "obligations": Node(S.silver_obligations, ("obligations", "client_keys")),
    "debit_mandates": Node(S.silver_debit_mandates, ("debit_mandates", "account_keys")),
    "installments": Node(S.silver_installments, ("installments",)),
    "payments": Node(S.silver_payments, ("payments",)),
    "debit_attempts": Node(S.silver_debit_attempts, ("debit_attempts", "debit_mandates")),
    "account_monthly": Node(S.silver_account_monthly, ("account_monthly", "account_keys")),
    "portfolio_cuts": Node(S.silver_portfolio_cuts, ("portfolio_cuts",)),
    "cut_calendar": Node(S.silver_cut_calendar, ("portfolio_cuts",)),
    "collection_actions": Node(S.silver_collection_actions, ("collection_actions",)),
    "collection_assignments": Node(S.silver_collection_assignments, ("collection_assignments",)),
}
GOLD: dict[str, Node] = {
    schema.GOLD_TABLE: Node(
        obligation_snapshots,
        (
            "clients",
            "obligations",
            "debit_mandates",
            "payments",
            "debit_attempts",
            "account_monthly",
            "portfolio_cuts",
            "cut_calendar",
            "collection_actions",
            "collection_assignments",
            "installments",
        ),
    )
}
IBIS_TYPES = {
    "string": "string",
    "date": "date",
    "timestamp": "timestamp",
    "decimal": "float64",
    "integer": "int64",
}


def key_maps(raw: dict[str, Any], key: bytes, materialize: Callable = lambda _, e: e) -> dict:
    """The pseudonym maps over the raw tables, each through `materialize` (computed once)."""
    maps = {}
    for name, node in KEYS.items():
        maps[name] = materialize(name, node.fn(*(raw[t] for t in node.inputs), key=key))
    return maps


def silver_expression(name: str, raw: dict[str, Any], keys: dict[str, Any]) -> Any:
    """One silver table as an Ibis expression over the raw tables and the key maps."""
    node, tables = SILVER[name], {**raw, **keys}
    return node.fn(*(tables[t] for t in node.inputs))


def conform_raw(raw: dict[str, Any | None], raw_version: str) -> dict[str, Any]:
    """The raw tables in the current contract's shape, or an error naming what cannot be.

    A table or column that a later contract version added (`since` > 1) and this raw version
    lacks is read as empty: no assignment file means no assignment, no `reversed_ts` means no
    reversal. A version-1 table or column missing is an error, raised before any work.
    """
    anchor = raw["portfolio_cuts"]
    out = {}
    for stem, table in raw.items():
        spec = FILES_BY_STEM[stem]
        if table is None:
            if spec.since <= 1 or anchor is None:
                raise EtlError(
                    f"raw.{stem} (version {raw_version}) is missing; re-ingest the extract with "
                    "`cobranza ingest`"
                )
            table = anchor.filter(ibis.literal(False)).select(
                **{c.name: ibis.null().cast(IBIS_TYPES[c.type]) for c in spec.columns}
            )
        absent = [c for c in spec.columns if c.name not in table.columns]
        missing = [c.name for c in absent if c.since <= 1]
        if missing:
            raise EtlError(
                f"raw.{stem} (version {raw_version}) lacks column(s) {', '.join(missing)}; "
                "re-ingest the extract with `cobranza ingest`"
            )
        if absent:
            table = table.mutate(**{c.name: ibis.null().cast(IBIS_TYPES[c.type]) for c in absent})
        out[stem] = table
    return out


def read_raw(lake: Lake, raw_version: str, engine: Engine) -> dict[str, Any]:
    """Every raw table the silver graph reads, in the current contract's shape."""
    present = set(lake.tables("raw", raw_version))
    raw: dict[str, Any | None] = {}
    for t in sorted({t for n in (*KEYS.values(), *SILVER.values()) for t in n.inputs} - set(KEYS)):
        raw[t] = engine.read(lake.table_dir("raw", t, raw_version)) if t in present else None
    return conform_raw(raw, raw_version)


def _raw_as_of(lake: Lake, raw_version: str, engine: Engine, cuts: Any) -> date:
    info = lake.run_info("raw", raw_version)
    if info.get("as_of"):
        return date.fromisoformat(str(info["as_of"])[:10])
    return _as_date(engine.scalar(cuts.cut_date.max()))


def _as_date(value: Any) -> date:
    """Engines return dates as date, datetime or pandas Timestamp."""
    if value is None:
        raise EtlError("portfolio_cuts is empty: no cut date to build gold from")
    return date.fromisoformat(str(value)[:10])


def _scrub(message: str, key: bytes) -> str:
    """An engine's error without the key or the HMAC pads derived from it (they are in the SQL)."""
    for material in (key.decode("utf-8", errors="replace"), *S.hmac_pads(key)):
        message = message.replace(material, "***")
    return message


def run_etl(settings: Settings, ui: Any = None, spark_session: Any = None) -> dict:
    """Build silver and gold from the current raw version; returns rows and seconds per stage."""
    lake = Lake(settings.lake).ensure()
    raw_version = lake.require_version("raw")
    key = pseudonym_key(settings)
    summary: dict[str, Any] = {"engine": settings.engine, "raw_version": raw_version}
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    stage = "reading raw"
    try:
        t0 = time.perf_counter()
        with open_engine(settings, spark_session=spark_session) as eng:
            seconds["engine_start"] = round(time.perf_counter() - t0, 3)
            raw = read_raw(lake, raw_version, eng)
            as_of = _raw_as_of(lake, raw_version, eng, raw["portfolio_cuts"])
            with lake.transaction() as tx:
                with tx.publish("silver", inputs={"raw": raw_version}) as pub:
                    stage = "silver.keys"
                    with pub.timed("keys"):
                        keys = key_maps(raw, key, eng.materialize)
                    for name in SILVER:
                        stage = f"silver.{name}"
                        if ui is not None:
                            ui.info(f"  silver.{name}")
                        with pub.timed(name):
                            eng.write(silver_expression(name, raw, keys), pub.table_dir(name))
                    for table in keys.values():  # the maps hold the bank's ids: gone once used
                        eng.release(table)
                    pub.meta.update(as_of=as_of.isoformat(), engine=eng.name)
                silver_version = pub.version
                seconds["silver"] = round(sum(pub.timings.values()), 3)

                stage = f"gold.{schema.GOLD_TABLE}"
                silver = {t: eng.read(lake.table_dir("silver", t, silver_version)) for t in SILVER}
                latest_cut = _as_date(eng.scalar(silver["cut_calendar"].cut_date.max()))
                if ui is not None:
                    ui.info(f"  gold.{schema.GOLD_TABLE}")
                with tx.publish("gold", inputs={"silver": silver_version}) as gpub:
                    with gpub.timed(schema.GOLD_TABLE):
                        parts = snapshot_parts(
                            silver,
                            as_of=as_of,
                            latest_cut=latest_cut,
                            horizon_days=settings.horizon_days,
                            materialize=eng.materialize,
                        )
                        ranges = cut_ranges(
                            eng.rows_by(parts.base, schema.CUT_DATE),
                            settings.gold_part_rows or eng.part_rows(),
                        )
                        # one statement when every cut fits, or when there is no row at all (the
                        # empty table is still written, with its schema)
                        pieces = ranges if len(ranges) > 1 else [None]
                        out = gpub.table_dir(schema.GOLD_TABLE)
                        for i, cut_range in enumerate(pieces):
                            if ui is not None and cut_range is not None:
                                ui.info(f"    cuts {cut_range[0]} to {cut_range[1]}")
                            eng.write(assemble(parts, cut_range), out, part=i)
                    counts = _gold_counts(out)
                    gpub.record(schema.GOLD_TABLE, **counts)
                    gpub.meta.update(
                        as_of=as_of.isoformat(),
                        latest_cut=str(latest_cut),
                        horizon_days=settings.horizon_days,
                        engine=eng.name,
                        parts=len(pieces),
                    )
            seconds["gold"] = gpub.timings[schema.GOLD_TABLE]
    except CobranzaError:
        raise
    except Exception as exc:
        first = _scrub(str(exc), key).strip().splitlines()
        raise EtlError(
            f"etl failed at {stage} on {settings.engine}: {type(exc).__name__}: "
            f"{first[0] if first else ''}"
        ) from None
    seconds["total"] = round(time.perf_counter() - t_all, 3)
    silver_rows = {
        t: v["rows"] for t, v in lake.run_info("silver", silver_version)["tables"].items()
    }
    summary.update(
        silver_version=silver_version,
        gold_version=gpub.version,
        as_of=as_of.isoformat(),
        latest_cut=str(latest_cut),
        horizon_days=settings.horizon_days,
        silver_rows=silver_rows,
        gold=counts,
        seconds=seconds,
    )
    return summary


def _gold_counts(table_dir) -> dict[str, int]:
    con = duckdb.connect()
    try:
        rows, eligible, labeled, positives = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE eligible), "
            "count(self_cure_debit), coalesce(sum(self_cure_debit), 0) "
            f"FROM read_parquet('{table_dir}/**/*.parquet')"
        ).fetchone()
    finally:
        con.close()
    return {
        "rows": int(rows),
        "eligible": int(eligible),
        "labeled": int(labeled),
        "positives": int(positives),
    }
