"""`/v1/audit` (admin): every mutating call with who, what, when and the outcome, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cobranza.api.deps import Services, guard, services
from cobranza.api.schemas import AuditPage

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage, summary="Audit log, newest first", **guard("admin"))
def read_audit(
    before: Annotated[
        int | None, Query(ge=1, le=2**62, description="next_cursor of a page")
    ] = None,
    key_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    svc: Services = Depends(services),
):
    sql, args = "SELECT * FROM audit WHERE 1=1", []
    if before is not None:
        sql += " AND audit_id < ?"
        args.append(before)
    if key_id:
        sql += " AND key_id = ?"
        args.append(key_id)
    sql += " ORDER BY audit_id DESC LIMIT ?"
    args.append(limit + 1)
    rows = svc.db.all(sql, tuple(args))
    next_cursor = rows[limit - 1]["audit_id"] if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}
