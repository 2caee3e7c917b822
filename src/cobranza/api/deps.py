"""Dependencies shared by the routers: the service container and authentication by role.

A key is sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. No key or an unknown/revoked
key gives 401 (decided by RequestMiddleware before the body is read); a key whose role is below the
route's gives 403 (decided here, by route). Each guarded route carries its
minimum role in the OpenAPI document (`x-required-role`), which the tests read to check every route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cobranza.api.batcher import PredictBatcher
from cobranza.api.champion import ChampionCache
from cobranza.api.control import ControlDB
from cobranza.api.jobs import JobManager
from cobranza.api.keys import Principal
from cobranza.api.limits import AuditRetention, RefusalLog
from cobranza.api.observability import Metrics, authenticate_headers
from cobranza.api.results import ResultsReader
from cobranza.api.schemas import Problem
from cobranza.api.webhooks import Webhooks
from cobranza.config import Settings

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <key>`")


@dataclass
class Services:
    settings: Settings
    db: ControlDB
    jobs: JobManager
    webhooks: Webhooks
    results: ResultsReader
    champion: ChampionCache
    metrics: Metrics
    batcher: PredictBatcher
    refusals: RefusalLog
    retention: AuditRetention


def services(request: Request) -> Services:
    return request.app.state.services


def require(role: str):
    # `_bearer` and `_api_key` only document the two ways to send a key in OpenAPI: the key was
    # checked by RequestMiddleware before the body was read, and its principal is reused here
    # (one key lookup per request)
    async def dependency(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        api_key: str | None = Depends(_api_key),
    ) -> Principal:
        principal = getattr(request.state, "principal", None)
        if principal is None:  # a guarded route outside /v1, or an app without the middleware
            principal, problem = authenticate_headers(
                request.app.state.services.db,
                request.headers.getlist("authorization"),
                request.headers.getlist("x-api-key"),
            )
            if principal is None:
                raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})
            request.state.principal = principal
        if not principal.allows(role):
            raise HTTPException(
                403, f"this route needs the {role} role; the key has role {principal.role}"
            )
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


def guard(role: str, responses: dict[int, Any] | None = None) -> dict[str, Any]:
    """Route keyword arguments: the auth dependency, the documented refusals, the role in OpenAPI."""
    documented: dict[int | str, Any] = {
        401: {"model": Problem, "description": "No key, or an unknown or revoked key."},
        403: {"model": Problem, "description": f"The key's role is below {role}."},
        429: {
            "model": Problem,
            "description": "Rate limit of the key or the client address; see Retry-After.",
        },
    }
    documented.update(responses or {})
    return {
        "dependencies": [Depends(require(role))],
        "responses": documented,
        "openapi_extra": {"x-required-role": role},
    }


def audit(request: Request, action: str, detail: Any = None) -> None:
    """Name the action (and a small detail) of a mutating call for the audit row."""
    request.state.audit_action = action
    if detail is not None:
        request.state.audit_detail = detail
