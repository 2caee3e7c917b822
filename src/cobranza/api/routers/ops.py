"""Operations: `/healthz` and `/readyz` (open), `/metrics` (open, Prometheus text format).

`/metrics` is open on purpose: it holds request counts, latencies and job counts only (no business
figures, no identifiers), and Prometheus scrapers rarely carry API keys. Restrict it at the network
if needed.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cobranza.api.champion import NoChampion
from cobranza.api.deps import Services, services
from cobranza.api.schemas import Health, Ready

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz():
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: lake readable, control DB writable, champion model loadable",
    responses={503: {"model": Ready, "description": "Some check failed (see `checks`)."}},
)
def readyz(svc: Services = Depends(services)):
    checks: dict[str, object] = {}
    lake = svc.jobs.lake
    checks["lake"] = lake.root.is_dir() and os.access(lake.root, os.R_OK | os.W_OK)
    try:
        svc.db.one("SELECT count(*) AS n FROM jobs")
        checks["control_db"] = True
    except Exception:
        checks["control_db"] = False
    try:
        checks["model"] = svc.champion.get().version
    except NoChampion:
        checks["model"] = False
    checks["results_version"] = lake.current_version("results") if checks["lake"] else None
    ok = bool(checks["lake"] and checks["control_db"] and checks["model"])
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (open)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(svc: Services = Depends(services)):
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)
