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
    capacity_limited: bool | None = Field(
        None, description="NO_ASSIGN only because the cut's collection capacity was full."
    )
    p_roll_no_action: float | None = Field(
        None, description="Probability of rolling to 31+ days past due without management."
    )
    p_roll_action: float | None = Field(
        None, description="Probability of rolling to 31+ days past due with management."
    )
    roll_loss: float | None = Field(
        None,
        description="COP a roll to 31+ costs: outstanding balance x provision step of the "
        "product + later collection cost.",
    )
    expected_benefit: float | None = Field(
        None,
        description="COP managing is expected to save: (p_roll_no_action - p_roll_action) x "
        "roll_loss - collection_action; NO_ASSIGN iff negative (null if ineligible).",
    )
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
                    "p_roll_no_action": 0.06,
                    "p_roll_action": 0.04,
                    "roll_loss": 215000.0,
                    "expected_benefit": -3700.0,
                    "model_version": "3",
                    "scoring_run_id": "20260131T100000-1a2b3c4d",
                    "reasons": [
                        {
                            "rank": 1,
                            "code": "MANAGEMENT_DOES_NOT_PAY",
                            "text": "managing does not pay: it lowers the roll risk from 6% to "
                            "4% on a roll loss of 215,000 pesos, 4,300 pesos, less than the 8,000 "
                            "of a collection action (debit self-cure without management 83%)",
                            "contribution": None,
                        },
                        {
                            "rank": 2,
                            "code": "balance_to_installment",
                            "text": "Account balance covers the installment 2.4 times",
                            "contribution": 0.62,
                        },
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
        None,
        description="COP against assigning everyone: the sum of -expected_benefit over the "
        "cut's NO_ASSIGN obligations, as their run computed it (null if that run predates the "
        "expected benefit).",
    )
    results_version: str | None = Field(None, description="The run whose decisions these are.")
    model_version: str | None = None
    is_current: bool = Field(..., description="The cut is in the current population.")


class GroupSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    population: int
    assign: int
    no_assign: int
    expected_savings: float | None


class DecisionCosts(BaseModel):
    """The costs decisions are taken under (`config.Costs`, logged with the run's policy)."""

    collection_action: float = Field(..., description="COP of managing one obligation.")
    later_collection_cost: float = Field(
        ..., description="COP of collecting an obligation that rolled to 31+ days past due."
    )
    provision_step: dict[str, float] = Field(
        ..., description="Share of the outstanding balance provisioned on a roll, by product."
    )
    default_provision_step: float = Field(..., description="The step of an unlisted product.")
    capacity: int | None = Field(None, description="Obligations managed per cut at most.")


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
    challenger: int = Field(
        0,
        description="Rows decided by the challenger model (arm CHALLENGER): normal rows, in the "
        "worklist when ASSIGN.",
    )
    challenger_version: str | None = Field(
        None, description="The challenger model version that decided them (null: none)."
    )
    capacity_limited: int = Field(
        ..., description="NO_ASSIGN obligations only because the capacity was full."
    )
    mean_probability: float | None = Field(None, description="Mean self-cure probability.")
    mean_p_roll_no_action: float | None = Field(
        None, description="Mean probability of rolling to 31+ without management (eligible)."
    )
    mean_p_roll_action: float | None = Field(
        None, description="Mean probability of rolling to 31+ with management (eligible)."
    )
    amount_past_due: float
    expected_savings: float | None = Field(
        ...,
        description="Expected pesos saved against assigning everyone: the sum of "
        "-expected_benefit over the NO_ASSIGN obligations (what managing them would cost beyond "
        "the rolls it prevents); null if the run predates the expected benefit. Net of the "
        "experiment's cost: expected_savings = expected_savings_without_holdout - "
        "expected_holdout_cost.",
    )
    expected_savings_without_holdout: float | None = Field(
        None,
        description="Expected pesos the policy's decisions save against assigning everyone, "
        "each control-group (HOLDOUT) obligation valued as the policy would have decided it.",
    )
    expected_holdout_cost: float | None = Field(
        None,
        description="Expected pesos the experiment's control group costs: the expected benefit "
        "of managing, summed over the HOLDOUT obligations the policy would have assigned (>= 0 "
        "where managing pays).",
    )
    costs: DecisionCosts = Field(..., description="The costs of the run's policy.")
    by_product: list[GroupSummary]
    by_segment: list[GroupSummary]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results_version": "20260131T100000-1a2b3c4d",
                    "scoring_run_id": "20260131T100000-1a2b3c4d",
                    "model_version": "3",
                    "cut_date_min": "2026-01-31",
                    "cut_date_max": "2026-01-31",
                    "published_at": "2026-01-31T10:00:09+00:00",
                    "population": 5210,
                    "eligible": 4720,
                    "decisions": {"ASSIGN": 3380, "NO_ASSIGN": 1830},
                    "capacity_limited": 0,
                    "mean_probability": 0.41,
                    "mean_p_roll_no_action": 0.18,
                    "mean_p_roll_action": 0.12,
                    "amount_past_due": 1523000000.0,
                    "expected_savings": 9150000.0,
                    "expected_savings_without_holdout": 9420000.0,
                    "expected_holdout_cost": 270000.0,
                    "costs": {
                        "collection_action": 8000.0,
                        "later_collection_cost": 30000.0,
                        "provision_step": {"CONSUMER_LOAN": 0.08, "CREDIT_CARD": 0.1},
                        "default_provision_step": 0.05,
                        "capacity": None,
                    },
                    "by_product": [
                        {
                            "product": "CONSUMER_LOAN",
                            "population": 2900,
                            "assign": 1800,
                            "no_assign": 1100,
                            "expected_savings": 5600000.0,
                        }
                    ],
                    "by_segment": [
                        {
                            "segment": "MASS",
                            "population": 3900,
                            "assign": 2600,
                            "no_assign": 1300,
                            "expected_savings": 6400000.0,
                        }
                    ],
                }
            ]
        }
    )


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
    probability: float | None = Field(
        ..., description="Self-cure probability through the debit (null if ineligible)."
    )
    decision: Decision
    capacity_limited: bool
    p_roll_no_action: float | None = Field(
        None, description="Probability of rolling to 31+ without management (null if ineligible)."
    )
    p_roll_action: float | None = Field(
        None, description="Probability of rolling to 31+ with management (null if ineligible)."
    )
    roll_loss: float | None = Field(
        None, description="COP a roll to 31+ costs (provision step on the balance + later cost)."
    )
    expected_benefit: float | None = Field(
        None,
        description="(p_roll_no_action - p_roll_action) x roll_loss - collection_action; "
        "NO_ASSIGN iff negative.",
    )
    reasons: list[Reason]
    arm: str = Field(
        "CHAMPION",
        description="CHAMPION; CHALLENGER: decided by the registered challenger model (a normal "
        "row, contacted when ASSIGN); or HOLDOUT: the experiment's control group (NO_ASSIGN, do "
        "not contact); the same arm batch scoring gives the same obligation and cut.",
    )
    model_version: str | None = Field(
        None, description="The model version that decided this row (the challenger's on its arm)."
    )


class PredictResponse(BaseModel):
    model_version: str = Field(..., description="The champion's version.")
    costs: DecisionCosts = Field(..., description="The costs the decisions were taken under.")
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
