"""The `bi` schema of the DuckDB catalog: star-schema views Power BI (ODBC) and other BI tools read.

Owns the SQL of every BI view. `bi_views(lake)` returns `{name: select_sql}` for the views whose
sources exist in the lake as it is now (no results yet: no decision facts), in dependency order;
`bi_statements(lake)` turns them into the catalog's statements (`refresh_catalog` runs them in its
transaction after the zone views). No personal data: clients appear as `client_key` only.

- `scoring_runs`: one row per published results version (the costs of its policy: collection
  action, later collection cost, provision steps; capacity; and `scored_period`: whether the cut
  was in the model's training months, its out-of-time months or after them; realized figures of
  a "training" cut are in-sample).
- `fact_decisions`: one row per (obligation_id, cut_date): the decision of the LAST scoring run of
  that cut (a re-scored cut supersedes the earlier run), with days-past-due band, the roll risks
  without and with management, the roll loss, the expected benefit of managing, the provision
  step of the row's product, reason codes (a reason repeating an earlier one of its row left
  empty), the experiment's `arm` (CHAMPION, CHALLENGER, or HOLDOUT: the control group, NO_ASSIGN
  and not to contact) and the expected saving against assigning (`-expected_benefit` of a
  NO_ASSIGN row, as in `GET /v1/summary`).
- `fact_outcomes`: the decisions whose horizon has closed, joined to gold's realized
  `self_cure_debit`, `cure_any` and `roll_31_plus`: what happened (`outcome`: rolled to 31+, cured
  by the debit, cured otherwise, not cured and not rolled) and the realized saving (a NO_ASSIGN
  row: the action not paid minus its realized roll beyond what management would have left,
  valued at the roll loss, as `GET /v1/monitoring` values it).
- `dim_date`, `dim_product`, `dim_segment`, `dim_decision`, `dim_arm`, `dim_outcome`: conformed
  dimensions, each code with its words in Spanish (`*_label`) and English (`*_label_en`) from
  `cobranza.labels`; `dim_arm`'s codes are `decision.experiment`'s scoring arms.
- `model_performance`: metrics per model version and data part (long), with the champion flag.
- `savings`: the business impact figures of `cobranza impact` (ml_metadata.impact): expected
  savings, and with the simulator's truth the true savings and shares of the oracle's captured by
  the policy, the naive and the no-model rules (null without the truth).
- `monitoring_runs`, `monitoring_drift`, `monitoring_performance`: every `cobranza monitor` run, its
  overall status (the monitor's rule), PSI and second test per feature and for the score, and the
  realized performance of closed scoring runs.
- `quarantine`: the rows the current ingest refused, by file, line, column and reason, WITHOUT the
  refused value (it may be a name or a document number): only whether there was one and whether
  the column is personal data in the contract; digit runs and e-mails in a reason are masked.
  Read from a copy in the metadata area written at each refresh (`bi_snapshots`): no `bi` view
  reads the raw zone, which a BI account may not be allowed to read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cobranza.decision.experiment import CHAMPION, SCORING_ARMS
from cobranza.labels import codes, label
from cobranza.lake.store import Lake
from cobranza.sql import literal, masked
from cobranza.tables import GOLD_TABLE, SCORES

SCHEMA = "bi"

# Days-past-due bands of early delinquency, as the collections teams read them.
DPD_BANDS = ((1, 5), (6, 10), (11, 15), (16, 30))


def _distinct_reasons() -> str:
    """Reasons 2 and 3 left empty when they repeat an earlier one of the row (same code or same
    words), as the API lists a reason once (`cobranza.labels.distinct_reasons`)."""
    out = []
    for i in (2, 3):
        earlier = " OR ".join(
            f"reason_{i}_code = reason_{j}_code OR reason_{i}_text = reason_{j}_text"
            for j in range(1, i)
        )
        for part in ("code", "text", "contribution"):
            out.append(
                f"CASE WHEN coalesce({earlier}, FALSE) THEN NULL ELSE reason_{i}_{part} END "
                f"AS reason_{i}_{part}"
            )
    return ",\n       ".join(out)


def _dpd_band(column: str = "days_past_due") -> str:
    whens = " ".join(
        f"WHEN {column} BETWEEN {lo} AND {hi} THEN '{lo:02d}-{hi:02d}'" for lo, hi in DPD_BANDS
    )
    return f"CASE {whens} ELSE 'other' END"


SCORES_COLUMNS = {
    "obligation_id", "cut_date", "client_key", "product", "segment", "days_past_due",
    "amount_past_due", "eligible", "probability", "decision", "capacity_limited",
    "p_roll_no_action", "p_roll_action", "roll_loss", "expected_benefit",
    "model_version", "scoring_run_id",
    *(f"reason_{i}_{part}" for i in (1, 2, 3) for part in ("code", "text", "contribution")),
}  # fmt: skip
GOLD_COLUMNS = {"obligation_id", "cut_date", "product", "segment", "self_cure_debit"}
ROLL = "roll_31_plus"  # gold's realized roll; a gold without it gives null realized savings
CURE_ANY = "cure_any"  # gold's cure by any channel, which tells a cure otherwise from no cure
MONITORING_DRIFT_COLUMNS = {
    "monitoring_run_id",
    "gold_version",
    "current_cut",
    "model_version",
    "feature",
    "psi",
    "status",
}
MONITORING_PERFORMANCE_COLUMNS = {
    "monitoring_run_id",
    "scoring_run_id",
    "cut_date",
    "model_version",
    "rows",
    "auc",
    "ece",
    "observed_rate",
    "predicted_rate",
    "no_assign",
    "leakage_rate",
}
SECOND_TEST_COLUMNS = ("ks", "ks_pvalue", "js")  # runs before the second test lack them
# Impact figures valued with the simulator's truth (`decision.savings.true_impact`): absent from
# an impact run without it (a bank's data), null in the view then.
IMPACT_TRUTH_COLUMNS = {
    "truth_rows": "BIGINT",
    "true_baseline_cost": "DOUBLE",
    "oracle_no_assign_share": "DOUBLE",
    "oracle_net_savings": "DOUBLE",
    "true_mean_effect_on_roll": "DOUBLE",
    "true_net_savings": "DOUBLE",
    "share_of_oracle_captured": "DOUBLE",
    "naive_true_net_savings": "DOUBLE",
    "naive_share_of_oracle_captured": "DOUBLE",
    "no_model_true_net_savings": "DOUBLE",
    "no_model_share_of_oracle_captured": "DOUBLE",
}
# The expected net savings' split into the policy's decisions and the control group's cost
# (`decision.savings.expected_impact`): absent from an impact run before it, null in the view then.
IMPACT_SPLIT_COLUMNS = {
    "holdout": "BIGINT",
    "expected_savings_without_holdout": "DOUBLE",
    "expected_holdout_cost": "DOUBLE",
}
QUARANTINE_COLUMNS = {"file", "line", "column", "value", "reason"}
QUARANTINE_FILE = "bi_quarantine.parquet"  # in the metadata area; written at each refresh
SCORE_FEATURE = "__score__"  # the score's own row in monitoring_drift
METADATA_COLUMNS = {
    "model_metrics": {"run_id", "part", "metric", "value"},
    "model_runs": {"run_id", "model_name", "model_version", "started_at", "gate_passed",
                   "n_features"},
    "registry_events": {"version", "event", "at"},
    "impact": {
        "impact_run_id", "computed_at", "model_version", "scope", "collection_action",
        "later_collection_cost", "months", "rows", "no_assign", "no_assign_share",
        "capacity_limited", "actions_avoided_cost", "expected_extra_rolls",
        "expected_extra_roll_cost", "expected_baseline_cost", "expected_policy_cost",
        "expected_net_savings", "beats_both_extremes",
    },
    "monitoring_drift": MONITORING_DRIFT_COLUMNS,
    "monitoring_performance": MONITORING_PERFORMANCE_COLUMNS,
}  # fmt: skip


def _columns(folders: list[Path], first_only: bool = False) -> set[str]:
    """Column names of the Parquet files under `folders` (footers only; no data is read)."""
    names: set[str] = set()
    for folder in folders:
        for path in sorted(folder.rglob("*.parquet"))[: 1 if first_only else None]:
            names |= set(pq.read_schema(path).names)
    return names


def _has_metadata(lake: Lake, table: str) -> bool:
    """A metadata table exists with the columns the BI views read (else its views are left out)."""
    folder = lake.metadata_dir / table
    if not folder.is_dir() or not any(folder.rglob("*.parquet")):
        return False
    return METADATA_COLUMNS[table] <= _columns([folder])


def _score_dirs(lake: Lake) -> list[tuple[dict[str, Any], Path]]:
    out = []
    for info in lake.versions("results"):
        folder = lake.version_dir("results", info["version"]) / SCORES
        if SCORES in info.get("history_tables", []) and folder.is_dir():
            out.append((info, folder))
    return out


def _scoring_runs_sql(lake: Lake) -> str | None:
    """Published results versions as a VALUES list (their policy lives in `_run.json`)."""
    current = lake.current_version("results")
    dirs = _score_dirs(lake)
    if not dirs or not _columns([folder for _, folder in dirs]) >= SCORES_COLUMNS:
        return None
    rows = []
    for info, _ in dirs:
        policy = info.get("policy") or {}
        rows.append(
            "("
            + ", ".join(
                [
                    literal(info["version"]),
                    literal(info.get("scoring_run_id", info.get("run_id"))),
                    f"CAST({literal(info.get('published_at'))} AS TIMESTAMPTZ)",
                    f"CAST({literal(info.get('as_of'))} AS DATE)",
                    literal(
                        None if info.get("model_version") is None else str(info["model_version"])
                    ),
                    f"CAST({literal(policy.get('collection_action'))} AS DOUBLE)",
                    f"CAST({literal(policy.get('later_collection_cost'))} AS DOUBLE)",
                    f"CAST({literal(policy.get('default_provision_step'))} AS DOUBLE)",
                    f"CAST({literal(_steps_text(policy.get('provision_step')))} AS VARCHAR)",
                    f"CAST({literal(policy.get('capacity'))} AS BIGINT)",
                    literal(info["version"] == current),
                    f"CAST({literal(info.get('scored_period'))} AS VARCHAR)",
                ]
            )
            + ")"
        )
    if not rows:
        return None
    return (
        "SELECT * FROM (VALUES "
        + ", ".join(rows)
        + ") AS t(results_version, scoring_run_id, published_at, cut_date, model_version, "
        "collection_action, later_collection_cost, default_provision_step, provision_steps, "
        "capacity, is_current, scored_period)"
    )


def _steps_text(steps: Any) -> str | None:
    """A policy's provision steps as people read them: `CONSUMER_LOAN 8%, CREDIT_CARD 10%`."""
    if not isinstance(steps, dict):
        return None
    return ", ".join(f"{k} {100 * float(v):g}%" for k, v in sorted(steps.items()))


def _provision_steps_sql(lake: Lake) -> str:
    """(results_version, product, provision_step) of every run's policy, as a VALUES list."""
    rows = [
        f"({literal(info['version'])}, {literal(str(product))}, CAST({literal(float(step))} "
        "AS DOUBLE))"
        for info, _ in _score_dirs(lake)
        for product, step in sorted(
            ((info.get("policy") or {}).get("provision_step") or {}).items()
        )
    ]
    if not rows:
        return (
            "SELECT CAST(NULL AS VARCHAR) AS results_version, CAST(NULL AS VARCHAR) AS product, "
            "CAST(NULL AS DOUBLE) AS provision_step WHERE FALSE"
        )
    return (
        f"SELECT * FROM (VALUES {', '.join(rows)}) AS t(results_version, product, provision_step)"
    )


def _scores_source(lake: Lake) -> str:
    """Every version's scores rows, tagged with the results version read from the file path."""
    globs = [literal(str(folder / "**" / "*.parquet")) for _, folder in _score_dirs(lake)]
    return (
        f"SELECT *, regexp_extract(filename, '/versions/([^/]+)/{SCORES}/', 1) "
        f"AS results_version FROM read_parquet([{', '.join(globs)}], union_by_name=true, "
        "filename=true)"
    )


FACT_DECISIONS = """
WITH tagged AS (
    SELECT s.*, r.published_at, r.collection_action, r.later_collection_cost,
           coalesce(p.provision_step, r.default_provision_step) AS provision_step,
           r.is_current AS run_is_current
    FROM ({scores}) AS s JOIN bi.scoring_runs AS r USING (results_version)
    LEFT JOIN ({steps}) AS p ON p.results_version = s.results_version AND p.product = s.product
), ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY obligation_id, cut_date ORDER BY published_at DESC, results_version DESC
    ) AS rank_in_cut
    FROM tagged
)
SELECT obligation_id, cut_date, client_key, product, segment, days_past_due,
       {dpd_band} AS dpd_band, amount_past_due, eligible, probability, decision,
       capacity_limited, p_roll_no_action, p_roll_action, roll_loss, expected_benefit,
       model_version, scoring_run_id, results_version, {arm} AS arm,
       published_at AS scored_at, run_is_current AS is_current,
       reason_1_code, reason_1_text, reason_1_contribution,
       {reasons},
       collection_action, later_collection_cost, provision_step,
       CASE WHEN decision = 'NO_ASSIGN' THEN -expected_benefit ELSE 0 END AS expected_saving
FROM ranked WHERE rank_in_cut = 1
"""

# What the horizon showed, whatever the decision: the roll to 31+ first (the loss the decision is
# about), then a cure by the debit alone, a cure by any other channel, or still 1-30 days past due.
# A gold without `cure_any` cannot tell the last two apart: `not_rolled` then.
FACT_OUTCOMES = """
SELECT d.obligation_id, d.cut_date, d.client_key, d.product, d.segment, d.days_past_due,
       d.dpd_band, d.amount_past_due, d.eligible, d.probability, d.decision, d.arm,
       d.p_roll_no_action, d.p_roll_action, d.roll_loss, d.expected_benefit,
       d.model_version, d.scoring_run_id, d.results_version,
       g.self_cure_debit, {cure_any} AS cure_any, {roll} AS roll_31_plus,
       CASE WHEN {roll} = 1 THEN 'rolled_31_plus'
            WHEN g.self_cure_debit = 1 THEN 'cured_by_debit'
            WHEN {cure_any} = 1 THEN 'cured_otherwise'
            WHEN {cure_any} = 0 THEN 'not_cured'
            ELSE 'not_rolled' END AS outcome,
       d.expected_saving,
       CASE WHEN d.decision = 'NO_ASSIGN' THEN d.collection_action
            - ({roll} - d.p_roll_action) * d.roll_loss
            ELSE 0 END AS realized_saving
FROM bi.fact_decisions AS d
JOIN gold.obligation_snapshots AS g USING (obligation_id, cut_date)
WHERE g.self_cure_debit IS NOT NULL
"""

DIM_DATE = """
WITH bounds AS (
    SELECT min(cut_date) AS lo, max(cut_date) AS hi FROM ({cuts})
), cuts AS (SELECT DISTINCT cut_date FROM ({cuts}))
SELECT CAST(d.day AS DATE) AS date,
       year(d.day) AS year, quarter(d.day) AS quarter, month(d.day) AS month,
       monthname(d.day) AS month_name, strftime(d.day, '%Y-%m') AS year_month,
       day(d.day) AS day, CAST(d.day AS DATE) = last_day(CAST(d.day AS DATE)) AS is_month_end,
       c.cut_date IS NOT NULL AS is_cut_date
FROM bounds, generate_series(CAST(date_trunc('month', bounds.lo) AS TIMESTAMP),
                             CAST(bounds.hi AS TIMESTAMP), INTERVAL 1 DAY) AS d(day)
LEFT JOIN cuts AS c ON c.cut_date = CAST(d.day AS DATE)
WHERE bounds.lo IS NOT NULL
ORDER BY 1
"""

DIM_CODE = """
SELECT d.{col}, coalesce(w.es, d.{col}) AS {col}_label, coalesce(w.en, d.{col}) AS {col}_label_en
FROM (SELECT DISTINCT {col} FROM ({src}) WHERE {col} IS NOT NULL) AS d
LEFT JOIN ({words}) AS w ON w.code = d.{col}
ORDER BY 1
"""


def _words(kind: str, only: tuple[str, ...] | None = None) -> str:
    """The words of every code of `kind` (cobranza.labels), or of the codes `only`, as a VALUES
    list: code, es, en."""
    rows = ", ".join(
        f"({literal(code)}, {literal(label(kind, code, 'es'))}, {literal(label(kind, code, 'en'))})"
        for code in (codes(kind) if only is None else only)
    )
    return f"SELECT * FROM (VALUES {rows}) AS t(code, es, en)"


def _dim_fixed(kind: str, col: str, only: tuple[str, ...] | None = None) -> str:
    """A dimension of a closed set of codes (decisions, outcomes, the scoring arms of
    `decision.experiment`): every code, always."""
    return (
        f"SELECT code AS {col}, es AS {col}_label, en AS {col}_label_en "
        f"FROM ({_words(kind, only)}) ORDER BY 1"
    )


CHAMPION_CTE = """
WITH champion AS (
    SELECT version FROM ml_metadata.registry_events
    WHERE event IN ('champion', 'manual_promotion')
    ORDER BY "at" DESC LIMIT 1
)
"""

MODEL_PERFORMANCE = """
SELECT r.model_name, r.model_version, r.run_id, CAST(r.started_at AS TIMESTAMPTZ) AS trained_at,
       r.gate_passed, r.n_features, m.part, m.metric, m.value,
       {is_champion} AS is_champion
FROM ml_metadata.model_metrics AS m JOIN ml_metadata.model_runs AS r USING (run_id)
"""

MONITORING_RUNS = """
WITH runs AS (
    SELECT monitoring_run_id, any_value(gold_version) AS gold_version,
           CAST(any_value(current_cut) AS DATE) AS current_cut,
           CAST(any_value(model_version) AS VARCHAR) AS model_version,
           count(*) FILTER (WHERE feature <> '{score}') AS features,
           count(*) FILTER (WHERE feature <> '{score}' AND status = 'ALERT') AS features_alert,
           count(*) FILTER (WHERE feature <> '{score}' AND status = 'WARN') AS features_warn,
           max(psi) FILTER (WHERE feature <> '{score}') AS max_feature_psi,
           any_value(psi) FILTER (WHERE feature = '{score}') AS score_psi,
           coalesce(any_value(status) FILTER (WHERE feature = '{score}'), 'NO_DATA') AS score_status
    FROM ml_metadata.monitoring_drift GROUP BY monitoring_run_id
), judged AS (
    SELECT *, CASE WHEN features_alert > 0 OR score_status = 'ALERT' THEN 'ALERT'
                   WHEN features_warn > 0 OR score_status = 'WARN' THEN 'WARN'
                   WHEN score_status = 'INSUFFICIENT_DATA' THEN 'INSUFFICIENT_DATA'
                   ELSE 'OK' END AS status
    FROM runs
)
SELECT monitoring_run_id, CAST(try_strptime(monitoring_run_id, '%Y%m%dT%H%M%S%f') AS TIMESTAMP)
       AS run_at, gold_version, current_cut, model_version, status, w.es AS status_label,
       w.en AS status_label_en, features, features_alert, features_warn, max_feature_psi,
       score_psi, score_status,
       monitoring_run_id = max(monitoring_run_id) OVER () AS is_latest
FROM judged LEFT JOIN ({words}) AS w ON w.code = judged.status
"""

MONITORING_DRIFT = """
SELECT d.monitoring_run_id, CAST(d.current_cut AS DATE) AS current_cut,
       CAST(d.model_version AS VARCHAR) AS model_version, d.feature, d.feature = '{score}'
       AS is_score, CAST(d.psi AS DOUBLE) AS psi, d.status, w.es AS status_label,
       w.en AS status_label_en, {second}
FROM ml_metadata.monitoring_drift AS d LEFT JOIN ({words}) AS w ON w.code = d.status
"""

MONITORING_PERFORMANCE = """
SELECT p.monitoring_run_id, CAST(p.scoring_run_id AS VARCHAR) AS scoring_run_id,
       CAST(p.cut_date AS DATE) AS cut_date, CAST(p.model_version AS VARCHAR) AS model_version,
       {period} AS scored_period, CAST(p."rows" AS BIGINT) AS "rows", p.auc, p.ece,
       p.observed_rate, p.predicted_rate, CAST(p.no_assign AS BIGINT) AS no_assign, p.leakage_rate
FROM ml_metadata.monitoring_performance AS p
"""

# The refused value is never selected: it may be personal data (a name, a document number).
QUARANTINE = """
SELECT {raw_version} AS raw_version, q.file, regexp_replace(q.file, '\\.csv(\\.gz)?$', '')
       AS file_stem, CAST(q.line AS BIGINT) AS line, q."column" AS column_name,
       coalesce(list_contains({personal}, regexp_replace(q.file, '\\.csv(\\.gz)?$', '') || '.'
       || q."column"), FALSE) AS personal_column,
       q.value IS NOT NULL AND q.value <> '' AS value_present, {reason} AS reason
FROM raw.quarantine AS q
"""

SAVINGS = """
SELECT impact_run_id, CAST(computed_at AS TIMESTAMPTZ) AS computed_at,
       CAST(model_version AS VARCHAR) AS model_version, scope,
       CAST(collection_action AS DOUBLE) AS collection_action,
       CAST(later_collection_cost AS DOUBLE) AS later_collection_cost, months,
       CAST("rows" AS BIGINT) AS "rows", CAST(no_assign AS BIGINT) AS no_assign,
       CAST(no_assign_share AS DOUBLE) AS no_assign_share,
       CAST(capacity_limited AS BIGINT) AS capacity_limited,
       CAST(actions_avoided_cost AS DOUBLE) AS actions_avoided_cost,
       CAST(expected_extra_rolls AS DOUBLE) AS expected_extra_rolls,
       CAST(expected_extra_roll_cost AS DOUBLE) AS expected_extra_roll_cost,
       CAST(expected_baseline_cost AS DOUBLE) AS expected_baseline_cost,
       CAST(expected_policy_cost AS DOUBLE) AS expected_policy_cost,
       CAST(expected_net_savings AS DOUBLE) AS expected_net_savings,
       {split},
       CAST(beats_both_extremes AS BOOLEAN) AS beats_both_extremes,
       {truth}
FROM ml_metadata.impact
"""


def _monitoring_views(lake: Lake) -> dict[str, str]:
    views: dict[str, str] = {}
    if not _has_metadata(lake, "monitoring_drift"):
        return views
    words = _words("monitoring_status")
    present = _columns([lake.metadata_dir / "monitoring_drift"])
    second = ", ".join(
        f"CAST(d.{c} AS DOUBLE) AS {c}" if c in present else f"CAST(NULL AS DOUBLE) AS {c}"
        for c in SECOND_TEST_COLUMNS
    )
    views["monitoring_runs"] = MONITORING_RUNS.format(score=SCORE_FEATURE, words=words)
    views["monitoring_drift"] = MONITORING_DRIFT.format(
        score=SCORE_FEATURE, words=words, second=second
    )
    if _has_metadata(lake, "monitoring_performance"):
        period = (
            "CAST(p.scored_period AS VARCHAR)"
            if "scored_period" in _columns([lake.metadata_dir / "monitoring_performance"])
            else "CAST(NULL AS VARCHAR)"
        )
        views["monitoring_performance"] = MONITORING_PERFORMANCE.format(period=period)
    return views


def quarantine_snapshot(lake: Lake) -> Path:
    """The masked quarantine of the current raw version, copied into the metadata area at each
    catalog refresh: `bi.quarantine` reads it, so a BI account needs no access to raw."""
    return lake.metadata_dir / QUARANTINE_FILE


def _quarantine_source(lake: Lake) -> str | None:
    """The masked quarantine's SELECT over `raw.quarantine`; None without one to read."""
    from cobranza.contract import PERSONAL_COLUMNS

    version = lake.current_version("raw")
    if version is None or "quarantine" not in lake.tables("raw"):
        return None
    if not _columns([lake.table_dir("raw", "quarantine")], first_only=True) >= QUARANTINE_COLUMNS:
        return None
    personal = [f"{stem}.{col}" for stem, cols in PERSONAL_COLUMNS.items() for col in cols]
    return QUARANTINE.format(
        raw_version=literal(version),
        reason=masked("q.reason"),
        personal="[" + ", ".join(literal(p) for p in personal) + "]::VARCHAR[]",
    ).strip()


def _quarantine_view(lake: Lake) -> dict[str, str]:
    if _quarantine_source(lake) is None:
        return {}
    return {"quarantine": f"SELECT * FROM read_parquet({literal(quarantine_snapshot(lake))})"}


def bi_snapshots(lake: Lake) -> list[str]:
    """COPY statements that write what BI views read from the metadata area instead of raw; run
    by the catalog's refresh (the lake's owner, who may read raw) after the zone views."""
    source = _quarantine_source(lake)
    if source is None:
        return []
    return [f"COPY ({source}) TO {literal(quarantine_snapshot(lake))} (FORMAT parquet)"]


def bi_views(lake: Lake) -> dict[str, str]:
    """`{view name: SELECT}` for the BI views whose sources exist now, in dependency order."""
    views: dict[str, str] = {}
    gold = (
        lake.current_version("gold") is not None
        and GOLD_TABLE in lake.tables("gold")
        and _columns([lake.table_dir("gold", GOLD_TABLE)], first_only=True) >= GOLD_COLUMNS
    )
    runs = _scoring_runs_sql(lake)
    if runs is not None:
        views["scoring_runs"] = runs
        has_arm = "arm" in _columns([folder for _, folder in _score_dirs(lake)])
        views["fact_decisions"] = FACT_DECISIONS.format(
            scores=_scores_source(lake),
            steps=_provision_steps_sql(lake),
            dpd_band=_dpd_band(),
            reasons=_distinct_reasons(),
            # results scored before the experiment existed followed the production policy
            arm=f"coalesce(arm, {literal(CHAMPION)})" if has_arm else literal(CHAMPION),
        )
        if gold:
            present = _columns([lake.table_dir("gold", GOLD_TABLE)], first_only=True)
            roll, cure_any = (
                f"CAST(g.{c} AS BIGINT)" if c in present else "CAST(NULL AS BIGINT)"
                for c in (ROLL, CURE_ANY)
            )
            views["fact_outcomes"] = FACT_OUTCOMES.format(roll=roll, cure_any=cure_any)
    sources = []
    if gold:
        sources.append(f"SELECT cut_date, product, segment FROM gold.{GOLD_TABLE}")
    if runs is not None:
        sources.append("SELECT cut_date, product, segment FROM bi.fact_decisions")
    if sources:
        union = " UNION ALL ".join(sources)
        views["dim_date"] = DIM_DATE.format(cuts=union)
        views["dim_product"] = DIM_CODE.format(col="product", src=union, words=_words("product"))
        views["dim_segment"] = DIM_CODE.format(col="segment", src=union, words=_words("segment"))
    if runs is not None:
        views["dim_decision"] = _dim_fixed("decision", "decision")
        views["dim_arm"] = _dim_fixed("arm", "arm", SCORING_ARMS)
        if gold:
            views["dim_outcome"] = _dim_fixed("outcome", "outcome")
    if _has_metadata(lake, "model_metrics") and _has_metadata(lake, "model_runs"):
        if _has_metadata(lake, "registry_events"):
            views["model_performance"] = CHAMPION_CTE + MODEL_PERFORMANCE.format(
                is_champion="r.model_version IN (SELECT version FROM champion)"
            )
        else:
            views["model_performance"] = MODEL_PERFORMANCE.format(is_champion="FALSE")
    if _has_metadata(lake, "impact"):
        present = _columns([lake.metadata_dir / "impact"])

        def cast(columns: dict[str, str]) -> str:
            return ",\n       ".join(
                f"CAST({c} AS {t}) AS {c}" if c in present else f"CAST(NULL AS {t}) AS {c}"
                for c, t in columns.items()
            )

        views["savings"] = SAVINGS.format(
            truth=cast(IMPACT_TRUTH_COLUMNS), split=cast(IMPACT_SPLIT_COLUMNS)
        )
    views.update(_monitoring_views(lake))
    views.update(_quarantine_view(lake))
    return {name: sql.strip() for name, sql in views.items()}


def bi_statements(lake: Lake) -> list[str]:
    """Statements for `refresh_catalog`: the schema, the drop marker, one CREATE VIEW per view."""
    stmts = [
        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
        f"__DROP_VIEWS__ {SCHEMA}",
        *bi_snapshots(lake),
    ]
    stmts += [
        f"CREATE OR REPLACE VIEW {SCHEMA}.{name} AS {sql}" for name, sql in bi_views(lake).items()
    ]
    return stmts
