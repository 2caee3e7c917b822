"""The FastAPI application: services wired once per app, routers under `/v1`, lifecycle of jobs.

`create_app(settings)` builds everything from the settings (the lake decides where the control DB,
job logs and results are); `serve(settings, host, port)` runs it on uvicorn. Knobs that concern only
the service (webhook retries, champion re-check period, kill grace) come from `COBRANZA_API_*`.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from cobranza import __version__
from cobranza.api.batcher import PredictBatcher
from cobranza.api.champion import ChampionCache
from cobranza.api.control import ControlDB, control_path
from cobranza.api.deps import Services
from cobranza.api.jobs import JobManager
from cobranza.api.limits import AuditRetention, RateLimiter, RefusalLog
from cobranza.api.observability import Metrics, RequestMiddleware, configure_logging
from cobranza.api.protocol import head_deadline_protocol
from cobranza.api.results import ResultsReader
from cobranza.api.routers import (
    audit,
    dashboard,
    experiments,
    ingest,
    jobs,
    keys,
    models,
    monitoring,
    ops,
    predict,
    scores,
    summary,
    webhooks,
)
from cobranza.api.webhooks import Webhooks
from cobranza.config import Settings
from cobranza.errors import CobranzaError
from cobranza.lake import Lake
from cobranza.lake.keys import PseudonymKeyError, pseudonym_key
from cobranza.stages import REGISTRY, job_stages

# jobs that may move the champion alias: those writing the model registry
MODEL_JOBS = tuple(s.name for s in job_stages() if REGISTRY in s.writes)

log = logging.getLogger("cobranza.api")

DESCRIPTION = """
Control plane of **cobranza**: run the pipeline's jobs, read scores and decisions (ASSIGN /
NO_ASSIGN with reason codes), score online, manage models, webhooks and API keys.

Authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>` (create one with
`cobranza keys create --role viewer|operator|admin`). Roles: **viewer** reads results and models,
**operator** also runs and cancels jobs, **admin** also promotes models and manages keys, webhooks
and reads the audit log. Open routes: `/healthz`, `/readyz`, `/metrics`, `/docs`, `/openapi.json`
and the `/dashboard` page (which holds no data).
Obligations are identified by `obligation_id`, clients by `client_key` (a pseudonym) only.
"""


def _list_option(value: Any) -> Any:
    """A list option from the environment: a JSON list, or comma-separated; empty = unset."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class ApiOptions(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COBRANZA_API_", extra="ignore")

    webhook_attempts: int = Field(5, ge=1, le=20, description="Delivery attempts per event.")
    webhook_backoff_seconds: float = Field(
        2.0, ge=0, description="First retry delay; doubles each attempt."
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    champion_check_seconds: float = Field(
        10.0, ge=0, description="How often the champion alias is re-checked."
    )
    kill_grace_seconds: float = Field(
        5.0, ge=0, description="Wait between SIGTERM and SIGKILL on cancel."
    )
    gc_freeze: bool = Field(
        False,
        description="Move the objects alive at startup and after each model load out of the "
        "garbage collector's full passes (`gc.freeze`): a full pass over the ~400k objects of "
        "the loaded service stalls every request for 0.1-0.4 s. `cobranza serve` turns it on.",
    )
    extract_roots: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Folders that job extracts (`ingest.extract_dir`, `pipeline.extract`) must "
        "lie in, after resolving `..` and symlinks. Unset: any folder the service can read "
        "(setting it is recommended). Comma-separated or a JSON list.",
    )
    webhook_hosts: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="What webhooks may call besides public addresses: host names (as written in "
        "the URL), IP addresses or CIDR networks (matched on the resolved address). Unset: "
        "public addresses only (no private, loopback, link-local or multicast). Set: only what "
        "it lists. Comma-separated or a JSON list.",
    )

    rate_per_key: float = Field(
        50.0, ge=0, description="Requests per second each API key may make (token bucket); 0: off."
    )
    burst_per_key: float = Field(100.0, ge=1, description="Requests a key may make at once.")
    rate_per_address: float = Field(
        200.0,
        ge=0,
        description="Requests per second from one client address, with or without a key; 0: off.",
    )
    burst_per_address: float = Field(
        400.0, ge=1, description="Requests one address may make at once."
    )
    audit_retention_days: int = Field(
        400, ge=0, description="Audit rows older than this are deleted (daily); 0 keeps them all."
    )
    max_jobs: int = Field(2, ge=1, description="Jobs running or queued at once, all keys together.")
    max_jobs_per_key: int = Field(
        2, ge=1, description="Jobs running or queued at once started by one API key."
    )
    max_connections: int = Field(
        256, ge=1, description="Open connections uvicorn serves at once; more get 503."
    )
    keep_alive_seconds: float = Field(
        5.0, gt=0, description="An idle keep-alive connection is closed after this long."
    )
    max_connections_per_address: int = Field(
        64,
        ge=1,
        description="Open connections one client address may hold; more get 503 and are closed.",
    )
    head_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A request's line and headers must arrive within this long (from the "
        "connection or the request's first byte), else 408 and the connection is closed.",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A request's body must arrive within this long after its head, else 408 "
        "(if no response has started) and the connection is closed.",
    )

    _lists = field_validator("extract_roots", "webhook_hosts", mode="before")(_list_option)

    def resolved_extract_roots(self) -> tuple[Path, ...] | None:
        if self.extract_roots is None:
            return None
        return tuple(Path(root).resolve() for root in self.extract_roots)


ROUTERS = (
    jobs,
    scores,
    summary,
    models,
    predict,
    webhooks,
    keys,
    audit,
    ops,
    monitoring,
    experiments,
    ingest,
    dashboard,
)


def create_app(settings: Settings, options: ApiOptions | None = None) -> FastAPI:
    """The service over `settings.lake`: its services, the routers under `/v1`, the middleware."""
    options = options or ApiOptions()
    Lake(settings.lake).ensure()
    svc = build_services(settings, options)
    app = FastAPI(
        title="cobranza control plane",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(svc, options),
        # /docs and /openapi.json only: ReDoc and the OAuth2 redirect page are not needed (keys
        # are plain headers) and would be two more open pages
        docs_url=None,  # served below from local files
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    add_docs(app)
    app.state.services = svc
    routers = [m.router for m in ROUTERS]
    for router in routers:
        app.include_router(router)
    app.add_middleware(
        RequestMiddleware,
        max_body=settings.api_max_body_bytes,
        metrics=svc.metrics,
        db=svc.db,
        # the routes themselves (the app's list holds included routers): to name the template
        # of a request refused before routing
        routes=[route for router in routers for route in router.routes],
        per_key=RateLimiter(options.rate_per_key, options.burst_per_key),
        per_address=RateLimiter(options.rate_per_address, options.burst_per_address),
        refusals=svc.refusals,
    )
    _add_error_handlers(app)
    return app


def build_services(settings: Settings, options: ApiOptions) -> Services:
    """The control database, webhooks, jobs, results, the champion and the predict batcher."""
    db = ControlDB(control_path(settings.lake))
    hooks = Webhooks(
        db,
        max_attempts=options.webhook_attempts,
        backoff_seconds=options.webhook_backoff_seconds,
        timeout_seconds=options.webhook_timeout_seconds,
        allowed_hosts=options.webhook_hosts,
    )
    champion = ChampionCache(
        settings,
        check_seconds=options.champion_check_seconds,
        after_load=freeze_gc if options.gc_freeze else None,
    )

    def job_finished(job: dict) -> None:
        hooks.job_finished(job)
        if job.get("status") == "succeeded" and job.get("type") in MODEL_JOBS:
            # a new champion may exist: predict should not wait for the next periodic check
            threading.Thread(
                target=champion.refresh_now, name="champion-after-job", daemon=True
            ).start()

    job_manager = JobManager(
        settings,
        db,
        on_finished=job_finished,
        kill_grace_seconds=options.kill_grace_seconds,
        extract_roots=options.resolved_extract_roots(),
        max_jobs=options.max_jobs,
        max_jobs_per_key=options.max_jobs_per_key,
    )
    metrics = Metrics(job_manager.counts)
    return Services(
        settings=settings,
        db=db,
        jobs=job_manager,
        webhooks=hooks,
        results=ResultsReader(settings),
        champion=champion,
        metrics=metrics,
        batcher=PredictBatcher(),
        refusals=RefusalLog(db, metrics.registry),
        retention=AuditRetention(db, options.audit_retention_days),
    )


def _lifespan(svc: Services, options: ApiOptions):
    """At start: deliveries and jobs a previous service left are settled; at stop: jobs stopped."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if options.gc_freeze:
            freeze_gc()
        svc.webhooks.redact_stored()  # bodies stored by an older version: masked before any resend
        svc.webhooks.resume()  # before recover: its job.interrupted deliveries are new, not resumed
        svc.retention.start()
        interrupted = svc.jobs.recover()
        if interrupted:
            log.warning("jobs interrupted by a previous stop", extra={"jobs": interrupted})
        yield
        svc.retention.stop()
        svc.jobs.shutdown()

    return lifespan


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        # pydantic's errors without the offending input: inputs are never echoed back or logged
        errors = [
            {"loc": list(e.get("loc", ())), "msg": _message(e), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(CobranzaError)
    async def cobranza_error(request: Request, exc: CobranzaError):
        paths = request.app.state.services.jobs.paths
        return JSONResponse(status_code=409, content={"detail": paths.text(str(exc))})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # a route's message may quote a lake error: server paths shown relative to the lake
        if isinstance(exc.detail, str):
            paths = request.app.state.services.jobs.paths
            exc = StarletteHTTPException(exc.status_code, paths.text(exc.detail), exc.headers)
        return await http_exception_handler(request, exc)


def _message(error: dict[str, Any]) -> str:
    """pydantic's message, minus the input some messages quote (e.g. an unknown union tag)."""
    msg = str(error.get("msg", ""))
    if error.get("type") == "union_tag_invalid":
        ctx = error.get("ctx") or {}
        field = ctx.get("discriminator", "'type'")
        return f"unknown value of {field}; expected one of: {ctx.get('expected_tags', '')}"
    value = error.get("input")
    if isinstance(value, str) and value and len(value) <= 10_000:
        msg = msg.replace(repr(value), "the given value").replace(f"'{value}'", "the given value")
    return msg


DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"  # Swagger UI, no CDN
DOCS_STATIC = "/docs/static"


def add_docs(app: FastAPI) -> None:
    """Interactive docs at /docs with Swagger UI served by the service itself: a bank's network
    seldom reaches a public CDN, and a page that loads no third-party script is also safer."""
    app.mount(DOCS_STATIC, StaticFiles(directory=DOCS_ASSETS), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
        )


def freeze_gc() -> None:
    """Collect once, then keep every object alive now out of later full collections.

    Under load, objects of in-flight requests survive young collections and push the collector
    into full passes over everything (imports, the model) every few seconds; after the freeze a
    full pass only sees what was created since. Cyclic garbage among frozen objects is never
    freed: the price is a little memory per champion reload.
    """
    gc.collect()
    gc.freeze()


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service; a known or short pseudonym key is refused before anything is served."""
    try:
        pseudonym_key(settings, create=False)
    except PseudonymKeyError as exc:
        raise SystemExit(f"cobranza serve: {exc}") from None
    configure_logging()
    options = ApiOptions(gc_freeze=True)
    app = create_app(settings, options)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        limit_concurrency=options.max_connections,
        timeout_keep_alive=options.keep_alive_seconds,
        http=head_deadline_protocol(
            options.head_timeout_seconds,
            options.max_connections_per_address,
            options.body_timeout_seconds,
        ),
        h11_max_incomplete_event_size=H11_MAX_HEADER_BYTES,
    )


# Request line and headers under h11; the default httptools protocol (`api/protocol.py`) refuses
# a head past the same 16 KiB with 431 itself.
H11_MAX_HEADER_BYTES = 16 * 1024
