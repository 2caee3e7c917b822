"""`/v1/monitoring`: the latest `cobranza monitor` run (drift) and the realized performance, for people.

`cobranza monitor` (the `monitor` job) appends one Parquet file per run to
`ml_metadata.monitoring_drift` and `ml_metadata.monitoring_performance`; this router reads the newest
run and completes it with what the files do not hold: the reference and current periods (the
monitor's own rule, applied to the gold version the run read) and the pesos each closed scoring run
saved against assigning everyone (its NO_ASSIGN decisions against the labels the horizon produced,
with the costs of the policy that run used). Computed once per monitoring run and lake versions.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow.parquet as pq
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from cobranza.api.deps import Services, guard, services
from cobranza.api.schemas import Problem, json_safe
from cobranza.config import Costs, Settings
from cobranza.lake import Lake
from cobranza.monitoring.drift import ALERT_PSI, MIN_ROWS, REFERENCE_SAMPLE, WARN_PSI
from cobranza.transforms.schema import (
    CUT_DATE,
    ELIGIBLE,
    GOLD_TABLE,
    OBLIGATION_ID,
    ROLL_31_PLUS,
    TARGET,
)

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])

DRIFT_TABLE, PERFORMANCE_TABLE = "monitoring_drift", "monitoring_performance"
SCORE_ROW = "__score__"  # the row of the score's own PSI in monitoring_drift
DriftStatus = Literal["OK", "WARN", "ALERT", "INSUFFICIENT_DATA", "NO_DATA"]


class FeatureDrift(BaseModel):
    feature: str
    psi: float | None = Field(None, description="Population stability index, reference vs current.")
    status: DriftStatus = Field(
        ..., description="OK < 0.10 <= WARN < 0.25 <= ALERT; INSUFFICIENT_DATA under 100 rows."
    )


class ScoreDrift(BaseModel):
    psi: float | None = Field(None, description="PSI of the champion's probabilities.")
    status: DriftStatus


class Period(BaseModel):
    cut_dates: list[date] = Field(default_factory=list, description="Cut months in the period.")
    start: date | None = None
    end: date | None = None
    rows: int | None = Field(None, description="Eligible obligations the drift compared.")


class RealizedRun(BaseModel):
    """One past scoring run whose horizon has closed: its decisions against what happened."""

    scoring_run_id: str
    cut_date: date
    model_version: str | None = None
    scored_period: Literal["training", "out_of_time", "after_training"] | None = Field(
        None,
        description="Where the cut sat for the model: `training` means its outcomes fitted the "
        "model, so these realized figures are in-sample; null when unknown.",
    )
    rows: int = Field(..., description="Eligible scored obligations now labeled.")
    auc: float | None = Field(None, description="Null when every label is the same.")
    ece: float | None = Field(None, description="Expected calibration error.")
    self_cure_rate: float | None = Field(None, description="Observed share that self-cured.")
    predicted_rate: float | None = Field(None, description="Mean predicted probability.")
    no_assign: int
    leakage_rate: float | None = Field(
        None, description="Share of NO_ASSIGN obligations that did not self-cure."
    )
    actions_avoided_cost: float | None = Field(None, description="COP not spent on collection.")
    leakage_cost: float | None = Field(
        None,
        description="COP of the rolls to 31+ among NO_ASSIGN obligations (roll loss of each), "
        "beyond those management would have left (the roll model's p_roll_action).",
    )
    net_savings: float | None = Field(
        None,
        description="COP saved against assigning everyone: avoided cost - leakage cost (an "
        "estimate: what management would have prevented is the model's).",
    )


class MonitoringReport(BaseModel):
    monitoring_run_id: str
    run_at: datetime | None = Field(None, description="When the monitor ran (UTC).")
    runs: int = Field(..., description="Monitoring runs recorded so far.")
    status: DriftStatus = Field(
        ...,
        description="ALERT if any feature or the score is ALERT, else WARN if any is WARN, else "
        "INSUFFICIENT_DATA if the score could not be judged, else OK.",
    )
    model_version: str | None
    gold_version: str | None
    reference: Period = Field(..., description="The last training months before the OOT ones.")
    current: Period = Field(..., description="The latest cut's eligible population.")
    score: ScoreDrift
    features: list[FeatureDrift] = Field(..., description="Largest PSI first.")
    thresholds: dict[str, float]
    performance: list[RealizedRun] = Field(
        ..., description="Empty until the horizon of a scoring run has closed."
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "monitoring_run_id": "20260131T101500123456",
                    "run_at": "2026-01-31T10:15:00.123456Z",
                    "runs": 4,
                    "status": "WARN",
                    "model_version": "3",
                    "gold_version": "20260131T090000-1a2b3c4d",
                    "reference": {
                        "cut_dates": ["2025-08-31", "2025-09-30", "2025-10-31"],
                        "start": "2025-08-31",
                        "end": "2025-10-31",
                        "rows": 8120,
                    },
                    "current": {
                        "cut_dates": ["2026-01-31"],
                        "start": "2026-01-31",
                        "end": "2026-01-31",
                        "rows": 2710,
                    },
                    "score": {"psi": 0.031, "status": "OK"},
                    "features": [
                        {"feature": "balance_to_installment", "psi": 0.14, "status": "WARN"}
                    ],
                    "thresholds": {"warn_psi": 0.1, "alert_psi": 0.25, "min_rows": 100},
                    "performance": [
                        {
                            "scoring_run_id": "20251231T100000-9f8e7d6c",
                            "cut_date": "2025-12-31",
                            "model_version": "3",
                            "rows": 2650,
                            "auc": 0.81,
                            "ece": 0.012,
                            "self_cure_rate": 0.47,
                            "predicted_rate": 0.46,
                            "no_assign": 910,
                            "leakage_rate": 0.11,
                            "actions_avoided_cost": 7280000.0,
                            "leakage_cost": 1650000.0,
                            "net_savings": 5630000.0,
                        }
                    ],
                }
            ]
        }
    }


class NeverMonitored(LookupError):
    pass


def _run_files(lake: Lake, table: str) -> list[Path]:
    folder = lake.metadata_dir / table
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _run_at(run_id: str) -> datetime | None:
    try:
        return datetime.strptime(run_id, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def overall_status(features: list[dict[str, Any]], score_status: str) -> str:
    """The monitor's own reading of a run, from its stored rows."""
    statuses = {r["status"] for r in features}
    if "ALERT" in statuses or score_status == "ALERT":
        return "ALERT"
    if "WARN" in statuses or score_status == "WARN":
        return "WARN"
    if score_status == "INSUFFICIENT_DATA":
        return "INSUFFICIENT_DATA"
    return "OK"


def _periods(
    lake: Lake, gold_version: str | None, current_cut: date | None, oot_months: int
) -> tuple[Period, Period]:
    """Reference = the `oot_months` labeled months before the out-of-time ones (as the monitor)."""

    current = Period(cut_dates=[current_cut] if current_cut else [], start=current_cut)
    current.end = current_cut
    if not gold_version or not (lake.version_dir("gold", gold_version) / GOLD_TABLE).is_dir():
        return Period(), current
    glob = lake.table_glob("gold", GOLD_TABLE, gold_version)
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT {CUT_DATE}, count(*) FILTER (WHERE {TARGET} IS NOT NULL), count(*) "
            f"FROM read_parquet(?) WHERE {ELIGIBLE} GROUP BY 1 ORDER BY 1",
            [glob],
        ).fetchall()
    finally:
        con.close()
    labeled = [(cut, n) for cut, n, _ in rows if n > 0]
    window = labeled[-2 * oot_months : -oot_months] if len(labeled) >= 2 * oot_months else []
    reference = Period(
        cut_dates=[c for c, _ in window],
        start=window[0][0] if window else None,
        end=window[-1][0] if window else None,
        rows=min(sum(n for _, n in window), REFERENCE_SAMPLE) if window else None,
    )
    current.rows = next((total for cut, _, total in rows if cut == current_cut), 0)
    return reference, current


def _run_costs(lake: Lake, default: Costs) -> dict[str, Costs]:
    """The costs each scoring run decided with (its policy, stored with the results version)."""
    out = {}
    for info in lake.versions("results"):
        policy = info.get("policy") or {}
        known = {k: policy[k] for k in Costs.model_fields if policy.get(k) is not None}
        known.pop("daily_capacity", None)
        out[str(info.get("scoring_run_id") or info.get("run_id"))] = default.model_copy(
            update=known
        )
    return out


def _savings(
    lake: Lake, gold_version: str | None, run_ids: list[str], default: Costs
) -> dict[str, dict[str, Any]]:
    """Realized pesos of each closed scoring run, by the business-impact rule."""
    if not run_ids or not gold_version:
        return {}
    versions = [
        v["version"] for v in lake.versions("results") if "scores" in v.get("history_tables", [])
    ]
    if not versions or not (lake.version_dir("gold", gold_version) / GOLD_TABLE).is_dir():
        return {}
    score_globs = [lake.table_glob("results", "scores", v) for v in versions]
    con = duckdb.connect()
    try:
        frame = con.execute(
            f"SELECT s.scoring_run_id, s.decision, s.roll_loss, s.p_roll_action, "
            f"g.{ROLL_31_PLUS} AS rolled "
            f"FROM read_parquet(?, union_by_name=true) s "
            f"JOIN read_parquet(?) g ON s.{OBLIGATION_ID} = g.{OBLIGATION_ID} "
            f"AND s.{CUT_DATE} = g.{CUT_DATE} "
            f"WHERE s.probability IS NOT NULL AND g.{ROLL_31_PLUS} IS NOT NULL "
            f"AND list_contains(?, s.scoring_run_id)",
            [score_globs, lake.table_glob("gold", GOLD_TABLE, gold_version), run_ids],
        ).df()
    except duckdb.BinderException:  # results scored before the roll columns existed
        return {}
    finally:
        con.close()
    costs = _run_costs(lake, default)
    out = {}
    for run_id, part in frame.groupby("scoring_run_id", sort=False):
        left = part.loc[part["decision"] == "NO_ASSIGN"]
        action = costs.get(str(run_id), default).collection_action
        avoided = float(len(left) * action)
        excess = (left["rolled"].astype(float) - left["p_roll_action"].astype(float)) * left[
            "roll_loss"
        ].astype(float)
        leakage = float(excess.sum())
        out[str(run_id)] = {
            "actions_avoided_cost": round(avoided, 2),
            "leakage_cost": round(leakage, 2),
            "net_savings": round(avoided - leakage, 2),
        }
    return out


def build_report(settings: Settings) -> dict[str, Any]:
    """The newest monitoring run, read from ml_metadata and completed from gold and results."""
    lake = Lake(settings.lake)
    files = _run_files(lake, DRIFT_TABLE)
    if not files:
        raise NeverMonitored(
            "monitoring has never run on this lake: start a monitor job "
            '(POST /v1/jobs {"type": "monitor"}) or run `cobranza monitor`'
        )
    latest = files[-1]
    rows = [{k: json_safe(v) for k, v in r.items()} for r in pq.read_table(latest).to_pylist()]
    run_id = str(rows[0].get("monitoring_run_id") or latest.stem)
    stamp = rows[0]
    score = next((r for r in rows if r["feature"] == SCORE_ROW), None)
    features = [
        {"feature": r["feature"], "psi": r.get("psi"), "status": r["status"]}
        for r in rows
        if r["feature"] != SCORE_ROW
    ]
    score_drift = {
        "psi": score.get("psi") if score else None,
        "status": score["status"] if score else "NO_DATA",
    }
    current_cut = stamp.get("current_cut")
    current_cut = date.fromisoformat(str(current_cut)[:10]) if current_cut else None
    gold_version = stamp.get("gold_version")
    reference, current = _periods(lake, gold_version, current_cut, settings.oot_months)

    performance: list[dict[str, Any]] = []
    perf_file = lake.metadata_dir / PERFORMANCE_TABLE / latest.name
    if perf_file.exists():
        perf_rows = [
            {k: json_safe(v) for k, v in r.items()} for r in pq.read_table(perf_file).to_pylist()
        ]
        saved = _savings(
            lake, gold_version, [str(r["scoring_run_id"]) for r in perf_rows], settings.costs
        )
        for r in perf_rows:
            money = saved.get(str(r["scoring_run_id"]), {})
            performance.append(
                {
                    "scoring_run_id": str(r["scoring_run_id"]),
                    "cut_date": str(r[CUT_DATE])[:10],
                    "model_version": r.get("model_version"),
                    "scored_period": r.get("scored_period"),
                    "rows": r["rows"],
                    "auc": r.get("auc"),
                    "ece": r.get("ece"),
                    "self_cure_rate": r.get("observed_rate"),
                    "predicted_rate": r.get("predicted_rate"),
                    "no_assign": r["no_assign"],
                    "leakage_rate": r.get("leakage_rate"),
                    "actions_avoided_cost": money.get("actions_avoided_cost"),
                    "leakage_cost": money.get("leakage_cost"),
                    "net_savings": money.get("net_savings"),
                }
            )
    run_at = _run_at(run_id)
    return MonitoringReport(
        monitoring_run_id=run_id,
        run_at=run_at,
        runs=len(files),
        status=overall_status(features, score_drift["status"]),
        model_version=None if stamp.get("model_version") is None else str(stamp["model_version"]),
        gold_version=gold_version,
        reference=reference,
        current=current,
        score=ScoreDrift(**score_drift),
        features=[FeatureDrift(**f) for f in features],
        thresholds={"warn_psi": WARN_PSI, "alert_psi": ALERT_PSI, "min_rows": float(MIN_ROWS)},
        performance=[RealizedRun(**p) for p in performance],
    ).model_dump(mode="json")


_cache_lock = threading.Lock()


def _cached_report(request: Request, settings: Settings) -> dict[str, Any]:
    """One computation per (newest monitoring file, results version): reads are cheap after that."""
    lake = Lake(settings.lake)
    files = _run_files(lake, DRIFT_TABLE)
    key = (files[-1].name if files else None, len(files), lake.current_version("results"))
    with _cache_lock:
        cached = getattr(request.app.state, "monitoring_report", None)
        if cached is not None and cached[0] == key:
            return cached[1]
    report = build_report(settings)
    with _cache_lock:
        request.app.state.monitoring_report = (key, report)
    return report


@router.get(
    "",
    response_model=MonitoringReport,
    summary="Latest monitoring run: drift per feature and of the score, realized performance",
    description="Reads the newest `cobranza monitor` run (start one with "
    '`POST /v1/jobs {"type": "monitor"}`). Feature and score PSI of the latest cut against the '
    "reference (the last training months before the out-of-time ones), with status OK / WARN / "
    "ALERT, or INSUFFICIENT_DATA under 100 rows a side. `performance` lists every past scoring run "
    "whose horizon has closed: AUC, calibration, observed self-cure rate and the pesos its "
    "NO_ASSIGN decisions saved against assigning everyone; it is empty until a horizon closes. "
    "404 when monitoring never ran.",
    **guard("viewer", {404: {"model": Problem, "description": "Monitoring never ran."}}),
)
def get_monitoring(request: Request, svc: Services = Depends(services)):
    try:
        return _cached_report(request, svc.settings)
    except NeverMonitored as exc:
        raise HTTPException(404, str(exc)) from None
