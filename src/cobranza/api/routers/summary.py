"""`/v1/summary`: population, decisions and expected savings of the current results version, and by cut."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from cobranza.api.deps import Services, guard, services
from cobranza.api.results import NoResults
from cobranza.api.schemas import CutSummary, Problem, Summary

router = APIRouter(prefix="/v1/summary", tags=["summary"])


@router.get(
    "",
    response_model=Summary,
    summary="Population, decision counts, expected savings and the costs behind them",
    **guard("viewer", {404: {"model": Problem, "description": "No results yet."}}),
)
def get_summary(svc: Services = Depends(services)):
    try:
        return JSONResponse(svc.results.summary(svc.settings.costs))
    except NoResults as exc:
        raise HTTPException(404, str(exc)) from None


@router.get(
    "/cuts",
    response_model=list[CutSummary],
    summary="Decisions and expected savings per cut over the scores history",
    description="One row per scored cut, from the last scoring run of that cut (a re-scored cut "
    "replaces the earlier run); its expected savings are the sum of -expected_benefit over its "
    "NO_ASSIGN rows, as that run computed them under its policy's costs. The realized side "
    "of a closed cut is in `GET /v1/monitoring` (`performance`).",
    **guard("viewer", {404: {"model": Problem, "description": "No results yet."}}),
)
def get_cuts(svc: Services = Depends(services)):
    try:
        return JSONResponse(svc.results.cuts())
    except NoResults as exc:
        raise HTTPException(404, str(exc)) from None
