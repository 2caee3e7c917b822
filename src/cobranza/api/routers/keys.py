"""`/v1/keys` (admin): create (shown once), list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from cobranza.api.deps import Services, audit, guard, services
from cobranza.api.keys import issue_key, list_keys, revoke_key
from cobranza.api.schemas import ApiKey, ApiKeyCreated, KeyCreate, Problem

router = APIRouter(prefix="/v1/keys", tags=["keys"])
KeyId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create an API key; the key is returned once and stored only as a hash",
    **guard("admin"),
)
def create(request: Request, body: KeyCreate, svc: Services = Depends(services)):
    audit(request, "key.create", {"role": body.role, "name": body.name})
    created = issue_key(svc.db, body.role, body.name, created_by=request.state.principal.key_id)
    request.state.audit_detail = {"role": body.role, "name": body.name, "key_id": created["key_id"]}
    return created


@router.get("", response_model=list[ApiKey], summary="API keys (never the keys)", **guard("admin"))
def list_all(svc: Services = Depends(services)):
    return list_keys(svc.db)


@router.delete(
    "/{key_id}",
    response_model=ApiKey,
    summary="Revoke an API key",
    **guard("admin", {404: {"model": Problem}}),
)
def revoke(request: Request, key_id: KeyId, svc: Services = Depends(services)):
    audit(request, "key.revoke", {"key_id": key_id})
    row = revoke_key(svc.db, key_id)
    if row is None:
        raise HTTPException(404, f"no key {key_id}")
    return row
