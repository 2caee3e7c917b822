"""`/v1/webhooks` (admin): URLs called with a signed JSON body when a job finishes; delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from cobranza.api.deps import Services, audit, guard, services
from cobranza.api.schemas import Delivery, Problem, Webhook, WebhookCreate, WebhookCreated

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]
_404 = {404: {"model": Problem}}


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register a webhook; the signing secret is returned once",
    description="On each finished job (events job.succeeded, job.failed, job.cancelled, "
    "job.interrupted) the URL gets a POST with a JSON body `{event, sent_at, job}` and the headers "
    "`X-Cobranza-Delivery` (id, the same on retries), `X-Cobranza-Timestamp` (Unix seconds) and "
    "`X-Cobranza-Signature: sha256=<hex HMAC-SHA256 of '<timestamp>.<delivery id>.<raw body>' "
    "with the secret>`; receivers should refuse old timestamps and ids already seen. Failed "
    "deliveries are retried with exponential backoff; every attempt is recorded. Only public "
    "addresses are called unless COBRANZA_API_WEBHOOK_HOSTS lists the host, its address or "
    "network (else 422; checked again on the resolved address at each delivery, redirects never "
    "followed). A `user:password@` in the URL is used to call it and shown as `***@` in every "
    "listing.",
    **guard("admin"),
)
def create_webhook(request: Request, body: WebhookCreate, svc: Services = Depends(services)):
    audit(request, "webhook.create", {"url_host": body.url.host, "events": body.events})
    msg = svc.webhooks.refusal(str(body.url))
    if msg is not None:
        return JSONResponse(
            status_code=422,
            content={"detail": [{"loc": ["body", "url"], "msg": msg, "type": "value_error"}]},
        )
    return svc.webhooks.register(
        str(body.url), list(body.events), body.description, request.state.principal.key_id
    )


@router.get("", response_model=list[Webhook], summary="Registered webhooks", **guard("admin"))
def list_webhooks(svc: Services = Depends(services)):
    return svc.webhooks.list()


@router.delete(
    "/{webhook_id}",
    response_model=Webhook,
    summary="Deactivate a webhook (its delivery log is kept)",
    **guard("admin", _404),
)
def delete_webhook(request: Request, webhook_id: WebhookId, svc: Services = Depends(services)):
    audit(request, "webhook.deactivate", {"webhook_id": webhook_id})
    hook = svc.webhooks.deactivate(webhook_id)
    if hook is None:
        raise HTTPException(404, f"no webhook {webhook_id}")
    return hook


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[Delivery],
    summary="Delivery attempts of a webhook, newest first",
    **guard("admin", _404),
)
def list_deliveries(
    webhook_id: WebhookId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    svc: Services = Depends(services),
):
    if svc.webhooks.get(webhook_id) is None:
        raise HTTPException(404, f"no webhook {webhook_id}")
    return svc.webhooks.deliveries(webhook_id, limit)
