"""Pydantic models of `GET /v1/experiments` (`cobranza experiment report --json`): the holdout's
arms and effects, and the challenger's arm against the champion's."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class ExperimentArm(BaseModel):
    arm: str = Field(
        ...,
        description="HOLDOUT, ASSIGNED (or RULE, shown by cut, never compared); in `challenger`, "
        "CHALLENGER or CHAMPION.",
    )
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


class ExperimentChallenger(BaseModel):
    """The scoring's CHALLENGER arm against its CHAMPION arm, on the closed eligible rows."""

    comparison: str = Field(..., description="CHALLENGER - CHAMPION.")
    challenger_versions: list[str] = Field(
        ..., description="The model versions that decided the pooled CHALLENGER rows."
    )
    champion_versions: list[str]
    cuts_pooled: list[date]
    arms: list[ExperimentArm]
    effects: list[ExperimentEffect] = Field(..., description="CHALLENGER - CHAMPION.")
    cuts: list[ExperimentCut]


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
    challenger: ExperimentChallenger | None = Field(
        None, description="Present once scoring has routed closed rows to a challenger model."
    )
