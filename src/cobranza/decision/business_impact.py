"""Business impact of the champion's policy, against the bank's current rule of assigning everyone.

Out of time (the OOT cut months logged by the champion's training run, else the latest
`oot_months` labeled cut months of gold; eligible labeled rows, estimates recomputed with the
champion and today's costs): the decisions, the share NO_ASSIGN and the expected savings from the
model's own probabilities (`savings.expected_impact`). With the simulator's ground truth (both
potential outcomes), every rule is valued with the true probabilities under the same loss and
reported as the share of the oracle's savings it captures (`savings.true_impact`): the policy, the
naive rule (the self-cure model that ignores the treatment, assuming management prevents every
roll of a client who does not self-cure: NO_ASSIGN iff (1 - p_naive) x roll_loss < action) and the
no-model rule (NO_ASSIGN every eligible obligation). Those rows are re-decided by the policy with
no holdout, so their holdout cost is 0. For the current population (`results.latest`) the
expected figures, the net savings split into the policy's decisions and the cost of the
experiment's holdout (its rows valued as the policy would have decided them, `savings`).

Outputs: a chart of cost per obligation against the benefit threshold (NO_ASSIGN iff expected
benefit < t; t = 0 is the policy, the two ends are "assign everyone" and "assign no one with a
mandate"), with `--sensitivity` a grid of the cost parameters (`decision.sensitivity`), and the
figures as `ml_metadata.impact` (one file per run, a row per scope) so BI reads them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from cobranza.config import Costs, Settings
from cobranza.console import waiting
from cobranza.decision.attribution import positive_proba
from cobranza.decision.estimates import Estimates, estimate
from cobranza.decision.experiment import HOLDOUT
from cobranza.decision.policy import (
    NO_ASSIGN,
    Policy,
    champion_policy,
    decide,
    decide_per_cut,
)
from cobranza.decision.savings import expected_impact, true_impact
from cobranza.decision.scoring import ScoringError
from cobranza.decision.sensitivity import (
    cost_chart,
    sensitivity_chart,
    sensitivity_grid,
    threshold_curve,
)
from cobranza.errors import CobranzaError
from cobranza.lake import Lake, refresh_catalog
from cobranza.lake.layout import new_run_id
from cobranza.ml.data import attach_potential_outcomes, truth_path
from cobranza.ml.model import model_input
from cobranza.ml.registry import champion_oot_months, load_champion
from cobranza.summary import Summary
from cobranza.tables import LATEST
from cobranza.transforms.schema import CUT_DATE, ELIGIBLE, GOLD_TABLE, OBLIGATION_ID, TARGET

IMPACT_TABLE = "impact"


@dataclass
class ImpactResult(Summary):
    """Impact figures of an `impact` run, also written as rows of `ml_metadata.impact`."""

    impact_run_id: str
    model_version: str
    gold_version: str
    costs: dict[str, Any]  # the policy's costs (today's settings)
    # expected figures (`expected_impact`) and, with the simulator's truth, every rule valued with
    # the true potential outcomes (`true_impact`: share_of_oracle_captured, naive_..., no_model_...)
    out_of_time: dict[str, Any]
    current: dict[str, Any] | None  # expected figures of results.latest (None: nothing scored)
    sensitivity: dict[str, Any] | None  # `decision.sensitivity.sensitivity_grid` with --sensitivity
    chart: str
    table: str
    seconds: float


# ---- data ---------------------------------------------------------------------------------------
def read_oot(
    lake: Lake, oot_months: int, months: list[str] | None = None, version: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Labeled eligible gold rows of the given cut months ("YYYY-MM"), else the latest
    `oot_months` labeled months; of gold `version`, else the current one."""
    version = version or lake.require_version("gold")
    glob = lake.table_glob("gold", GOLD_TABLE, version)
    src = "read_parquet(?, union_by_name=true)"
    where = f"{ELIGIBLE} AND {TARGET} IS NOT NULL"
    month = f"strftime({CUT_DATE}, '%Y-%m')"
    con = duckdb.connect()
    try:
        available = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {month} AS m FROM {src} WHERE {where} ORDER BY m DESC", [glob]
            ).fetchall()
        ]
        if not available:
            raise ScoringError(f"gold.{GOLD_TABLE} has no labeled eligible rows for impact")
        chosen = [m for m in (months or []) if m in available] or available[: int(oot_months)]
        frame = con.execute(
            f"SELECT * FROM {src} WHERE {where} AND {month} IN (SELECT unnest(?::VARCHAR[])) "
            f"ORDER BY {CUT_DATE}, {OBLIGATION_ID}",
            [glob, chosen],
        ).df()
    finally:
        con.close()
    return frame, sorted(chosen)


def ineligible_per_cut(lake: Lake, months: list[str], version: str | None = None) -> dict[Any, int]:
    """Early-delinquent obligations without a covering mandate per cut of these months: ASSIGN by
    rule, they take a cut's capacity before any eligible row (as at scoring time)."""
    glob = lake.table_glob("gold", GOLD_TABLE, version)
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT {CUT_DATE}, count(*) FROM read_parquet(?, union_by_name=true) "
            f"WHERE NOT {ELIGIBLE} AND strftime({CUT_DATE}, '%Y-%m') IN "
            "(SELECT unnest(?::VARCHAR[])) GROUP BY 1",
            [glob, months],
        ).fetchall()
    finally:
        con.close()
    return {pd.Timestamp(cut).date(): int(n) for cut, n in rows}


# ---- command ------------------------------------------------------------------------------------
def _current_population(lake: Lake, costs: Costs, policy: Policy) -> dict[str, Any] | None:
    """Expected figures of `results.latest`'s eligible rows; a holdout row valued as the champion's
    `policy` would have decided it, with the effect identified or not as the run recorded."""
    version = lake.current_version("results")
    if version is None:
        return None
    try:
        glob = lake.table_glob("results", LATEST)
    except CobranzaError:
        return None
    con = duckdb.connect()
    try:
        latest = con.execute("SELECT * FROM read_parquet(?)", [glob]).df()
    finally:
        con.close()
    elig = latest[ELIGIBLE].to_numpy(dtype=bool)
    rows = latest.loc[elig]
    no_assign = rows["decision"].to_numpy() == NO_ASSIGN
    if "p_roll_no_action" not in rows:
        return None  # scored before the effect-aware decision
    benefit = rows["expected_benefit"].to_numpy(dtype=np.float64)
    holdout = (rows["arm"] == HOLDOUT).to_numpy() if "arm" in rows else np.zeros(len(rows), bool)
    recorded = lake.run_info("results", version).get("policy") or {}
    identified = bool(recorded.get("effect_identified", policy.effect_identified))
    run_policy = dataclasses.replace(policy, effect_identified=identified)
    policy_no_assign = no_assign.copy()
    policy_no_assign[holdout] = held_out_no_assign(benefit[holdout], run_policy)
    figures = expected_impact(
        policy_no_assign,
        rows["p_roll_no_action"].to_numpy(dtype=np.float64),
        rows["p_roll_action"].to_numpy(dtype=np.float64),
        rows["roll_loss"].to_numpy(dtype=np.float64),
        costs,
        holdout=holdout,
    )
    figures.pop("rows")
    figures.pop("no_assign")
    figures.pop("no_assign_share")
    return {
        "cut_date": str(pd.Timestamp(latest[CUT_DATE].max()).date()) if len(latest) else None,
        "scoring_run_id": str(latest["scoring_run_id"].iloc[0]) if len(latest) else None,
        "rows": len(latest),
        "eligible": int(elig.sum()),
        "no_assign": int(no_assign.sum()),
        "no_assign_share": round(float(no_assign.sum() / len(latest)), 6) if len(latest) else 0.0,
        "capacity_limited": int(latest["capacity_limited"].sum()),
        **figures,
    }


def held_out_no_assign(benefit, policy: Policy) -> np.ndarray:
    """The policy's decision on eligible rows of the holdout, had they not been held out: its
    rule on each row's own expected benefit. The capacity is not re-ranked: with a binding
    capacity a held-out row's place went to another row, so the holdout's cost is then an upper
    bound."""
    b = np.asarray(benefit, dtype=np.float64)
    rule = dataclasses.replace(policy, capacity=None)
    return decide(b, np.ones(len(b), bool), rule) == NO_ASSIGN


def oot_estimates(champion: Any, oot: pd.DataFrame, costs: Costs) -> tuple[np.ndarray, Estimates]:
    """The champion's self-cure probability and estimates on the out-of-time rows."""
    features = list(champion.model.feature_names_)
    X = model_input(oot, features, f"the champion (version {champion.version})")
    eligible = np.ones(len(oot), dtype=bool)  # read_oot reads eligible rows only
    return positive_proba(champion.model, X), estimate(champion.roll, X, oot, eligible, costs)


def naive_no_assign(
    champion: Any, oot: pd.DataFrame, loss: np.ndarray, costs: Costs
) -> np.ndarray | None:
    """The naive rule's NO_ASSIGN set: (1 - p_naive) x roll_loss < action (see the docstring)."""
    if champion.naive is None:
        return None
    needed_by = f"the champion's naive model (version {champion.version})"
    p = positive_proba(
        champion.naive, model_input(oot, list(champion.naive.feature_names_), needed_by)
    )
    return (1.0 - p) * loss < costs.collection_action


def impact(settings: Settings, ui=None, sensitivity: bool = False) -> ImpactResult:
    """Impact figures out of time and for the current population; chart and table in the lake."""
    t0 = time.perf_counter()
    lake = Lake(settings.lake).ensure()
    with waiting(ui, "loading the champion model"):
        champion = load_champion(settings)
    policy = champion_policy(champion, settings.costs.daily_capacity, settings.costs)
    costs = policy.costs
    logged = champion_oot_months(settings, str(champion.run_id))
    gold_version = lake.require_version("gold")  # once: both reads see the same version
    oot, months = read_oot(lake, settings.oot_months, logged, gold_version)
    proba, est = oot_estimates(champion, oot, costs)
    cuts = pd.to_datetime(oot[CUT_DATE]).dt.date
    eligible = np.ones(len(oot), dtype=bool)
    ineligible = ineligible_per_cut(lake, months, gold_version)
    decision, limited = decide_per_cut(est.expected_benefit, eligible, cuts, policy, ineligible)
    no_assign = decision == NO_ASSIGN

    out_of_time: dict[str, Any] = {
        "months": months,
        "months_from": "champion training run" if logged and months == sorted(logged) else "gold",
        "capacity_limited": int(limited.sum()),
        "mean_probability": round(float(proba.mean()), 6) if len(proba) else None,
        **expected_impact(no_assign, est.p_roll_no_action, est.p_roll_action, est.roll_loss, costs),
    }
    truth = attach_potential_outcomes(oot, truth_path(settings, lake))
    naive = naive_no_assign(champion, oot, est.roll_loss, costs)
    if truth is not None:
        known = truth["p_roll_no_action"].notna().to_numpy()
        if known.any():
            rules = {"policy": no_assign[known], "no_model": np.ones(int(known.sum()), bool)}
            if naive is not None:
                rules["naive"] = naive[known]
            out_of_time.update(
                true_impact(
                    rules,
                    truth["p_roll_no_action"].to_numpy()[known],
                    truth["p_roll_action"].to_numpy()[known],
                    est.roll_loss[known],
                    costs,
                )
            )
    run_id = new_run_id()
    folder = lake.zone_dir("results") / "impact" / run_id
    p_true = None if truth is None else truth[["p_roll_no_action", "p_roll_action"]].to_numpy().T
    curve = threshold_curve(est, costs, p_true)
    chart = cost_chart(curve, folder / "cost_vs_benefit_threshold.png")
    out_of_time["beats_both_extremes"] = curve["beats_both_extremes"]
    grid = None
    if sensitivity:
        grid = sensitivity_grid(est, no_assign, costs, p_true)
        sensitivity_chart(grid, folder / "sensitivity.png")
    current = _current_population(lake, costs, policy)

    computed_at = datetime.now(UTC).isoformat()
    base = {
        "impact_run_id": run_id,
        "computed_at": computed_at,
        "model_version": str(champion.version),
        "gold_version": gold_version,
        "collection_action": costs.collection_action,
        "later_collection_cost": costs.later_collection_cost,
        "chart_path": str(chart),
    }
    records = [{**base, "scope": "out_of_time", **_scalars(out_of_time)}]
    if current is not None:
        records.append({**base, "scope": "current", **_scalars(current)})
    lake.write_metadata(IMPACT_TABLE, records, run_id)
    refresh_catalog(lake)
    return ImpactResult(
        impact_run_id=run_id,
        model_version=str(champion.version),
        gold_version=gold_version,
        costs=policy.to_dict(),
        out_of_time=out_of_time,
        current=current,
        sensitivity=grid,
        chart=str(chart),
        table=f"ml_metadata.{IMPACT_TABLE}",
        seconds=round(time.perf_counter() - t0, 3),
    )


def _scalars(data: dict[str, Any]) -> dict[str, Any]:
    """Flat columns for the table; the months list becomes text."""
    return {k: (", ".join(v) if isinstance(v, list) else v) for k, v in data.items()}
