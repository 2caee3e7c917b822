"""Request ids, body size limit (413), Prometheus metrics, JSON access logs and the audit log."""

from __future__ import annotations

import json
import logging

from cobranza.api.observability import JsonFormatter
from tests.api.conftest import auth


def test_request_id_is_echoed_or_generated(client):
    resp = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    # a header that could forge log lines is replaced, not echoed
    assert (
        client.get("/healthz", headers={"X-Request-ID": "a b\tc"}).headers["x-request-id"]
        != "a b\tc"
    )


def test_body_over_the_limit_is_413_by_length_and_while_streaming(client, keys, settings):
    admin = auth(keys["admin"])
    big = b'{"role": "viewer", "name": "' + b"x" * (settings.api_max_body_bytes + 10) + b'"}'
    resp = client.post(
        "/v1/keys", content=big, headers={**admin, "Content-Type": "application/json"}
    )
    assert resp.status_code == 413
    assert str(settings.api_max_body_bytes) in resp.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"role": "viewer", "name": "'
        for _ in range(20):
            yield b"y" * (settings.api_max_body_bytes // 10)
        yield b'"}'

    resp = client.post(
        "/v1/keys", content=chunks(), headers={**admin, "Content-Type": "application/json"}
    )
    assert resp.status_code == 413
    names = [k["name"] for k in client.get("/v1/keys", headers=admin).json()]
    assert all(not n.startswith("yyy") for n in names)


def test_metrics_count_requests_by_route_template_and_jobs_by_status(client, keys):
    viewer = auth(keys["viewer"])
    for oid in ("A1", "B2", "C3"):
        client.get(f"/v1/scores/{oid}", headers=viewer)
    client.get("/v1/jobs", headers={})
    text = client.get("/metrics").text
    assert (
        'cobranza_api_requests_total{method="GET",route="/v1/scores/{obligation_id}",status="404"} 3.0'
        in text
    )
    assert 'cobranza_api_requests_total{method="GET",route="/v1/jobs",status="401"} 1.0' in text
    assert (
        'cobranza_api_request_seconds_bucket{le="0.005",method="GET",route="/v1/scores/{obligation_id}"}'
        in text
    )
    assert 'cobranza_jobs{status="running"} 0.0' in text


def test_mutating_calls_are_audited_with_who_what_and_outcome(client, keys):
    admin, viewer = auth(keys["admin"]), auth(keys["viewer"])
    client.post("/v1/keys", json={"role": "viewer", "name": "bi"}, headers=admin)
    client.post("/v1/keys", json={"role": "viewer", "name": "sneaky"}, headers=viewer)
    client.post("/v1/keys", json={"role": "viewer"}, headers={})
    client.app.state.services.refusals.flush()  # a refusal's sampled row: written off the loop
    client.get("/v1/jobs", headers=viewer)  # reads are not audited
    page = client.get("/v1/audit", params={"limit": 2}, headers=admin).json()
    assert len(page["items"]) == 2 and page["next_cursor"] is not None
    older = client.get("/v1/audit", params={"before": page["next_cursor"]}, headers=admin).json()
    entries = page["items"] + older["items"]
    assert [(e["method"], e["path"], e["status"], e["outcome"]) for e in entries] == [
        ("POST", "/v1/keys", 401, "denied"),
        ("POST", "/v1/keys", 403, "denied"),
        ("POST", "/v1/keys", 201, "ok"),
    ]
    ok = entries[2]
    assert ok["key_name"] == "test-admin" and ok["role"] == "admin" and ok["action"] == "key.create"
    assert json.loads(ok["detail"])["name"] == "bi"
    assert entries[1]["key_name"] == "test-viewer"
    assert entries[0]["key_id"] is None


def test_access_log_is_one_json_line_without_query_values(client, keys, caplog):
    caplog.set_level(logging.INFO, logger="cobranza.api.access")
    client.get(
        "/v1/scores",
        params={"segment": "MASS"},
        headers={**auth(keys["viewer"]), "X-Request-ID": "r-1"},
    )
    record = next(r for r in caplog.records if getattr(r, "request_id", None) == "r-1")
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/v1/scores" and line["status"] == 404 and line["method"] == "GET"
    assert line["key_id"] and "ms" in line
    assert "MASS" not in json.dumps(line)


def test_validation_errors_say_what_is_wrong_without_echoing_input(client, keys):
    resp = client.post(
        "/v1/keys",
        json={"role": "viewer", "name": "", "email": "ana@example.org"},
        headers=auth(keys["admin"]),
    )
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert {tuple(d["loc"]) for d in detail} == {("body", "name"), ("body", "email")}
    assert "ana@example.org" not in resp.text


def test_predict_is_not_audited(client, keys):
    """Online scoring changes nothing: it is logged and counted, not written to the audit table."""
    admin = {"X-API-Key": keys["admin"]}
    before = client.get("/v1/audit", params={"limit": 500}, headers=admin).json()["items"]
    client.post("/v1/predict", json={"obligations": []}, headers={"X-API-Key": keys["viewer"]})
    after = client.get("/v1/audit", params={"limit": 500}, headers=admin).json()["items"]
    assert not [a for a in after if a["path"].startswith("/v1/predict")]
    assert len(after) == len(before)


def test_security_headers(live):
    http, keys = live.http, live.keys
    for resp in (
        http.get("/v1/summary", headers=auth(keys["viewer"])),  # 404: no results yet
        http.get("/v1/jobs", headers=auth(keys["viewer"])),
        http.get("/v1/jobs"),  # 401 from the middleware
    ):
        assert resp.headers.get_list("cache-control") == ["no-store"], resp.url
        assert resp.headers.get_list("x-content-type-options") == ["nosniff"]
    health = http.get("/healthz")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in health.headers
    page = http.get("/dashboard")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers.get_list("x-content-type-options") == ["nosniff"]
