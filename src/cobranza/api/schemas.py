"""Pydantic models of the API's requests and responses (what `/openapi.json` documents).

Obligations are identified by `obligation_id` and clients by `client_key` (pseudonym) only: no model
here has a field for personal data.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from cobranza.api.webhooks import EVENTS
from cobranza.stages import JobType

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
Role = Literal["viewer", "operator", "admin"]
Decision = Literal["ASSIGN", "NO_ASSIGN"]


def json_safe(value: Any) -> Any:
    """A value read from a store (Parquet rows, registry tags) as a response can carry it: numpy
    and Arrow scalars as Python values, NaN and infinities as null, unknown objects as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool | date):  # date: datetime too
        return value
    if hasattr(value, "item"):  # numpy and Arrow scalars
        return json_safe(value.item())
    return str(value)


class Problem(BaseModel):
    detail: Any = Field(..., description="What is wrong, in words (or pydantic's error list).")


class JobProgress(BaseModel):
    fraction: float | None = Field(
        None, description="Share of the zones this job writes that it has published (0 to 1)."
    )
    zones: list[str] = Field(default_factory=list, description="Lake zones the job writes.")
    zones_published: list[str] = Field(default_factory=list)


class Job(BaseModel):
    job_id: str
    type: JobType
    params: dict[str, Any]
    status: JobStatus
    progress: JobProgress
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = Field(None, description="Run time so far, or in total once finished.")
    created_by: str | None = Field(None, description="Key id that submitted the job.")
    returncode: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = Field(
        None, description="The command's JSON summary (stdout of `cobranza --json <command>`)."
    )
    log_tail: list[str] | None = Field(None, description="Last lines of the job's stderr.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "job_id": "4f1c2a9e0b7d4c11",
                    "type": "score",
                    "params": {"as_of": None},
                    "status": "succeeded",
                    "progress": {"fraction": 1.0, "zones": ["results"], "zones_published": []},
                    "created_at": "2026-01-31T10:00:00.000+00:00",
                    "started_at": "2026-01-31T10:00:00.050+00:00",
                    "finished_at": "2026-01-31T10:00:09.120+00:00",
                    "seconds": 9.07,
                    "created_by": "a1b2c3d4e5f6",
                    "returncode": 0,
                    "error": None,
                    "result": {"obligations": 5210, "no_assign": 1830},
                    "log_tail": [],
                }
            ]
        }
    )


class JobList(BaseModel):
    items: list[Job]


class JobConflictBody(BaseModel):
    detail: str
    running_job_id: str = Field(..., description="The job that writes the same zone.")
    running_job_type: str
    running_job_status: str


class Reason(BaseModel):
    rank: int = Field(..., ge=1, le=3)
    code: str = Field(..., description="Reason code (feature or rule).")
    text: str | None = Field(None, description="Plain-words explanation.")
    contribution: float | None = Field(None, description="Contribution to the log-odds.")


class Score(BaseModel):
    obligation_id: str
    cut_date: date
    client_key: str | None = Field(None, description="Keyed-hash pseudonym of the client.")
    product: str | None = None
    segment: str | None = None
    days_past_due: int | None = None
    amount_past_due: float | None = None
    eligible: bool | None = None
    probability: float | None = Field(
        None,
        description="Calibrated probability of self-cure through the debit (null if ineligible).",
    )
    decision: Decision
    capacity_limited: bool | None = None
    threshold: float | None = Field(None, description="NO_ASSIGN iff probability >= threshold.")
    model_version: str | None = None
    scoring_run_id: str | None = None
    call_order: int | None = Field(
        None,
        description="ASSIGN rows: place in the cut's calling order (1 = first to call), the "
        "`sort=risk` order among the cut's ASSIGN rows whatever the filters; null for NO_ASSIGN.",
    )
    arm: str | None = Field(
        None,
        description="When the results carry it: the scoring arm, CHAMPION, CHALLENGER or HOLDOUT "
        "(the experiment's control group: NO_ASSIGN, do not contact); in the bank's assignments "
        "ASSIGNED, HOLDOUT or RULE.",
    )
    reasons: list[Reason] = Field(
        default_factory=list, description="Up to three, strongest first; a repeated one once."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "obligation_id": "OB0000123",
                    "cut_date": "2026-01-31",
                    "client_key": "c6a1f0e9d2b34a77",
                    "product": "CONSUMER_LOAN",
                    "segment": "MASS",
                    "days_past_due": 6,
                    "amount_past_due": 412000.0,
                    "eligible": True,
                    "probability": 0.83,
                    "decision": "NO_ASSIGN",
                    "capacity_limited": False,
                    "threshold": 0.71,
                    "model_version": "3",
                    "scoring_run_id": "20260131T100000-1a2b3c4d",
                    "reasons": [
                        {
                            "rank": 1,
                            "code": "balance_to_installment",
                            "text": "Account balance covers the installment 2.4 times",
                            "contribution": 0.62,
                        }
                    ],
                }
            ]
        }
    )


class ScorePage(BaseModel):
    items: list[Score]
    count: int = Field(..., description="Rows in this page.")
    total: int = Field(..., description="Rows the filters select, over every page.")
    next_cursor: str | None = Field(
        None, description="Opaque; pass as `cursor` for the next page. Null on the last page."
    )
    results_version: str


class CutSummary(BaseModel):
    cut_date: date
    population: int
    assign: int
    no_assign: int
    mean_probability: float | None = None
    expected_savings: float | None = Field(
        None, description="COP against assigning everyone, with the costs of the run's policy."
    )
    results_version: str | None = Field(None, description="The run whose decisions these are.")
    model_version: str | None = None
    is_current: bool = Field(..., description="The cut is in the current population.")


class GroupSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    population: int
    assign: int
    no_assign: int
    expected_savings: float


class Summary(BaseModel):
    results_version: str
    scoring_run_id: str | None
    model_version: str | None
    cut_date_min: date | None
    cut_date_max: date | None
    published_at: str | None
    population: int
    eligible: int
    decisions: dict[str, int]
    holdout: int = Field(
        0,
        description="NO_ASSIGN rows of the experiment's control group (arm HOLDOUT): not to "
        "contact, never in the worklist.",
    )
    threshold: float | None
    mean_probability: float | None
    amount_past_due: float
    expected_savings: float = Field(
        ...,
        description="Expected pesos saved against assigning everyone: per NO_ASSIGN obligation, "
        "collection_action - (1 - p) * (unmanaged_fixed + unmanaged_share_past_due * amount).",
    )
    costs: dict[str, float]
    by_product: list[GroupSummary]
    by_segment: list[GroupSummary]


class ModelVersion(BaseModel):
    """A registered model version as `cobranza.ml.registry.list_models` reports it."""

    model_config = ConfigDict(extra="allow")
    version: str


class ModelList(BaseModel):
    items: list[ModelVersion]
    champion: str | None = None


class PromoteRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "better OOT AUC after the income shock"}]},
    )
    reason: str = Field(..., min_length=3, max_length=500, description="Why, for the record.")


class PredictObligation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    obligation_id: str = Field(..., min_length=1, max_length=100)
    cut_date: date | None = Field(None, description="Default: today.")
    eligible: bool = Field(True, description="Has an active debit mandate (else ASSIGN by rule).")
    features: dict[str, float | int | bool | str | None] = Field(
        ...,
        description="Feature values by name (gold column names); every feature of the champion "
        "is required (null allowed), unknown names are refused.",
    )


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "obligations": [
                        {
                            "obligation_id": "OB0000123",
                            "cut_date": "2026-01-31",
                            "eligible": True,
                            "features": {
                                "product": "CONSUMER_LOAN",
                                "segment": "MASS",
                                "days_past_due": 6,
                                "amount_past_due": 412000.0,
                            },
                        }
                    ]
                }
            ]
        },
    )
    obligations: list[PredictObligation] = Field(..., min_length=1, max_length=1000)


class Prediction(BaseModel):
    obligation_id: str
    cut_date: date
    eligible: bool
    probability: float | None
    decision: Decision
    capacity_limited: bool
    reasons: list[Reason]
    arm: str = Field(
        "CHAMPION",
        description="CHAMPION, or HOLDOUT: the experiment's control group (NO_ASSIGN, do not "
        "contact); the same arm batch scoring gives the same obligation and cut.",
    )


class PredictResponse(BaseModel):
    model_version: str
    threshold: float | None
    predictions: list[Prediction]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "http://n8n.internal:5678/webhook/cobranza",
                    "events": ["job.succeeded", "job.failed"],
                    "description": "n8n: send the NO_ASSIGN list to the collections team",
                }
            ]
        },
    )
    url: HttpUrl = Field(..., description="http(s) URL called with a signed JSON body.")
    events: list[Literal[EVENTS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(EVENTS), min_length=1, max_length=len(EVENTS)
    )
    description: str | None = Field(None, max_length=300)


class Webhook(BaseModel):
    webhook_id: str
    url: str
    events: list[str]
    description: str | None
    created_at: str
    created_by: str | None
    active: bool


class WebhookCreated(Webhook):
    secret: str = Field(
        ...,
        description="HMAC-SHA256 key of the `X-Cobranza-Signature: sha256=<hex>` header; shown once.",
    )


class Delivery(BaseModel):
    delivery_id: str
    webhook_id: str
    job_id: str | None
    event: str
    attempt: int
    at: str
    status_code: int | None
    ok: bool
    error: str | None
    duration_ms: float | None


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "viewer", "name": "power-bi"}]}
    )
    role: Role
    name: str = Field(..., min_length=1, max_length=100, pattern=r"\S")


class ApiKey(BaseModel):
    key_id: str
    name: str
    role: Role
    created_at: str
    created_by: str | None
    revoked_at: str | None


class ApiKeyCreated(BaseModel):
    key: str = Field(..., description="The key itself; shown once, stored only as a hash.")
    key_id: str
    role: Role
    name: str
    created_at: str


class AuditEntry(BaseModel):
    audit_id: int
    at: str
    key_id: str | None
    key_name: str | None
    role: str | None
    method: str
    path: str
    action: str | None
    status: int
    outcome: str
    request_id: str | None
    detail: str | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: int | None = Field(None, description="Pass as `before` for older entries.")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, Any]


class ExperimentArm(BaseModel):
    arm: str = Field(..., description="HOLDOUT, ASSIGNED (or RULE, shown by cut, never compared).")
    rows: int
    cure_debit_rate: float = Field(..., description="Share that self-cured through the debit.")
    cure_any_rate: float = Field(..., description="Share cured through any channel.")
    roll_rate: float = Field(..., description="Share at 31+ days past due at the next cut.")
    cost_per_obligation: float = Field(
        ..., description="Realized cost: the collection action when managed, the roll's loss."
    )


class ExperimentEffect(BaseModel):
    metric: str
    difference: float = Field(..., description="HOLDOUT - ASSIGNED.")
    ci_low: float
    ci_high: float
    p_value: float
    se: float


class ExperimentCut(BaseModel):
    cut_date: date
    randomized: bool = Field(..., description="Both arms present: its effects are computed.")
    arms: list[ExperimentArm]
    effects: list[ExperimentEffect]


class ExperimentSampleSize(BaseModel):
    metric: str
    mde: float
    alpha: float
    power: float
    base_rate: float
    ratio: float = Field(..., description="ASSIGNED rows per HOLDOUT row.")
    holdout_rows: int | None = Field(
        ..., description="Null when no rate lies `mde` away from the base rate."
    )
    assigned_rows: int | None
    holdout_rows_per_cut: float | None
    cuts_needed: int | None


class ExperimentReport(BaseModel):
    """`cobranza experiment report --json`: arms and effects pooled over the randomized cuts."""

    gold_version: str
    population: Literal["eligible", "all"]
    comparison: str
    estimator: str
    cuts_pooled: list[date]
    arms: list[ExperimentArm]
    effects: list[ExperimentEffect]
    sample_size: ExperimentSampleSize | None
    cuts: list[ExperimentCut]
