"""`/v1/jobs`: run ingest, etl, train, score or the whole pipeline in a worker process; follow it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from cobranza.api.deps import Services, audit, guard, services
from cobranza.api.jobs import JobConflict, JobLimit, JobRequest
from cobranza.api.schemas import Job, JobConflictBody, JobList, JobStatus, Problem
from cobranza.stages import (
    MONITORING,
    REGISTRY,
    WHOLE_LAKE,
    JobType,
    PathProblem,
    job_stages,
    stage,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JOB_RETRY_SECONDS = 10
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]

_EXAMPLES = {
    "score": {"summary": "Score the latest cut", "value": {"type": "score", "params": {}}},
    "ingest": {
        "summary": "Ingest an extract folder",
        "value": {
            "type": "ingest",
            "params": {"extract_dir": "/data/extracts/2026-01", "dialect": "bank-latin1"},
        },
    },
    "pipeline": {
        "summary": "Simulate and run everything",
        "value": {"type": "pipeline", "params": {"simulate_clients": 2000, "months": 12}},
    },
    "prune": {
        "summary": "Free old lake versions (admin)",
        "value": {"type": "prune", "params": {"keep": 3}},
    },
}


_WRITTEN = {
    REGISTRY: "the model registry",
    MONITORING: "its own ml_metadata files (it runs beside any job but another monitor)",
    WHOLE_LAKE: "removes old versions of raw, silver and gold and runs alone",
}


def _writes_description() -> str:
    """What each job type writes, from the stage table (the input of the conflict rule)."""
    parts = []
    for s in job_stages():
        what = [_WRITTEN.get(w, w) for w in s.writes]
        text = ", ".join(what[:-1]) + " and " + what[-1] if len(what) > 1 else what[0]
        role = f" ({s.role} role)" if s.role != "operator" else ""
        parts.append(f"{s.name}{role} {text}")
    return "; ".join(parts)


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Start a job",
    description="Starts the job in its own worker process and answers at once (202). A job that "
    "writes a zone another queued or running job writes is refused with 409; the body names the "
    "running job. Writes: " + _writes_description() + ".",
    **guard(
        "operator",
        {
            409: {
                "model": JobConflictBody,
                "description": "A job writing the same zone is active.",
            },
            429: {
                "model": Problem,
                "description": "Too many active jobs (COBRANZA_API_MAX_JOBS, in all; "
                "COBRANZA_API_MAX_JOBS_PER_KEY, for this key).",
            },
        },
    ),
)
def create_job(
    request: Request,
    job: Annotated[JobRequest, Body(openapi_examples=_EXAMPLES)],
    svc: Services = Depends(services),
):
    principal = request.state.principal
    audit(request, f"job.create {job.type}", job.params.model_dump(mode="json"))
    role = stage(job.type).role
    if not principal.allows(role):
        raise HTTPException(
            403, f"a {job.type} job needs the {role} role; the key has role {principal.role}"
        )
    try:  # here, not in pydantic: it needs the service's extract roots
        job.params.check_paths(svc.jobs.extract_roots)
    except PathProblem as exc:  # same shape as a validation error; the path is never quoted
        loc = ["body", job.type, "params", exc.field]
        return JSONResponse(
            status_code=422,
            content={"detail": [{"loc": loc, "msg": str(exc), "type": "value_error"}]},
        )
    try:
        created = svc.jobs.submit(job.type, job.params, created_by=principal.key_id)
    except JobLimit as exc:
        return JSONResponse(
            status_code=429,
            content={"detail": f"{exc}; retry when one has finished"},
            headers={"Retry-After": str(JOB_RETRY_SECONDS)},
        )
    except JobConflict as exc:
        return JSONResponse(
            status_code=409,
            content={
                "detail": f"a {exc.running['type']} job ({exc.running['job_id']}) that writes "
                f"the same zone is {exc.running['status']}; retry when it has finished",
                "running_job_id": exc.running["job_id"],
                "running_job_type": exc.running["type"],
                "running_job_status": exc.running["status"],
            },
        )
    request.state.audit_detail = {"job_id": created["job_id"], "type": job.type}
    return JSONResponse(
        status_code=202,
        content=Job.model_validate(created).model_dump(mode="json"),
        headers={"Location": f"/v1/jobs/{created['job_id']}"},
    )


@router.get("", response_model=JobList, summary="List jobs, newest first", **guard("viewer"))
def list_jobs(
    status: JobStatus | None = None,
    type: JobType | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    svc: Services = Depends(services),
):
    return {"items": svc.jobs.list(status=status, job_type=type, limit=limit)}


@router.get(
    "/{job_id}",
    response_model=Job,
    summary="One job: status, progress, timings, log tail, result",
    **guard("viewer", {404: {"model": Problem}}),
)
def get_job(job_id: JobId, svc: Services = Depends(services)):
    job = svc.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    summary="Cancel a job (SIGTERM, then SIGKILL, to its process group)",
    description="A queued or running job becomes `cancelled`; a finished job is returned as it is.",
    **guard("operator", {404: {"model": Problem}}),
)
def cancel_job(request: Request, job_id: JobId, svc: Services = Depends(services)):
    audit(request, "job.cancel", {"job_id": job_id})
    job = svc.jobs.cancel(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job
