"""`/v1/models`: registered model versions (metrics per part, gate result) and manual promotion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import JSONResponse

from cobranza.api.deps import Services, audit, guard, services
from cobranza.api.schemas import ModelList, ModelVersion, Problem, PromoteRequest, json_safe
from cobranza.errors import CobranzaError

router = APIRouter(prefix="/v1/models", tags=["models"])
Version = Annotated[str, Path(min_length=1, max_length=20, pattern=r"^[0-9]+$")]


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [json_safe(dict(r)) for r in rows]
    for row in rows:
        row["version"] = str(row.get("version"))
    return rows


def _models(svc: Services) -> list[dict[str, Any]]:
    from cobranza.ml.registry import list_models  # MLflow, loaded on the first registry call

    try:
        return _jsonable(list_models(svc.settings))
    except CobranzaError as exc:
        raise HTTPException(503, f"model registry unavailable: {exc}") from None


def _is_champion(row: dict[str, Any]) -> bool:
    aliases = row.get("aliases") or []
    return "champion" in aliases or bool(row.get("champion"))


@router.get("", response_model=ModelList, summary="Registered model versions", **guard("viewer"))
def list_versions(svc: Services = Depends(services)):
    rows = _models(svc)
    champion = next((r["version"] for r in rows if _is_champion(r)), None)
    return JSONResponse({"items": rows, "champion": champion})


@router.get(
    "/{version}",
    response_model=ModelVersion,
    summary="One model version: metrics per part (train, test, out-of-time), gate result",
    **guard("viewer", {404: {"model": Problem}}),
)
def get_version(version: Version, svc: Services = Depends(services)):
    for row in _models(svc):
        if row["version"] == version:
            return JSONResponse(row)
    raise HTTPException(404, f"no registered model version {version}")


@router.post(
    "/{version}/promote",
    response_model=ModelVersion,
    summary="Make a version the champion (admin); who and why are recorded",
    **guard("admin", {404: {"model": Problem}, 409: {"model": Problem}}),
)
def promote_version(
    request: Request, version: Version, body: PromoteRequest, svc: Services = Depends(services)
):
    from cobranza.ml.registry import promote  # MLflow, loaded on the first registry call

    principal = request.state.principal
    audit(request, "model.promote", {"version": version, "reason": body.reason})
    if not any(r["version"] == version for r in _models(svc)):
        raise HTTPException(404, f"no registered model version {version}")
    who = f"api:{principal.name} ({principal.key_id})"
    try:
        promote(svc.settings, version, who, body.reason)
    except CobranzaError as exc:
        raise HTTPException(409, str(exc)) from None
    svc.champion.refresh_now()
    for row in _models(svc):
        if row["version"] == version:
            return JSONResponse(row)
    raise HTTPException(404, f"no registered model version {version}")
