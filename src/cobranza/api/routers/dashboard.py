"""`/dashboard`: the collections team's page, served by the control plane (HTML, JS, CSS; no build).

The page and its assets are open and hold no data: every figure is fetched by the browser from the
`/v1` API with the user's key (kept in `sessionStorage`, sent as `X-API-Key`), so the page shows
exactly what the key's role may read. Assets come from `static/dashboard/` of this package, by a
fixed list of names (no path from the request reaches the file system), with a strict
Content-Security-Policy: same-origin scripts, styles and fetches only, nothing from a CDN.
`GET /v1/me` tells the page whose key it holds (and so whether to show the operator's buttons).
`/dashboard/labels.json` gives the words for the codes (`cobranza.labels`, Spanish or English):
no data, the same for everyone. `/` leads to the page and `/favicon.ico` is its icon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from cobranza.api.deps import guard
from cobranza.api.schemas import Role
from cobranza.labels import labels

router = APIRouter(tags=["dashboard"])

STATIC = Path(__file__).resolve().parent.parent / "static" / "dashboard"
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class Me(BaseModel):
    """The calling key as the dashboard needs it: whom to greet and which buttons to show."""

    key_id: str
    name: str
    role: Role = Field(..., description="viewer, operator or admin.")


@router.get(
    "/v1/me",
    response_model=Me,
    summary="The calling key's id, name and role (sign-in check of the dashboard)",
    **guard("viewer"),
)
def me(request: Request):
    principal = request.state.principal
    return Me(key_id=principal.key_id, name=principal.name, role=principal.role)


@router.get("/dashboard", include_in_schema=False)
def dashboard_page():
    return FileResponse(
        STATIC / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS
    )


@router.get("/dashboard/", include_in_schema=False)
def dashboard_slash():
    return RedirectResponse("/dashboard", status_code=308)


@router.get("/", include_in_schema=False)
def root():
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/favicon.ico", include_in_schema=False)
def favicon():
    return FileResponse(
        STATIC / "favicon.ico",
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/dashboard/labels.json", include_in_schema=False)
def dashboard_labels(lang: Literal["es", "en"] = "es"):
    return JSONResponse(labels(lang), headers=HEADERS)


@router.get("/dashboard/static/{name}", include_in_schema=False)
def dashboard_asset(name: str):
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, "no such dashboard asset")
    return FileResponse(STATIC / name, media_type=media_type, headers=HEADERS)
