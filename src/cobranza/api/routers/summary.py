"""`/v1/summary`: population, decisions and expected savings of the current results version."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from cobranza.api.deps import Services, guard, services
from cobranza.api.results import NoResults
from cobranza.api.schemas import Problem, Summary

router = APIRouter(prefix="/v1/summary", tags=["summary"])


@router.get(
    "",
    response_model=Summary,
    summary="Population, decision counts and expected savings",
    **guard("viewer", {404: {"model": Problem, "description": "No results yet."}}),
)
def get_summary(svc: Services = Depends(services)):
    try:
        return JSONResponse(svc.results.summary(svc.settings.costs))
    except NoResults as exc:
        raise HTTPException(404, str(exc)) from None
