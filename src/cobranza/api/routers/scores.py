"""`/v1/scores`: the current results, filtered and paginated, as JSON, CSV or Parquet; one obligation."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from cobranza.api.deps import Services, guard, services
from cobranza.api.results import BadCursor, Filters, NoResults, row_view, to_csv, to_parquet
from cobranza.api.schemas import Decision, Problem, Score, ScorePage
from cobranza.export import csv_format

router = APIRouter(prefix="/v1/scores", tags=["scores"])
PARQUET = "application/vnd.apache.parquet"
_NO_RESULTS = {404: {"model": Problem, "description": "No results yet, or unknown obligation."}}


def negotiate(fmt: str | None, accept: str) -> str:
    """`format` wins over `Accept`; JSON unless CSV or Parquet is asked for."""
    if fmt:
        return fmt
    accept = accept.lower()
    if "text/csv" in accept:
        return "csv"
    if "parquet" in accept:
        return "parquet"
    return "json"


@router.get(
    "",
    response_model=ScorePage,
    summary="Scores of the current results version, filtered, cursor-paginated",
    description="`sort=obligation` (default) orders by cut_date then obligation_id. `sort=risk` "
    "is the collections team's calling order, the one in which the policy gives a cut's capacity: "
    "per cut date, obligations with no covering mandate first (ASSIGN by rule, no expected "
    "benefit), then the largest expected benefit of managing, then the largest roll loss (among "
    "NO_ASSIGN rows: the closest to being worth managing first). Each row carries the self-cure "
    "probability, the roll risks without and with management, the roll loss and the expected "
    "benefit that decided it. Pass `next_cursor` back as `cursor` "
    "(with the same sort) for the next page; `total` (header `X-Total-Count`) is how many rows the "
    "filters select over every page. CSV and Parquet pages carry the next cursor in the "
    "`X-Next-Cursor` header and hold flat columns (reason_1_code ...). CSV for people: `lang=es` "
    "(or `en`) gives headers and codes in words, the probability in percent and each reason "
    "once; `sep=;` writes `;` between cells and decimal commas (Excel where the decimal mark is a "
    "comma), `bom=true` a UTF-8 byte order mark. Every CSV neutralises text cells a spreadsheet "
    "would run as a formula (a leading `'` before `=`, `+`, `-`, `@`, tab, CR) and rounds numbers.",
    **guard(
        "viewer",
        {
            200: {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    PARQUET: {"schema": {"type": "string", "format": "binary"}},
                },
            },
            400: {"model": Problem, "description": "The cursor is invalid or outdated."},
            **_NO_RESULTS,
        },
    ),
)
def list_scores(
    request: Request,
    decision: Decision | None = None,
    product: Annotated[str | None, Query(max_length=50)] = None,
    segment: Annotated[str | None, Query(max_length=50)] = None,
    eligible: bool | None = None,
    min_probability: Annotated[
        float | None, Query(ge=0, le=1, description="Lowest self-cure probability.")
    ] = None,
    max_probability: Annotated[
        float | None, Query(ge=0, le=1, description="Highest self-cure probability.")
    ] = None,
    min_days_past_due: Annotated[int | None, Query(ge=0, le=10_000)] = None,
    max_days_past_due: Annotated[int | None, Query(ge=0, le=10_000)] = None,
    cut_date: date | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Literal["obligation", "risk"] = "obligation",
    format: Literal["json", "csv", "parquet"] | None = None,
    lang: Annotated[
        Literal["es", "en"] | None,
        Query(description="CSV only: the people's table in this language (codes otherwise)."),
    ] = None,
    sep: Annotated[Literal[",", ";"], Query(description="CSV only: cell separator.")] = ",",
    bom: Annotated[bool, Query(description="CSV only: start with a UTF-8 BOM (Excel).")] = False,
    svc: Services = Depends(services),
):
    filters = Filters(
        decision=decision,
        product=product,
        segment=segment,
        eligible=eligible,
        min_probability=min_probability,
        max_probability=max_probability,
        min_days_past_due=min_days_past_due,
        max_days_past_due=max_days_past_due,
        cut_date=cut_date,
    )
    try:
        rows, next_cursor = svc.results.page(filters, limit=limit, cursor=cursor, sort=sort)
        total = svc.results.total(filters)
        snap = svc.results.snapshot()
    except NoResults as exc:
        raise HTTPException(404, str(exc)) from None
    except BadCursor as exc:
        raise HTTPException(400, str(exc)) from None
    kind = negotiate(format, request.headers.get("accept", ""))
    headers = {"X-Results-Version": snap.version, "X-Total-Count": str(total)}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    if kind == "csv":
        body = to_csv(rows, snap.columns, csv_format(sep, bom), lang)
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    if kind == "parquet":
        body = to_parquet(rows, snap.columns, snap.schema)
        return Response(body, media_type=PARQUET, headers=headers)
    items = [row_view(r) for r in rows]
    return JSONResponse(
        {
            "items": items,
            "count": len(items),
            "total": total,
            "next_cursor": next_cursor,
            "results_version": snap.version,
        },
        headers=headers,
    )


@router.get(
    "/{obligation_id}",
    response_model=Score,
    summary="One obligation's score, decision and reason codes",
    description="From the current population; with `cut_date`, from the scores history. "
    "Async on purpose: an in-memory lookup, no thread hop on the hot path.",
    **guard("viewer", _NO_RESULTS),
)
async def get_score(
    obligation_id: Annotated[str, Path(min_length=1, max_length=100)],
    cut_date: date | None = None,
    svc: Services = Depends(services),
):
    try:
        row = svc.results.one(obligation_id, cut_date)
    except NoResults as exc:
        raise HTTPException(404, str(exc)) from None
    if row is None:
        # the id is not repeated: whatever the caller sent, it is not echoed back
        raise HTTPException(404, "this obligation is not in the scored population")
    return JSONResponse(row)
