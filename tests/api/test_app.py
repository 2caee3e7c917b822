"""The app serves only the documented open pages (interactive docs from local files, the
OpenAPI document); FastAPI's others are off."""

from __future__ import annotations


def test_only_the_documented_pages_are_open(live):
    http = live.http
    assert http.get("/docs").status_code == 200
    spec = http.get("/openapi.json")
    assert spec.status_code == 200
    assert "oauth2-redirect" not in http.get("/docs").text
    for path in ("/redoc", "/docs/oauth2-redirect"):
        assert http.get(path).status_code == 404, path
    assert not {p for p in spec.json()["paths"] if "redoc" in p or "oauth2" in p}
