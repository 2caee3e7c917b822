"""`GET /v1/ingest/{run}/quarantine`: an ingest run's quarantine for viewers, paginated, with no
refused value (the report of `cobranza.ingest.quality`)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cobranza.api import create_app
from cobranza.api.keys import create_key
from cobranza.config import load_settings
from cobranza.ingest.quality import load_report
from cobranza.lake import Lake
from tests.ingest.test_quality import SECRETS, ingested


@pytest.fixture(scope="module")
def served(tmp_path_factory, sim_extract):
    result, root = ingested(tmp_path_factory.mktemp("api_quality"), sim_extract)
    settings = load_settings(lake=root / "lake")
    key = create_key(settings, "viewer", "test-viewer")["key"]
    with TestClient(create_app(settings)) as client:
        yield client, {"Authorization": f"Bearer {key}"}, result, Lake(root / "lake")


def test_the_current_run_pages_through_every_group(served):
    client, headers, result, lake = served
    report = load_report(lake, result.version)
    seen = []
    offset = 0
    while True:
        resp = client.get(
            "/v1/ingest/current/quarantine", params={"offset": offset, "limit": 7}, headers=headers
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert page["raw_version"] == result.version
        assert page["total_groups"] == len(report.groups)
        assert page["rows_quarantined"] == result.rows_quarantined
        assert len(page["groups"]) <= 7
        seen += page["groups"]
        offset += 7
        if offset >= page["total_groups"]:
            break
    assert [(g["file"], g["column"], g["reason"], g["rows"]) for g in seen] == [
        (g.file, g.column, g.reason, g.rows) for g in report.groups
    ]
    by_version = client.get(f"/v1/ingest/{result.version}/quarantine", headers=headers)
    assert by_version.status_code == 200 and by_version.json()["groups"] == seen[:100]
    assert set(by_version.json()["files"]) == set(result.files)


def test_no_refused_value_is_served(served):
    client, headers, *_ = served
    text = client.get("/v1/ingest/current/quarantine?limit=1000", headers=headers).text
    assert "expected 14 fields" in text
    for secret in SECRETS:
        assert secret not in text


def test_refusals(served):
    client, headers, *_ = served
    assert client.get("/v1/ingest/current/quarantine").status_code == 401
    missing = client.get("/v1/ingest/20990101T000000000000-deadbeef/quarantine", headers=headers)
    assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]
    assert client.get("/v1/ingest/a.b/quarantine", headers=headers).status_code == 422
    too_many = client.get("/v1/ingest/current/quarantine?limit=5000", headers=headers)
    assert too_many.status_code == 422
