"""Version 2's assignment rules: the early-delinquency match, and what the run reports about arms.

`collection_assignments.csv` says, per early-delinquent obligation and cut, which arm the bank's
decision took (ASSIGNED, HOLDOUT, RULE). Its rows are validated like every file, plus one
cross-file rule: a row must match an early-delinquency row (1 <= days_past_due <= 30) of the
accepted `portfolio_cuts` at the same cut, else it is quarantined as "not in early delinquency at
that cut". After every file is written, `report` counts over the raw tables:

- early-delinquency rows at past cuts with no assignment (treated as ASSIGNED downstream); the
  latest cut of the extract is today's decision, not yet taken, and is counted apart;
- contamination: collection actions dated in the horizon (d, d + H] of a HOLDOUT or RULE row.
  They are kept; the count says how far the control group was managed anyway. An action belongs
  to the latest decision before it: once a later cut d' < action date managed the obligation
  (ASSIGNED, or no assignment at a past cut), the action follows that decision, not the
  unmanaged one whose horizon still runs (a monthly cut falls inside a 30-day horizon).

A version-1 extract has no assignment file: every row counts as missing, and the run warns once.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from cobranza.contract import (
    ARMS,
    ASSIGNED_ARM,
    ASSIGNMENTS,
    COLLECTION_ASSIGNMENTS,
    EARLY_DPD_MAX,
    EARLY_DPD_MIN,
    HOLDOUT_ARM,
    RULE_ARM,
)
from cobranza.ingest.rules import quote_literal

NOT_EARLY = "not in early delinquency at that cut"
EARLY_TABLE = "_early_portfolio_cuts"
V1_WARNING = (
    f"no assignment file was given ({COLLECTION_ASSIGNMENTS.csv_name} is a version-2 file and the "
    "extract is version 1): every early-delinquency row is treated as ASSIGNED"
)


def keep_early_delinquency(con: duckdb.DuckDBPyConnection, out_dir: Path) -> None:
    """(obligation_id, cut_date) of the accepted early-delinquency cuts, for the rule above."""
    glob = quote_literal(str(out_dir / "*.parquet"))
    # A plain table of the in-memory database: the assignment file is validated on another cursor.
    con.execute(
        f"CREATE OR REPLACE TABLE {EARLY_TABLE} AS SELECT DISTINCT obligation_id, cut_date "
        f"FROM read_parquet({glob}) "
        f"WHERE days_past_due BETWEEN {EARLY_DPD_MIN} AND {EARLY_DPD_MAX}"
    )


def quarantine_not_early(
    con: duckdb.DuckDBPyConnection, table: str, filename: str, key_text: str
) -> None:
    """Quarantine the assignment rows with no early-delinquency cut to match (key named)."""
    key_label = quote_literal(", ".join(COLLECTION_ASSIGNMENTS.key))
    con.execute(
        f"INSERT INTO quarantine SELECT {quote_literal(filename)}, t._line, {key_label}, "
        f"{key_text}, {quote_literal(NOT_EARLY)} FROM {table} t "
        f"ANTI JOIN {EARLY_TABLE} e ON t.obligation_id = e.obligation_id "
        "AND t.cut_date = e.cut_date "
        "ANTI JOIN _collapsed c ON t._line = c._line "
        "WHERE t.obligation_id IS NOT NULL AND t.cut_date IS NOT NULL"
    )


def report(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, Path],
    version: int,
    filename: str | None,
    horizon_days: int,
) -> dict[str, Any]:
    """Counts of the assignment rules over the written raw tables (folders of Parquet parts)."""

    def src(stem: str) -> str:
        return f"read_parquet({quote_literal(str(tables[stem] / '*.parquet'))})"

    latest: date | None = con.execute(
        f"SELECT max(cut_date) FROM {src('portfolio_cuts')}"
    ).fetchone()[0]
    early = (
        f"SELECT obligation_id, cut_date FROM {src('portfolio_cuts')} "
        f"WHERE days_past_due BETWEEN {EARLY_DPD_MIN} AND {EARLY_DPD_MAX}"
    )
    assigned = src(ASSIGNMENTS) if version >= COLLECTION_ASSIGNMENTS.since else None
    arms = {arm: 0 for arm in ARMS}
    missing = undecided = rows = actions = 0
    if latest is not None:
        joined = (
            f"SELECT e.obligation_id, e.cut_date, a.arm FROM ({early}) e LEFT JOIN {assigned} a "
            "USING (obligation_id, cut_date)"
            if assigned
            else f"SELECT obligation_id, cut_date, CAST(NULL AS VARCHAR) AS arm FROM ({early})"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE _arms AS {joined}")
        for arm, is_latest, n in con.execute(
            "SELECT arm, cut_date = ?, count(*) FROM _arms GROUP BY ALL", [latest]
        ).fetchall():
            if arm is not None:
                arms[arm] += n
            elif is_latest:
                undecided += n
            else:
                missing += n
        rows, actions = _contamination(con, src("collection_actions"), horizon_days, latest)
    return {
        "contract_version": version,
        "file": filename,
        "latest_cut": latest.isoformat() if latest else None,
        "horizon_days": horizon_days,
        "arms": arms,
        "missing": missing,
        "latest_cut_undecided": undecided,
        "contamination": {"rows": rows, "actions": actions},
    }


def _contamination(
    con: duckdb.DuckDBPyConnection, actions: str, horizon_days: int, latest: date
) -> tuple[int, int]:
    """(HOLDOUT or RULE rows with an action in their horizon, such actions) over `_arms`.

    An action dated x counts against the unmanaged row (o, d) when d < x <= d + H and no cut d'
    with d < d' < x managed o (arm ASSIGNED, or none at a past cut: treated as ASSIGNED). An
    action on d' itself comes before the decision at d', so it still counts against d.
    """
    unmanaged = ", ".join(quote_literal(a) for a in (HOLDOUT_ARM, RULE_ARM))
    days = int(horizon_days)
    managed = f"(m.arm = {quote_literal(ASSIGNED_ARM)} OR (m.arm IS NULL AND m.cut_date < ?))"
    rows, n = con.execute(
        "SELECT count(DISTINCT (r.obligation_id, r.cut_date)), count(DISTINCT x.action_id) "
        f"FROM _arms r JOIN (SELECT action_id, obligation_id, CAST(action_ts AS DATE) AS day "
        f"FROM {actions}) x ON x.obligation_id = r.obligation_id "
        f"AND x.day > r.cut_date AND x.day <= r.cut_date + INTERVAL {days} DAY "
        f"WHERE r.arm IN ({unmanaged}) AND NOT EXISTS (SELECT 1 FROM _arms m "
        "WHERE m.obligation_id = r.obligation_id AND m.cut_date > r.cut_date "
        f"AND m.cut_date < x.day AND {managed})",
        [latest],
    ).fetchone()
    return int(rows), int(n)


def warnings(summary: dict[str, Any], actions_name: str) -> list[str]:
    """One line per thing the bank should know: no file, rows without an arm, contamination."""
    out = []
    name = summary["file"] or COLLECTION_ASSIGNMENTS.csv_name
    if summary["file"] is None:
        out.append(V1_WARNING)
    elif summary["missing"]:
        out.append(
            f"{name}: {summary['missing']} early-delinquency row(s) at past cuts have no "
            "assignment; treated as ASSIGNED"
        )
    c = summary["contamination"]
    if c["actions"]:
        out.append(
            f"{actions_name}: {c['actions']} action(s) dated in the "
            f"{summary['horizon_days']}-day horizon of {c['rows']} HOLDOUT or RULE row(s): "
            "contamination of the unmanaged arms, kept"
        )
    return out


def log_line(summary: dict[str, Any]) -> str:
    """The arms in one line for the run's log."""
    arms = ", ".join(f"{arm} {n}" for arm, n in summary["arms"].items())
    c = summary["contamination"]
    return (
        f"assignments (contract version {summary['contract_version']}): {arms}; "
        f"{summary['missing']} without assignment at past cuts (treated as ASSIGNED); "
        f"{summary['latest_cut_undecided']} at the latest cut {summary['latest_cut']} not yet "
        f"decided; contamination: {c['actions']} action(s) on {c['rows']} HOLDOUT or RULE row(s)"
    )
