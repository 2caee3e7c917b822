"""`cobranza monitor`: is the champion still looking at the population it was trained on, and is it right?

Three readings, written to `ml_metadata.monitoring_*` for BI and summarized for people:
- data drift: PSI of every feature, reference = the last training months (the `oot_months` labeled
  months just before the out-of-time ones) against the latest cut's eligible population;
- score drift: PSI of the champion's probabilities on the same two populations;
- realized performance: for every past scoring run whose horizon has closed (its cut is now labeled
  in gold), AUC, calibration error, observed versus predicted self-cure and the leakage of NO_ASSIGN.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from cobranza.config import Settings
from cobranza.errors import CobranzaError
from cobranza.lake import Lake, refresh_catalog
from cobranza.ml.data import feature_columns, read_gold
from cobranza.ml.metrics import auc, ece
from cobranza.ml.registry import load_champion
from cobranza.monitoring.drift import (
    REFERENCE_SAMPLE,
    enough_rows,
    feature_drift,
    numeric_psi,
    status,
)
from cobranza.summary import Summary
from cobranza.tables import SCORES
from cobranza.transforms.schema import CUT_DATE, ELIGIBLE, OBLIGATION_ID, TARGET


@dataclass
class MonitorResult(Summary):
    """A monitoring run: drift status overall, of the score and per feature, realized figures."""

    status: str  # OK, WARN, ALERT or INSUFFICIENT_DATA
    current_cut: str
    model_version: str
    reference_rows: int
    current_rows: int
    score_psi: float | None
    score_status: str
    features_alert: list[str]
    features_warn: list[str]
    top_drift: list[dict[str, Any]]
    realized: list[dict[str, Any]]  # the last three scoring runs whose horizon has closed
    monitoring_run_id: str


def _reference_and_current(
    gold: pd.DataFrame, oot_months: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    eligible = gold.loc[gold[ELIGIBLE].fillna(False).astype(bool)]
    cuts = sorted(eligible[CUT_DATE].unique())
    labeled = sorted(eligible.loc[eligible[TARGET].notna(), CUT_DATE].unique())
    if len(labeled) <= oot_months or not cuts:
        raise CobranzaError(
            "gold has too few labeled cut months to form a monitoring reference window"
        )
    if len(labeled) < 2 * oot_months:
        raise CobranzaError(
            f"gold has {len(labeled)} labeled cut months; monitoring needs {2 * oot_months} "
            f"(the {oot_months} training months before the {oot_months} out-of-time ones)"
        )
    # The last training months: recent enough that 6/12-month window features are mature, and
    # before the out-of-time months, so drift after training is not already in the reference.
    window = labeled[-2 * oot_months : -oot_months]
    reference = eligible.loc[eligible[CUT_DATE].isin(window) & eligible[TARGET].notna()]
    if len(reference) > REFERENCE_SAMPLE:
        reference = reference.sample(REFERENCE_SAMPLE, random_state=seed)
    current = eligible.loc[eligible[CUT_DATE] == cuts[-1]]
    return reference, current, str(cuts[-1])


def realized_performance(
    scores: pd.DataFrame, gold: pd.DataFrame, periods: dict[str, str | None] | None = None
) -> list[dict[str, Any]]:
    """Stored probabilities of past scoring runs against the labels their horizons produced;
    `periods` (scoring run -> scored_period) marks the in-sample ones ("training")."""
    labels = gold.loc[gold[TARGET].notna(), [OBLIGATION_ID, CUT_DATE, TARGET]]
    scored = scores.loc[scores["probability"].notna()]
    joined = scored.merge(labels, on=[OBLIGATION_ID, CUT_DATE], how="inner")
    rows = []
    for (run_id, cut, version), part in joined.groupby(
        ["scoring_run_id", CUT_DATE, "model_version"], sort=True
    ):
        y = part[TARGET].to_numpy(dtype=np.int64)
        p = part["probability"].to_numpy(dtype=np.float64)
        no_assign = part["decision"].to_numpy() == "NO_ASSIGN"
        both = y.min() != y.max()
        rows.append(
            {
                "scoring_run_id": run_id,
                CUT_DATE: str(cut),
                "model_version": str(version),
                "scored_period": (periods or {}).get(run_id),
                "rows": len(part),
                "auc": round(auc(y, p), 6) if both else None,
                "ece": round(ece(y, p), 6),
                "observed_rate": round(float(y.mean()), 6),
                "predicted_rate": round(float(p.mean()), 6),
                "no_assign": int(no_assign.sum()),
                "leakage_rate": round(float(1 - y[no_assign].mean()), 6)
                if no_assign.any()
                else None,
            }
        )
    return rows


def _read_scores(lake: Lake) -> pd.DataFrame | None:
    if lake.current_version("results") is None:
        return None
    versions = [
        v["version"] for v in lake.versions("results") if SCORES in v.get("history_tables", [])
    ]
    globs = [lake.table_glob("results", SCORES, v) for v in versions]
    if not globs:
        return None
    con = duckdb.connect()
    try:
        return con.execute(
            "SELECT obligation_id, cut_date, probability, decision, model_version, scoring_run_id "
            "FROM read_parquet(?, union_by_name=true)",
            [globs],
        ).df()
    finally:
        con.close()


def data_drift(settings: Settings, lake: Lake) -> dict[str, Any]:
    """Feature drift only: needs gold, not a model (useful before the first champion exists)."""
    gold, gold_info = read_gold(lake)
    reference, current, current_cut = _reference_and_current(
        gold, settings.oot_months, settings.seed
    )
    features, categorical = feature_columns(gold)
    return {
        "gold": gold,
        "gold_version": gold_info["version"],
        "reference": reference,
        "current": current,
        "current_cut": current_cut,
        "drift": feature_drift(reference, current, features, categorical),
    }


def monitor(settings: Settings, ui: Any = None) -> MonitorResult:
    """Drift and realized performance, written to ml_metadata; see the module docstring."""
    lake = Lake(settings.lake).ensure()
    data = data_drift(settings, lake)
    gold, reference, current, drift = (
        data["gold"],
        data["reference"],
        data["current"],
        data["drift"],
    )

    champion = load_champion(settings)
    if enough_rows(reference, current):
        p_ref = champion.model.predict_proba(reference[champion.features])[:, 1]
        p_cur = champion.model.predict_proba(current[champion.features])[:, 1]
        score_psi: float | None = numeric_psi(pd.Series(p_ref), pd.Series(p_cur))
    else:
        score_psi = None
    score_status = status(score_psi) if score_psi is not None else "INSUFFICIENT_DATA"

    scores = _read_scores(lake)
    periods = {
        v.get("scoring_run_id", v.get("run_id")): v.get("scored_period")
        for v in lake.versions("results")
    }
    performance = realized_performance(scores, gold, periods) if scores is not None else []

    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    stamp = {
        "monitoring_run_id": run_id,
        "gold_version": data["gold_version"],
        "current_cut": data["current_cut"],
        "model_version": champion.version,
    }
    score_row = {"feature": "__score__", "psi": score_psi, "status": score_status}
    lake.write_metadata("monitoring_drift", [{**stamp, **r} for r in [*drift, score_row]], run_id)
    if performance:
        lake.write_metadata("monitoring_performance", [{**stamp, **r} for r in performance], run_id)
    refresh_catalog(lake)

    alerts = [r["feature"] for r in drift if r["status"] == "ALERT"]
    warns = [r["feature"] for r in drift if r["status"] == "WARN"]
    if alerts or score_status == "ALERT":
        overall = "ALERT"
    elif warns or score_status == "WARN":
        overall = "WARN"
    elif score_status == "INSUFFICIENT_DATA":
        overall = "INSUFFICIENT_DATA"
    else:
        overall = "OK"
    return MonitorResult(
        status=overall,
        current_cut=data["current_cut"],
        model_version=champion.version,
        reference_rows=len(reference),
        current_rows=len(current),
        score_psi=None if score_psi is None else round(score_psi, 4),
        score_status=score_status,
        features_alert=alerts,
        features_warn=warns,
        top_drift=drift[:5],
        realized=performance[-3:],
        monitoring_run_id=run_id,
    )
