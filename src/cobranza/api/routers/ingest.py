"""`/v1/ingest/{run}/quarantine`: what an ingest run refused, by file, column and reason.

The same report as `cobranza quarantine` and the run's `_quality/` files (`cobranza.ingest.quality`):
line numbers, columns and reasons (e-mails and long digit runs masked), never a refused value.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from cobranza.api.deps import Services, guard, services
from cobranza.api.schemas import Problem
from cobranza.lake import Lake, LakeError

router = APIRouter(prefix="/v1/ingest", tags=["ingest"])
CURRENT = "current"


class FileCounts(BaseModel):
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    duplicates_collapsed: int = 0


class QuarantineGroup(BaseModel):
    file: str = Field(..., description="The file as delivered.")
    column: str = Field(..., description="The column, a key's columns, or `*` for the whole row.")
    personal_column: bool = Field(..., description="The column is personal data in the contract.")
    reason: str = Field(..., description="Why, with e-mails and digit runs of 6+ masked.")
    rows: int = Field(..., description="Rows refused for this reason in this column.")
    cells_with_value: int = Field(..., description="Of those, cells that held a value.")
    first_lines: list[int] = Field(..., description="The first line numbers in the file.")


class QuarantineReport(BaseModel):
    raw_version: str
    as_of: str | None = None
    rows_quarantined: int = Field(..., description="Rows quarantined over every file.")
    files: dict[str, FileCounts]
    total_groups: int = Field(..., description="Groups (file, column, reason) over every page.")
    offset: int
    limit: int
    groups: list[QuarantineGroup]


@router.get(
    "/{run}/quarantine",
    response_model=QuarantineReport,
    summary="An ingest run's quarantine by file, column and reason (no values)",
    description="`run` is a raw version (`GET /v1/jobs` results, `cobranza lake versions`) or "
    "`current`. Groups are ordered by file, then most rows first; page with `offset` and `limit`.",
    **guard("viewer", {404: {"model": Problem, "description": "No such raw version."}}),
)
def quarantine(
    run: Annotated[str, Path(pattern=r"^[0-9A-Za-z_-]{1,80}$")],
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    svc: Services = Depends(services),
) -> QuarantineReport:
    from cobranza.ingest.quality import load_report  # DuckDB and the contract, on first use

    lake = Lake(svc.settings.lake)
    try:
        report = load_report(lake, None if run == CURRENT else run)
    except LakeError as exc:
        raise HTTPException(404, str(exc)) from None
    page = report.groups[offset : offset + limit]
    return QuarantineReport(
        raw_version=report.raw_version,
        as_of=report.as_of,
        rows_quarantined=report.rows_quarantined,
        files={k: FileCounts(**v) for k, v in report.files.items()},
        total_groups=len(report.groups),
        offset=offset,
        limit=limit,
        groups=[
            QuarantineGroup(
                file=g.file,
                column=g.column,
                personal_column=g.personal,
                reason=g.reason,
                rows=g.rows,
                cells_with_value=g.with_value,
                first_lines=g.first_lines,
            )
            for g in page
        ],
    )
