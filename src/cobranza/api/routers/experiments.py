"""`/v1/experiments`: the randomized holdout's report over the current gold (`docs/experiments.md`)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse

from cobranza.api.deps import Services, guard, services
from cobranza.api.experiment_schemas import ExperimentReport
from cobranza.api.schemas import Problem
from cobranza.errors import CobranzaError

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


@router.get(
    "",
    response_model=ExperimentReport,
    summary="The holdout's effects: cure, roll and cost, HOLDOUT - ASSIGNED, by cut and pooled",
    description="`cobranza experiment report --json` over the current gold version: for every "
    "closed cut and arm the debit-only and any-channel cure rates, the roll rate and the realized "
    "cost per obligation; HOLDOUT - ASSIGNED with 95% intervals and p-values, pooled over the "
    "randomized cuts (stratified by cut); the rows needed to detect `mde` on the roll rate.",
    **guard(
        "viewer",
        {404: {"model": Problem, "description": "No gold, or no closed horizon with an arm."}},
    ),
)
def get_experiments(
    mde: float | None = Query(
        None, gt=0, lt=1, description="Minimum detectable effect on the roll rate (absolute)."
    ),
    population: Literal["eligible", "all"] = Query(
        "eligible", description="Rows compared: the eligible ones (the model's population) or all."
    ),
    svc: Services = Depends(services),
):
    # the report brings pandas and SciPy: loaded with the first call, off the service's start
    from cobranza.decision.experiment_report import report

    try:
        result = report(svc.settings, mde=mde, population=population)
    except CobranzaError as exc:  # no gold yet, or nothing labeled with an arm
        raise HTTPException(404, str(exc)) from None
    return JSONResponse(result.to_json())
