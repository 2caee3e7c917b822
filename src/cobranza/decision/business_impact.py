"""Business impact of the champion's policy, against the bank's current rule of assigning everyone.

Out of time (the OOT cut months logged by the champion's training run, else the latest
`oot_months` labeled cut months of gold; eligible labeled rows, probabilities recomputed with the
champion): share NO_ASSIGN, collection actions avoided and their cost, leakage
(NO_ASSIGN rows that did not self-cure) and its cost, net savings = avoided cost - leakage cost.
With the simulator's ground truth, an oracle decides each row on `p_true` with the same costs
(NO_ASSIGN iff its expected unmanaged loss `(1 - p_true) * loss` is below one collection action,
the Bayes rule) and the policy's share of the oracle's savings is reported. For the current
population (`results.latest`) the same figures are expected values from the probabilities.

Outputs: a chart of realized and expected cost against the threshold (PNG in
`<lake>/results/impact/<run>/`) and the figures as `ml_metadata.impact` (Parquet, one file per run,
a row per scope) so BI reads them from the catalog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from cobranza.config import Costs, Settings
from cobranza.console import waiting
from cobranza.decision.attribution import positive_proba
from cobranza.decision.policy import NO_ASSIGN, Policy, champion_policy, cost_curve, decide_per_cut
from cobranza.decision.savings import (
    expected_impact,
    oracle_figures,
    realized_impact,
)
from cobranza.decision.scoring import ScoringError
from cobranza.errors import CobranzaError
from cobranza.lake import Lake, refresh_catalog
from cobranza.lake.layout import new_run_id
from cobranza.ml.data import attach_truth, truth_path
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
    threshold: float | None
    # realized figures (`realized_impact`), expected ones (`expected_impact`), the oracle's when
    # the simulator's truth is there (`oracle_figures`), months and the out-of-time optimum
    out_of_time: dict[str, Any]
    current: dict[str, Any] | None  # expected figures of results.latest (None: nothing scored)
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


# ---- chart --------------------------------------------------------------------------------------
def cost_chart(curve: dict[str, np.ndarray], policy: Policy, n: int, out: Path) -> Path:
    """Realized and expected cost per obligation against the threshold, the policy's marked."""
    import matplotlib  # only this chart needs it (about a second to import)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = np.isfinite(curve["threshold"])
    thr = curve["threshold"][finite]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    ax.plot(thr, curve["cost"][finite] / n, label="realized cost (out of time)", lw=1.6)
    ax.plot(
        thr,
        curve["expected_cost"][finite] / n,
        label="expected cost (probabilities)",
        lw=1.2,
        ls="--",
    )
    baseline = curve["cost"][0] / n
    ax.axhline(baseline, color="grey", lw=1, ls=":", label="assign everyone (current policy)")
    if np.isfinite(policy.threshold):
        ax.axvline(
            policy.threshold, color="red", lw=1, label=f"policy threshold {policy.threshold:.3f}"
        )
    best = int(np.argmin(curve["cost"]))
    if np.isfinite(curve["threshold"][best]):
        ax.scatter(
            [curve["threshold"][best]],
            [curve["cost"][best] / n],
            color="black",
            zorder=3,
            label="out-of-time optimum",
        )
    ax.set_xlabel("threshold: NO_ASSIGN when probability of self-cure >= threshold")
    ax.set_ylabel("cost per obligation (COP)")
    ax.set_title("Why the threshold sits where it does")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


# ---- command ------------------------------------------------------------------------------------
def _current_population(lake: Lake, costs: Costs) -> dict[str, Any] | None:
    if lake.current_version("results") is None:
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
    figures = expected_impact(
        no_assign,
        rows["probability"].to_numpy(dtype=np.float64),
        rows["amount_past_due"].to_numpy(dtype=np.float64, na_value=0.0),
        costs,
    )
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


def impact(settings: Settings, ui=None) -> ImpactResult:
    """Impact figures out of time and for the current population; chart and table in the lake."""
    t0 = time.perf_counter()
    lake = Lake(settings.lake).ensure()
    with waiting(ui, "loading the champion model"):
        champion = load_champion(settings)
    policy = champion_policy(champion, settings.costs.daily_capacity)
    costs = policy.costs
    logged = champion_oot_months(settings, str(champion.run_id))
    gold_version = lake.require_version("gold")  # once: both reads see the same version
    oot, months = read_oot(lake, settings.oot_months, logged, gold_version)
    features = list(champion.model.feature_names_)
    proba = positive_proba(champion.model, model_input(oot, features))
    y = oot[TARGET].to_numpy(dtype=np.int64)
    amount = oot["amount_past_due"].to_numpy(dtype=np.float64, na_value=0.0)
    cuts = pd.to_datetime(oot[CUT_DATE]).dt.date
    eligible = np.ones(len(oot), dtype=bool)  # read_oot reads eligible rows only
    ineligible = ineligible_per_cut(lake, months, gold_version)
    decision, _ = decide_per_cut(proba, amount, eligible, cuts, policy, ineligible)
    no_assign = decision == NO_ASSIGN

    out_of_time: dict[str, Any] = {
        "months": months,
        "months_from": "champion training run" if logged and months == sorted(logged) else "gold",
        **realized_impact(no_assign, y, amount, costs),
    }
    out_of_time.update(expected_impact(no_assign, proba, amount, costs))
    p_true = attach_truth(oot, truth_path(settings, lake))
    if p_true is not None:
        known = ~np.isnan(p_true)
        if known.any():
            sub = realized_impact(no_assign[known], y[known], amount[known], costs)
            out_of_time.update(
                oracle_figures(sub["net_savings"], p_true[known], y[known], amount[known], costs)
            )
            out_of_time["truth_rows"] = int(known.sum())

    run_id = new_run_id()
    curve = cost_curve(proba, y, amount, costs, policy.cost_rule)
    chart = cost_chart(
        curve,
        policy,
        len(y),
        lake.zone_dir("results") / "impact" / run_id / "cost_vs_threshold.png",
    )
    best = int(np.argmin(curve["cost"]))
    out_of_time["oot_optimal_threshold"] = (
        float(curve["threshold"][best]) if np.isfinite(curve["threshold"][best]) else None
    )
    current = _current_population(lake, costs)

    computed_at = datetime.now(UTC).isoformat()
    base = {
        "impact_run_id": run_id,
        "computed_at": computed_at,
        "model_version": str(champion.version),
        "gold_version": gold_version,
        "threshold": policy.to_dict()["threshold"],
        "collection_action": costs.collection_action,
        "unmanaged_fixed": costs.unmanaged_fixed,
        "unmanaged_share_past_due": costs.unmanaged_share_past_due,
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
        threshold=base["threshold"],
        out_of_time=out_of_time,
        current=current,
        chart=str(chart),
        table=f"ml_metadata.{IMPACT_TABLE}",
        seconds=round(time.perf_counter() - t0, 3),
    )


def _scalars(data: dict[str, Any]) -> dict[str, Any]:
    """Flat columns for the table; the months list becomes text."""
    return {k: (", ".join(v) if isinstance(v, list) else v) for k, v in data.items()}
