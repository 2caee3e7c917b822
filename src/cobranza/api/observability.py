"""Request plumbing: request ids, body size limit, Prometheus metrics, JSON access logs and the audit.

One pure-ASGI middleware wraps every request:
- `/v1` requests are authenticated here, before routing and before the body is read: no key, an
  unknown or revoked key, two different keys or a repeated key header is 401 (so a body FastAPI
  cannot parse tells a caller without a key nothing); the route's dependency checks the role;
- `X-Request-ID` is taken from the request (if sane) or generated, and echoed in the response;
- `X-Content-Type-Options: nosniff` on every response, `Cache-Control: no-store` on `/v1` ones;
- bodies larger than `api_max_body_bytes` are refused with 413 (by Content-Length, or while reading);
- request count and latency per route template and status go to a per-app Prometheus registry;
- one JSON log line per request (route, status, milliseconds, key id; never bodies or query values);
- `/v1` requests are rate-limited per client address (before authentication) and per key
  (after it): 429 with `Retry-After` (`limits.RateLimiter`);
- every mutating call (POST, PUT, PATCH, DELETE) of a valid key is written to the audit table with
  who, what, when and the outcome, including refusals (403, 409, 413, 422). Calls without a valid
  key (401) are counted in `/metrics` and sampled into the audit off the event loop
  (`limits.RefusalLog`): a flood of them writes a few rows, not one each. Rate-limited calls (429)
  are counted in the request metrics, not audited.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cobranza.api.control import ControlDB, now_iso
from cobranza.api.keys import Principal, authenticate
from cobranza.api.limits import RateLimiter, RefusalLog, retry_after

log = logging.getLogger("cobranza.api")
access_log = logging.getLogger("cobranza.api.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# POSTs that change nothing (a computation with a body): not audited, and online scoring must not
# pay a database commit per call. Their access log line and metrics are still written.
READ_ONLY_POSTS = {"/v1/predict"}
_STD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the service's loggers (uvicorn's access log is replaced by ours)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("cobranza.api", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def _read_headers(scope: Scope) -> tuple[dict[str, str], list[str], list[str]]:
    """(headers by lower-case name, every Authorization value, every X-API-Key value): a repeated
    credential header stays visible, so admission can refuse it."""
    headers: dict[str, str] = {}
    authorization: list[str] = []
    api_key: list[str] = []
    for k, v in scope["headers"]:
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        headers[name] = value
        if name == "authorization":
            authorization.append(value)
        elif name == "x-api-key":
            api_key.append(value)
    return headers, authorization, api_key


class Metrics:
    def __init__(self, job_counts: Any):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cobranza_api_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cobranza_api_request_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.registry.register(_JobsCollector(job_counts))


class _JobsCollector:
    """Jobs by status, read from the control DB at scrape time (survives restarts)."""

    def __init__(self, job_counts: Any):
        self.job_counts = job_counts

    def collect(self):
        gauge = GaugeMetricFamily(
            "cobranza_jobs", "Jobs in the control DB by status.", labels=["status"]
        )
        counts = self.job_counts()
        for status in ("queued", "running", "succeeded", "failed", "cancelled", "interrupted"):
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge


class BodyTooLarge(HTTPException):
    """Raised while reading the body; FastAPI re-raises HTTPExceptions met while parsing."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than the limit of {limit} bytes")


def is_versioned(path: str) -> bool:
    """`/v1` routes: every one needs a key, checked before the body is read."""
    return path == "/v1" or path.startswith("/v1/")


def presented_key(authorization: list[str], api_key: list[str]) -> tuple[str | None, str | None]:
    """The key a request carries, or the reason it has none usable: (key, None) or (None, why).

    `Authorization: Bearer <key>` (scheme case-insensitive) or `X-API-Key: <key>`; the same key in
    both is fine, two different keys or a repeated header is refused.
    """
    if len(authorization) > 1 or len(api_key) > 1:
        return None, "more than one Authorization or X-API-Key header was sent; send one key"
    bearer = None
    if authorization:
        scheme, credentials = get_authorization_scheme_param(authorization[0])
        if scheme.lower() == "bearer" and credentials:
            bearer = credentials
    presented = {k for k in (api_key[0] if api_key else None, bearer) if k}
    if len(presented) > 1:
        return None, "two different keys were sent (Authorization and X-API-Key); send one"
    if not presented:
        return None, "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
    return presented.pop(), None


def authenticate_headers(
    db: ControlDB, authorization: list[str], api_key: list[str]
) -> tuple[Principal | None, str | None]:
    """(principal, None) for a valid key, else (None, the 401 message)."""
    key, problem = presented_key(authorization, api_key)
    if key is None:
        return None, problem
    principal = authenticate(db, key)
    if principal is None:
        return None, "unknown or revoked API key"
    return principal, None


_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_WWW_AUTHENTICATE = [(b"www-authenticate", b"Bearer")]


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        metrics: Metrics,
        db: ControlDB,
        routes: list[BaseRoute] | None = None,
        per_key: RateLimiter | None = None,
        per_address: RateLimiter | None = None,
        refusals: RefusalLog | None = None,
    ):
        self.app = app
        self.max_body = max_body
        self.metrics = metrics
        self.db = db
        self.routes = routes if routes is not None else []
        self.per_key = per_key or RateLimiter(0, 1)
        self.per_address = per_address or RateLimiter(0, 1)
        self.refusals = refusals

    def _template(self, scope: Scope) -> str | None:
        """The route template of a request refused before routing (metrics, logs, audit)."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return getattr(route, "path", None)
            if match is Match.PARTIAL and partial is None:
                partial = getattr(route, "path", None)
        return partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers, authorization, api_key = _read_headers(scope)
        rid = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        method = scope["method"]
        versioned = is_versioned(scope.get("path", ""))
        status = {"code": 500, "started": False}
        refused_route: str | None = None
        # every response: nosniff; /v1 (scores, client pseudonyms): never cached by a browser/proxy
        added = [(b"x-request-id", rid.encode("latin-1")), _NOSNIFF]
        if versioned:
            added.append(_NO_STORE)
        replaced = {name for name, _ in added}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() not in replaced),
                    *added,
                ]
            await send(message)

        received = {"n": 0}

        async def receive_wrapper() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received["n"] += len(message.get("body", b""))
                if received["n"] > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        try:
            address = (scope.get("client") or ("unknown",))[0]
            wait, refusal = self._admit(versioned, address, state, authorization, api_key)
            length = headers.get("content-length")
            if wait:
                refused_route = self._template(scope)
                state["not_audited"] = True
                await _send_json(
                    send_wrapper,
                    429,
                    {"detail": "too many requests; retry after the time in Retry-After"},
                    [(b"retry-after", retry_after(wait).encode())],
                )
            elif refusal is not None:
                refused_route = self._template(scope)
                state["not_audited"] = True
                if self.refusals is not None:
                    self.refusals.refused(
                        address, _reason(refusal), method, scope.get("path", ""), rid
                    )
                await _send_json(send_wrapper, 401, {"detail": refusal}, _WWW_AUTHENTICATE)
            elif length is not None and (not length.isdigit() or int(length) > self.max_body):
                await self._too_large(send_wrapper)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge:
            if not status["started"]:
                await self._too_large(send_wrapper)
        except Exception:
            log.exception("unhandled error", extra={"request_id": rid})
            if not status["started"]:
                await _send_json(
                    send_wrapper,
                    500,
                    {"detail": "internal error", "request_id": rid},
                )
        finally:
            elapsed = time.perf_counter() - t0
            self._record(scope, state, refused_route, status["code"], elapsed)

    def _record(
        self, scope: Scope, state: dict, refused_route: str | None, code: int, elapsed: float
    ) -> None:
        """Metrics, the access log and, for a mutating call that reached a route, the audit."""
        method, rid = scope["method"], state["request_id"]
        route = scope.get("route")
        template = getattr(route, "path", None) or refused_route or "<unmatched>"
        self.metrics.requests.labels(method, template, str(code)).inc()
        self.metrics.latency.labels(method, template).observe(elapsed)
        principal = state.get("principal")
        access_log.info(
            "request",
            extra={
                "request_id": rid,
                "method": method,
                "route": template,
                "status": code,
                "ms": round(elapsed * 1000, 2),
                "key_id": getattr(principal, "key_id", None),
            },
        )
        if method in MUTATING and template not in READ_ONLY_POSTS and not state.get("not_audited"):
            self._audit(scope, state, method, template, code, rid)

    def _admit(
        self,
        versioned: bool,
        address: str,
        state: dict[str, Any],
        authorization: list[str],
        api_key: list[str],
    ) -> tuple[float, str | None]:
        """(seconds to wait for a rate limit or 0, the 401 message or None) of a request.

        The address's bucket first, then the key, before the body is read: a caller without a
        valid key learns nothing from body parsing (401, not 400/422); the route's dependency
        reuses the principal and checks the role (403)."""
        if not versioned:
            return 0.0, None
        wait = self.per_address.take(address)
        if wait:
            return wait, None
        principal, refusal = authenticate_headers(self.db, authorization, api_key)
        if principal is None:
            return 0.0, refusal
        state["principal"] = principal
        return self.per_key.take(principal.key_id), None

    async def _too_large(self, send: Send) -> None:
        await _send_json(
            send,
            413,
            {"detail": f"request body larger than the limit of {self.max_body} bytes"},
        )

    def _audit(
        self, scope: Scope, state: dict[str, Any], method: str, template: str, code: int, rid: str
    ) -> None:
        principal = state.get("principal")
        outcome = "ok" if code < 400 else ("denied" if code in (401, 403) else "error")
        try:
            self.db.execute(
                "INSERT INTO audit (at, key_id, key_name, role, method, path, action, status, "
                "outcome, request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now_iso(),
                    getattr(principal, "key_id", None),
                    getattr(principal, "name", None),
                    getattr(principal, "role", None),
                    method,
                    scope.get("path", "")[:500],
                    state.get("audit_action") or f"{method} {template}",
                    code,
                    outcome,
                    rid,
                    json.dumps(state.get("audit_detail"), default=str)
                    if state.get("audit_detail") is not None
                    else None,
                ),
            )
        except Exception:
            log.exception("audit write failed", extra={"request_id": rid})


def _reason(refusal: str) -> str:
    """A short label of a 401's message for the metrics (no key material)."""
    if refusal.startswith("missing"):
        return "missing"
    if refusal.startswith("unknown"):
        return "unknown_or_revoked"
    return "ambiguous"


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()
) -> None:
    raw = json.dumps(body).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
