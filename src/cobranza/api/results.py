"""Read side of the results zone: filtered, cursor-paginated scores, one obligation, the summary.

The current `results` version is read from its Parquet files (never through `catalog.duckdb`, which
a writer may hold locked) into an in-process DuckDB database, once per version: the pointer file is
checked on every request (a few microseconds), and a new scoring run is picked up on the next
request. `latest` is the current population; a `cut_date` filter that is not in it falls back to
the `scores` history of every version (the newest version wins for a repeated cut).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cobranza.config import Settings
from cobranza.export import PLAIN, CsvFormat, csv_bytes
from cobranza.labels import distinct_reasons, label
from cobranza.lake import Lake
from cobranza.tables import LATEST, SCORES

N_REASONS = 3
# The per-row estimates of the decision (`decision.estimates`); a results version scored before
# they existed reads them as null.
ESTIMATES = ("p_roll_no_action", "p_roll_action", "roll_loss", "expected_benefit")
MAX_CURSOR_NUMBER = 1e15  # no expected benefit or roll loss in pesos comes near it
# Orders of a page, each ending in obligation_id so it is total (a keyset cursor needs that).
# `risk` is the order in which the policy gives a cut's collection capacity (decision.policy): no
# covering mandate first (no expected benefit: ASSIGN by rule), then the largest expected benefit
# of managing, then the largest roll loss. It is the collections team's calling order; among the
# NO_ASSIGN rows it puts first those closest to being worth managing.
SORTS: dict[str, list[tuple[str, str]]] = {
    "obligation": [("cut_date", "ASC"), ("obligation_id", "ASC")],
    "risk": [
        ("cut_date", "ASC"),
        (f"coalesce(expected_benefit, {MAX_CURSOR_NUMBER:.0f})", "DESC"),
        ("coalesce(roll_loss, 0.0)", "DESC"),
        ("obligation_id", "ASC"),
    ],
}

CALL_ORDER = "call_order"


def call_order_sql(source: str) -> str:
    """`source` with `call_order`: each ASSIGN obligation's place in its cut's calling order.

    1 is the first to call. It is the `risk` order among the cut's ASSIGN rows, whatever filter a
    page applies, so an agent who filters by product still sees the day's priority numbers.
    """
    keys = ", ".join(f"{e} {d}" for e, d in SORTS["risk"][1:])
    return (
        f"SELECT *, CASE WHEN decision = 'ASSIGN' THEN row_number() OVER (PARTITION BY cut_date, "
        f"decision = 'ASSIGN' ORDER BY {keys}) END AS {CALL_ORDER} FROM {source}"
    )


class NoResults(Exception):
    """The lake has no published results version yet."""


class BadCursor(ValueError):
    """A cursor that this service did not issue, or that belongs to an older results version."""


@dataclass
class Filters:
    decision: str | None = None
    product: str | None = None
    segment: str | None = None
    eligible: bool | None = None
    min_probability: float | None = None
    max_probability: float | None = None
    min_days_past_due: int | None = None
    max_days_past_due: int | None = None
    cut_date: date | None = None


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value


def row_view(row: dict[str, Any]) -> dict[str, Any]:
    """A results row as the API shows it: reasons grouped (a repeated one once), non-finite
    numbers as null."""
    out = {k: _clean(v) for k, v in row.items() if not k.startswith("reason_")}
    reasons = []
    for i in range(1, N_REASONS + 1):
        code = row.get(f"reason_{i}_code")
        if not isinstance(code, str) or not code:
            continue
        reasons.append(
            {
                "rank": i,
                "code": code,
                "text": row.get(f"reason_{i}_text"),
                "contribution": _clean(row.get(f"reason_{i}_contribution")),
            }
        )
    out["reasons"] = distinct_reasons(reasons)
    return out


def encode_cursor(version: str, sort: str, key: list[Any]) -> str:
    """The last row's sort key (`SORTS[sort]` order), with the version and the sort it belongs to."""
    values = [str(v) if isinstance(v, date) else v for v in key]
    raw = json.dumps([version, sort, values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, version: str, sort: str = "obligation") -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        v, cursor_sort, key = json.loads(raw.decode("utf-8"))
        if not (isinstance(v, str) and isinstance(key, list) and cursor_sort in SORTS):
            raise ValueError
        if len(key) != len(SORTS[cursor_sort]):
            raise ValueError
        key[0] = date.fromisoformat(key[0])
        if not isinstance(key[-1], str):
            raise ValueError
        # middle keys are an expected benefit and a roll loss: finite floats within a sane range
        # (a forged 10**40 would overflow DuckDB's integer parameter and become a 500)
        for i in range(1, len(key) - 1):
            value = key[i]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError
            value = float(value)  # OverflowError (a ValueError's cousin) for a huge int
            if not math.isfinite(value) or abs(value) > MAX_CURSOR_NUMBER:
                raise ValueError
            key[i] = value
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("cursor is not valid; use the next_cursor of a previous page") from exc
    if v != version:
        raise BadCursor(
            "the results changed since this cursor was issued (new scoring run); start again "
            "without a cursor"
        )
    if cursor_sort != sort:
        raise BadCursor(f"this cursor belongs to sort={cursor_sort}, not sort={sort}")
    return key


def _after(columns: list[tuple[str, str]], key: list[Any]) -> tuple[str, list[Any]]:
    """Keyset condition: rows strictly after `key` in the order `columns` (mixed directions)."""
    expr, _dir = columns[-1]
    sql, args = f"{expr} {'>' if _dir == 'ASC' else '<'} ?", [key[-1]]
    for (expr, direction), value in zip(reversed(columns[:-1]), reversed(key[:-1]), strict=True):
        op = ">" if direction == "ASC" else "<"
        sql = f"({expr} {op} ? OR ({expr} = ? AND {sql}))"
        args = [value, value, *args]
    return sql, args


class _Snapshot:
    """One results version loaded in memory: a DuckDB table plus a dict index by obligation."""

    def __init__(self, lake: Lake, version: str):
        self.version = version
        self.info = lake.run_info("results", version)
        table = pq.read_table(lake.table_dir("results", LATEST, version))
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET threads = 1")
        self.con.register("latest_arrow", table)
        base = "latest_arrow"
        missing = [c for c in ESTIMATES if c not in table.column_names]
        if missing:  # scored before the estimates existed: null, so every query still runs
            nulls = ", ".join(f"CAST(NULL AS DOUBLE) AS {c}" for c in missing)
            base = f"(SELECT *, {nulls} FROM latest_arrow)"
        source = (
            f"SELECT * FROM {base}" if CALL_ORDER in table.column_names else call_order_sql(base)
        )
        self.con.execute(f"CREATE TABLE latest AS {source}")
        self.con.unregister("latest_arrow")
        table = self.con.execute("SELECT * FROM latest").arrow().read_all()
        self.columns = table.column_names
        self.schema = table.schema
        self.by_obligation: dict[str, dict[str, Any]] = {}
        for row in table.to_pylist():  # newest cut wins when an obligation appears twice
            prev = self.by_obligation.get(row["obligation_id"])
            if prev is None or row["cut_date"] >= prev["cut_date"]:
                self.by_obligation[row["obligation_id"]] = row
        self.cut_dates = {
            r[0] for r in self.con.execute("SELECT DISTINCT cut_date FROM latest").fetchall()
        }
        history = [
            lake.version_dir("results", v["version"]) / SCORES
            for v in lake.versions("results")
            if SCORES in v.get("history_tables", [])
        ]
        self.history_globs = [str(d / "**" / "*.parquet") for d in history if d.is_dir()]
        self.history_missing: list[str] = []  # estimate columns no history file has
        if self.history_globs:
            found = {
                r[0]
                for r in self.con.execute(
                    "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)",
                    [self.history_globs],
                ).fetchall()
            }
            self.history_missing = [c for c in ESTIMATES if c not in found]
        self.cache: dict[str, Any] = {}  # figures computed once per version (e.g. by cut)


class ResultsReader:
    def __init__(self, settings: Settings):
        self.lake = Lake(settings.lake)
        self._snap: _Snapshot | None = None
        self._lock = threading.Lock()

    def snapshot(self) -> _Snapshot:
        version = self.lake.current_version("results")
        if version is None:
            raise NoResults("no results published yet; run a score (or pipeline) job first")
        snap = self._snap
        if snap is not None and snap.version == version:
            return snap
        with self._lock:
            if self._snap is None or self._snap.version != version:
                self._snap = _Snapshot(self.lake, version)
            return self._snap

    # -- one obligation --
    def one(self, obligation_id: str, cut_date: date | None = None) -> dict[str, Any] | None:
        snap = self.snapshot()
        if cut_date is None:
            row = snap.by_obligation.get(obligation_id)
            return row_view(row) if row else None
        rows, _ = self.page(Filters(cut_date=cut_date), limit=1, obligation_id=obligation_id)
        return row_view(rows[0]) if rows else None

    # -- pages --
    def _source(self, snap: _Snapshot, f: Filters) -> tuple[str, list[Any]]:
        if f.cut_date is None or f.cut_date in snap.cut_dates or not snap.history_globs:
            return "latest", []
        nulls = "".join(f", CAST(NULL AS DOUBLE) AS {c}" for c in snap.history_missing)
        src = (
            f"(SELECT * EXCLUDE (filename){nulls} FROM read_parquet(?, union_by_name = true, "
            "filename = true) WHERE cut_date = ? QUALIFY row_number() OVER (PARTITION BY "
            "obligation_id ORDER BY filename DESC) = 1)"
        )
        return f"({call_order_sql(src)})", [list(snap.history_globs), f.cut_date]

    @staticmethod
    def _where(f: Filters, obligation_id: str | None = None) -> tuple[list[str], list[Any]]:
        where, args = [], []
        for col in ("decision", "product", "segment", "eligible", "cut_date"):
            value = getattr(f, col)
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        for col, op, value in (
            ("probability", ">=", f.min_probability),
            ("probability", "<=", f.max_probability),
            ("days_past_due", ">=", f.min_days_past_due),
            ("days_past_due", "<=", f.max_days_past_due),
        ):
            if value is not None:
                where.append(f"{col} {op} ?")
                args.append(value)
        if obligation_id is not None:
            where.append("obligation_id = ?")
            args.append(obligation_id)
        return where, args

    def total(self, f: Filters) -> int:
        """How many rows the filters select, over every page (the filtered total people see)."""
        snap = self.snapshot()
        src, params = self._source(snap, f)
        where, args = self._where(f)
        sql = f"SELECT count(*) FROM {src}" + (" WHERE " + " AND ".join(where) if where else "")
        cur = snap.con.cursor()
        try:
            return int(cur.execute(sql, [*params, *args]).fetchone()[0])
        finally:
            cur.close()

    def page(
        self,
        f: Filters,
        limit: int = 100,
        cursor: str | None = None,
        obligation_id: str | None = None,
        sort: str = "obligation",
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Rows in the order `SORTS[sort]` after the cursor, and the next cursor."""
        columns = SORTS[sort]
        snap = self.snapshot()
        src, params = self._source(snap, f)
        where, args = self._where(f, obligation_id)
        if cursor:
            condition, values = _after(columns, decode_cursor(cursor, snap.version, sort))
            where.append(condition)
            args += values
        keys = ", ".join(f"{expr} AS _key{i}" for i, (expr, _d) in enumerate(columns))
        sql = f"SELECT *, {keys} FROM {src}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + ", ".join(f"{e} {d}" for e, d in columns) + " LIMIT ?"
        cur = snap.con.cursor()
        try:
            res = cur.execute(sql, [*params, *args, limit + 1])
            names = [d[0] for d in res.description]
            rows = [dict(zip(names, r, strict=True)) for r in res.fetchall()]
        finally:
            cur.close()
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            key = [last[f"_key{i}"] for i in range(len(columns))]
            next_cursor = encode_cursor(snap.version, sort, key)
        for row in rows:
            for i in range(len(columns)):
                del row[f"_key{i}"]
        return rows, next_cursor

    # -- summary --
    def summary(self, costs: Any) -> dict[str, Any]:
        """Population, decisions and the expected savings of this run against assigning everyone.

        The expected saving of one NO_ASSIGN obligation is `-expected_benefit`: the action not
        paid minus the rolls management would have prevented, valued at the row's roll loss
        (`decision.loss`), as the run computed it under its policy's costs. Those costs are shown
        (today's settings for what a run did not record).
        """
        snap = self.snapshot()
        cur = snap.con.cursor()
        try:
            elig = "eligible" if "eligible" in snap.columns else "probability IS NOT NULL"
            held = "arm = 'HOLDOUT'" if "arm" in snap.columns else "false"
            routed = "arm = 'CHALLENGER'" if "arm" in snap.columns else "false"
            policy = snap.info.get("policy") or {}
            holdout_cost = holdout_cost_sql(held, bool(policy.get("effect_identified", True)))
            total = cur.execute(
                f"SELECT count(*), count(*) FILTER (WHERE {elig}), "
                "count(*) FILTER (WHERE decision = 'ASSIGN'), "
                "count(*) FILTER (WHERE decision = 'NO_ASSIGN'), "
                f"{SAVING}, avg(probability), "
                "coalesce(sum(amount_past_due), 0), min(cut_date), max(cut_date), "
                "count(*) FILTER (WHERE capacity_limited), avg(p_roll_no_action), "
                f"avg(p_roll_action), count(*) FILTER (WHERE {held}), "
                f"count(*) FILTER (WHERE {routed}), {holdout_cost} FROM latest"
            ).fetchone()
            by = {}
            for dim in ("product", "segment"):
                by[dim] = [
                    {
                        dim: r[0],
                        "population": r[1],
                        "assign": r[2],
                        "no_assign": r[3],
                        "expected_savings": _money(r[4]),
                    }
                    for r in cur.execute(
                        f"SELECT {dim}, count(*), count(*) FILTER (WHERE decision = 'ASSIGN'), "
                        f"count(*) FILTER (WHERE decision = 'NO_ASSIGN'), {SAVING} "
                        "FROM latest GROUP BY 1 ORDER BY 1 NULLS LAST"
                    ).fetchall()
                ]
        finally:
            cur.close()
        return {
            "results_version": snap.version,
            "scoring_run_id": snap.info.get("scoring_run_id", snap.info.get("run_id")),
            "model_version": snap.info.get("model_version"),
            "cut_date_min": _clean(total[7]),
            "cut_date_max": _clean(total[8]),
            "published_at": snap.info.get("published_at"),
            "population": total[0],
            "eligible": total[1],
            "decisions": {"ASSIGN": total[2], "NO_ASSIGN": total[3]},
            "capacity_limited": total[9],
            "mean_probability": _rate(total[5]),
            "mean_p_roll_no_action": _rate(total[10]),
            "mean_p_roll_action": _rate(total[11]),
            "holdout": total[12],
            "challenger": total[13],
            "challenger_version": (snap.info.get("experiment") or {}).get("challenger_version"),
            "amount_past_due": round(float(total[6]), 2),
            "expected_savings": _money(total[4]),
            **savings_split(_money(total[4]), _money(total[14])),
            "costs": run_costs(snap.info.get("policy") or {}, costs),
            "by_product": by["product"],
            "by_segment": by["segment"],
        }

    # -- decisions by cut --
    def cuts(self) -> list[dict[str, Any]]:
        """Decisions and expected savings per cut over the scores history, computed once per
        results version: the LAST scoring run of each cut (a re-scored cut replaces the earlier
        run, as in `bi.fact_decisions`); each row's expected benefit is the one its run computed
        under its policy's costs."""
        snap = self.snapshot()
        cached = snap.cache.get("cuts")
        if cached is not None:
            return cached
        rows = []
        if snap.history_globs:
            rows = self._cuts(snap)
        snap.cache["cuts"] = rows
        return rows

    def _cuts(self, snap: _Snapshot) -> list[dict[str, Any]]:
        nulls = "".join(f", CAST(NULL AS DOUBLE) AS {c}" for c in snap.history_missing)
        sql = f"""
            WITH rows AS (
                SELECT *{nulls},
                       regexp_extract(filename, '/versions/([^/]+)/{SCORES}/', 1) AS version
                FROM read_parquet(?, union_by_name = true, filename = true)
                QUALIFY row_number() OVER (
                    PARTITION BY obligation_id, cut_date ORDER BY filename DESC) = 1
            )
            SELECT cut_date, count(*), count(*) FILTER (WHERE decision = 'ASSIGN'),
                   count(*) FILTER (WHERE decision = 'NO_ASSIGN'), avg(probability),
                   {SAVING}, max(version), any_value(model_version)
            FROM rows GROUP BY cut_date ORDER BY cut_date
        """
        cur = snap.con.cursor()
        try:
            found = cur.execute(sql, [list(snap.history_globs)]).fetchall()
        finally:
            cur.close()
        return [
            {
                "cut_date": _clean(r[0]),
                "population": r[1],
                "assign": r[2],
                "no_assign": r[3],
                "mean_probability": _rate(r[4]),
                "expected_savings": _money(r[5]),
                "results_version": r[6],
                "model_version": None if r[7] is None else str(r[7]),
                "is_current": r[0] in snap.cut_dates,
            }
            for r in found
        ]


# The expected savings of a set of rows against assigning everyone: the sum of -expected_benefit
# over its NO_ASSIGN rows; null when a NO_ASSIGN row has no expected benefit (scored before the
# estimates existed), rather than a sum that leaves rows out.
SAVING = (
    "CASE WHEN count(*) FILTER (WHERE decision = 'NO_ASSIGN' AND expected_benefit IS NULL) > 0 "
    "THEN NULL ELSE coalesce(sum(-expected_benefit) FILTER (WHERE decision = 'NO_ASSIGN'), 0) END"
)


def holdout_cost_sql(held: str, effect_identified: bool) -> str:
    """The expected cost of leaving the holdout unmanaged (`decision.savings`): the expected
    benefit of managing summed over the holdout rows the run's policy would have ASSIGNed, i.e.
    those where managing pays, or all of them when the effect is not identified
    (`decision.policy`); null under the same condition as `SAVING`."""
    assigns = "expected_benefit >= 0" if effect_identified else "true"
    return (
        "CASE WHEN count(*) FILTER (WHERE decision = 'NO_ASSIGN' AND expected_benefit IS NULL) > 0 "
        f"THEN NULL ELSE coalesce(sum(expected_benefit) FILTER (WHERE {held} AND {assigns}), 0) "
        "END"
    )


def savings_split(net: float | None, holdout_cost: float | None) -> dict[str, float | None]:
    """The net expected savings' two parts: net = without_holdout - holdout_cost."""
    return {
        "expected_savings_without_holdout": None
        if net is None or holdout_cost is None
        else round(net + holdout_cost, 2),
        "expected_holdout_cost": holdout_cost,
    }


def _money(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _rate(value: Any) -> float | None:
    return None if value is None else _clean(round(float(value), 6))


def run_costs(policy: dict[str, Any], costs: Any) -> dict[str, Any]:
    """The costs a run decided under (its logged policy), today's settings for any it lacks."""
    steps = policy.get("provision_step")
    return {
        "collection_action": float(policy.get("collection_action", costs.collection_action)),
        "later_collection_cost": float(
            policy.get("later_collection_cost", costs.later_collection_cost)
        ),
        "provision_step": {
            str(k): float(v)
            for k, v in (costs.provision_step if steps is None else dict(steps)).items()
        },
        "default_provision_step": float(
            policy.get("default_provision_step", costs.default_provision_step)
        ),
        "capacity": policy.get("capacity", costs.daily_capacity),
    }


# Rounding of the machine CSV (codes, English column names): enough for any analysis, no 17 digits.
CSV_DIGITS = {
    "probability": 6,
    "p_roll_no_action": 6,
    "p_roll_action": 6,
    "roll_loss": 2,
    "expected_benefit": 2,
    "amount_past_due": 2,
    **{f"reason_{i}_contribution": 6 for i in range(1, N_REASONS + 1)},
}
# The CSV for people (`lang`): its columns, their header in Spanish and English, and the digits of
# the numbers; codes become words (cobranza.labels), the probability a percentage, reasons once.
PEOPLE_COLUMNS: list[tuple[str, str, str, int | None]] = [
    (CALL_ORDER, "Orden de llamada", "Call order", None),
    ("obligation_id", "Obligación", "Obligation", None),
    ("cut_date", "Corte", "Cut date", None),
    ("client_key", "Cliente (seudónimo)", "Client (pseudonym)", None),
    ("product", "Producto", "Product", None),
    ("segment", "Segmento", "Segment", None),
    ("days_past_due", "Días de mora", "Days past due", None),
    ("amount_past_due", "Monto vencido (COP)", "Amount past due (COP)", 0),
    ("eligible", "Débito automático", "Automatic debit", None),
    ("probability", "Probabilidad de autocura (%)", "Self-cure probability (%)", 1),
    ("decision", "Decisión", "Decision", None),
    (
        "p_roll_no_action",
        "Riesgo de rodar a 31+ sin gestión (%)",
        "Roll risk to 31+ unmanaged (%)",
        1,
    ),
    ("p_roll_action", "Riesgo de rodar a 31+ con gestión (%)", "Roll risk to 31+ managed (%)", 1),
    ("roll_loss", "Pérdida si rueda (COP)", "Loss if it rolls (COP)", 0),
    (
        "expected_benefit",
        "Beneficio esperado de gestionar (COP)",
        "Expected benefit of managing (COP)",
        0,
    ),
    *((f"reason_{i}", f"Razón {i}", f"Reason {i}", None) for i in range(1, N_REASONS + 1)),
    ("arm", "Grupo", "Group", None),
    ("model_version", "Modelo", "Model", None),
]
LABELLED = {"product", "segment", "decision", "eligible", "arm"}
PERCENT = {"probability", "p_roll_no_action", "p_roll_action"}


def to_csv(
    rows: list[dict[str, Any]],
    columns: list[str],
    fmt: CsvFormat = PLAIN,
    lang: str | None = None,
) -> bytes:
    """A page as CSV: the stored columns and codes, or with `lang` the people's table."""
    if lang is None:
        values = ([row.get(c) for c in columns] for row in rows)
        return csv_bytes(columns, values, fmt, CSV_DIGITS)
    keep = [c for c in PEOPLE_COLUMNS if c[0] != "arm" or "arm" in columns]
    header = [es if lang == "es" else en for _, es, en, _d in keep]
    digits = {h: d for h, (_, _es, _en, d) in zip(header, keep, strict=True) if d is not None}
    return csv_bytes(header, (_people_row(r, keep, lang) for r in rows), fmt, digits)


def _people_row(row: dict[str, Any], keep: list, lang: str) -> list[Any]:
    reasons = [r.get("text") or r["code"] for r in row_view(row)["reasons"]]
    out = []
    for key, *_ in keep:
        if key.startswith("reason_"):
            i = int(key.rsplit("_", 1)[1]) - 1
            out.append(reasons[i] if i < len(reasons) else None)
        elif key in LABELLED:
            out.append(label(key, row.get(key), lang))
        elif key in PERCENT:
            p = _clean(row.get(key))
            out.append(None if p is None else 100 * p)
        else:
            out.append(_clean(row.get(key)))
    return out


def to_parquet(rows: list[dict[str, Any]], columns: list[str], schema: pa.Schema | None) -> bytes:
    columns = [c for c in columns if schema is None or c in schema.names]
    table = pa.Table.from_pylist(
        [{c: r.get(c) for c in columns} for r in rows],
        schema=pa.schema([schema.field(c) for c in columns]) if schema is not None else None,
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()
