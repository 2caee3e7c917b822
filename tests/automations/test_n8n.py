"""The n8n templates against a REAL n8n 1.123 and a REAL `cobranza serve` on loopback.

One module stack: a small trained and scored lake, a live API server with an operator key for n8n
(held by n8n's own Header Auth credential, created through its CLI), and a sink standing for the
collections endpoint and the notification channel. The daily template runs through
`n8n-harness run` (its schedule trigger swapped for a manual one); the webhook router runs in an
`n8n start` server, active, receiving cobranza's real signed deliveries; a failing scheduled
workflow in an `n8n start` server calls the error workflow. Nodes retry: a notification channel
that answers 503 once still gets the message.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import time

import httpx
import pytest

from cobranza.api.control import now_iso
from cobranza.api.webhooks import sign
from tests.api.conftest import free_port, wait_job
from tests.automations.n8n import (
    API_KEY_CREDENTIAL,
    HARNESS_DIR,
    TEMPLATES,
    N8nServer,
    import_api_key,
    load_template,
    manual_variant,
    node_runs,
    private_harness,
    require_n8n,
    run_workflow,
)
from tests.http import live_client

pytestmark = [pytest.mark.slow, pytest.mark.n8n]
http = live_client(timeout=120)
PAGE = 40  # small pages: the worklist spans several cursor pages
ERROR_WORKFLOW = "cbzErrorNotify01"


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    require_n8n()  # before building anything: fail at once when n8n is missing
    harness = private_harness(tmp_path_factory.mktemp("n8n-harness"))
    served = request.getfixturevalue("served")
    use_key(harness, served["keys"]["operator"])
    return {**served, "harness": harness}


def use_key(harness, key: str) -> None:
    """The harness's n8n holds `key` in the templates' credential (`n8n-harness run` keeps its
    database in `<harness>/home`)."""
    import_api_key(harness / "home", key)


def api(stack, path: str, role: str = "operator", **params):
    resp = http.get(
        stack["server"].url + path,
        params=params,
        headers={"Authorization": f"Bearer {stack['keys'][role]}"},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def n8n_env(stack, **extra: str) -> dict[str, str]:
    """The variables the templates read; the API key is not one of them (a credential holds it)."""
    return {
        "COBRANZA_API_URL": stack["server"].url,
        "COBRANZA_NOTIFY_URL": stack["sink"].url + "/notify",
        "COBRANZA_POLL_SECONDS": "1",
        "COBRANZA_PAGE_SIZE": str(PAGE),
        **extra,
    }


def assign_ids(stack) -> list[str]:
    """Every ASSIGN obligation of the current results in the calling order, through the JSON
    pages of the API."""
    ids, cursor = [], None
    while True:
        params = {"decision": "ASSIGN", "sort": "risk", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = api(stack, "/v1/scores", **params)
        ids += [r["obligation_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def holdout_ids(stack) -> set[str]:
    """The obligations of the experiment's control group (arm HOLDOUT) in the current results."""
    ids, cursor = set(), None
    while True:
        params = {"decision": "NO_ASSIGN", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = api(stack, "/v1/scores", **params)
        ids |= {r["obligation_id"] for r in page["items"] if r.get("arm") == "HOLDOUT"}
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def score_jobs(stack) -> list[dict]:
    return api(stack, "/v1/jobs", type="score", limit=500)["items"]


def test_templates_use_the_credential_retry_and_explain_themselves():
    """No key in any template: the API's HTTP nodes use the Header Auth credential by reference;
    every HTTP node retries; each template names the error workflow and carries sticky notes."""
    require_n8n()
    nodes_dir = HARNESS_DIR / "node_modules" / "n8n-nodes-base" / "dist" / "nodes"
    known = {p.name.split(".")[0].lower() for p in nodes_dir.rglob("*.node.js")}
    templates = sorted(TEMPLATES.glob("*.json"))
    assert {p.name for p in templates} >= {
        "daily_decisions.json",
        "job_webhook_router.json",
        "model_watch.json",
        "error_notify.json",
    }
    ids = set()
    reference = {"httpHeaderAuth": {k: API_KEY_CREDENTIAL[k] for k in ("id", "name")}}
    for path in templates:
        text = path.read_text(encoding="utf-8")
        wf = json.loads(text)
        ids.add(wf["id"])
        assert not re.search(r"cbz_[0-9a-f]{12}_", text), f"{path.name} holds an API key"
        assert "COBRANZA_API_KEY" not in text, path.name
        notes = [n for n in wf["nodes"] if n["type"] == "n8n-nodes-base.stickyNote"]
        assert notes and all(len(n["parameters"]["content"]) > 80 for n in notes), path.name
        if wf["id"] != ERROR_WORKFLOW:
            assert wf["settings"]["errorWorkflow"] == ERROR_WORKFLOW, path.name
        for node in wf["nodes"]:
            kind = node["type"].removeprefix("n8n-nodes-base.").lower()
            assert kind in known, f"{path.name}: unknown node type {node['type']}"
            if kind != "httprequest":
                assert "credentials" not in node, node["name"]
                continue
            assert node["parameters"]["url"].startswith("={{ $env."), node["name"]
            assert node.get("retryOnFail") is True and node.get("maxTries", 0) >= 2, node["name"]
            headers = node["parameters"].get("headerParameters", {}).get("parameters", [])
            assert "Authorization" not in {h["name"] for h in headers}, node["name"]
            if "COBRANZA_API_URL" in node["parameters"]["url"]:
                assert node["credentials"] == reference, node["name"]
                assert node["parameters"]["authentication"] == "genericCredentialType"
                assert node["parameters"]["genericAuthType"] == "httpHeaderAuth"
            else:
                assert "credentials" not in node, node["name"]
    assert len(ids) == len(templates)


def test_daily_decisions_scores_and_delivers_the_assign_worklist(stack, tmp_path):
    before = {j["job_id"] for j in score_jobs(stack)}
    folder = tmp_path / "worklists"
    folder.mkdir()
    sink = stack["sink"]
    n_notify = len(sink.at("/notify"))
    wf = manual_variant(load_template("daily_decisions.json"), "cbzTestDailyOk01")
    env = n8n_env(
        stack, COBRANZA_WORKLIST_DIR=str(folder), COBRANZA_WORKLIST_URL=sink.url + "/worklist"
    )
    code, result = run_workflow(wf, tmp_path, env, stack["harness"])
    assert code == 0, json.dumps(result)[:3000]

    # the job really ran, started by n8n's key, and is the one the message names
    new = [j for j in score_jobs(stack) if j["job_id"] not in before]
    assert len(new) == 1 and new[0]["status"] == "succeeded"
    job = new[0]
    message = sink.wait_for("/notify", n_notify + 1)[-1].json()
    assert message["status"] == "succeeded" and message["job_id"] == job["job_id"]

    # the worklist (file and POST) holds exactly the ASSIGN rows of the API, once each
    summary = api(stack, "/v1/summary")
    assert summary["results_version"] == job["result"]["results_version"]
    files = list(folder.glob("*.csv"))
    assert [f.name for f in files] == [message["worklist_file"]]
    text = files[0].read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    want = assign_ids(stack)
    assert len(want) > 2 * PAGE  # several cursor pages were joined
    # the people's table in Spanish: codes in words, the call order, one header
    assert [r["Obligación"] for r in rows] == want
    assert [int(r["Orden de llamada"]) for r in rows] == list(range(1, len(rows) + 1))
    assert {r["Decisión"] for r in rows} == {"Gestionar"}
    words = http.get(stack["server"].url + "/dashboard/labels.json").json()
    assert {r["Producto"] for r in rows} <= set(words["product"].values())
    assert {r["Segmento"] for r in rows} <= set(words["segment"].values())
    assert files[0].name.startswith(f"lista_trabajo_{api(stack, '/v1/summary')['cut_date_max']}")
    assert (
        len(rows) == summary["decisions"]["ASSIGN"] == message["assign"] == message["worklist_rows"]
    )
    posted = sink.at("/worklist")[-1]
    assert posted.body.decode("utf-8") == text
    assert posted.headers["x-worklist-rows"] == str(len(rows))

    # the message's figures are the API's
    assert message["no_assign"] == summary["decisions"]["NO_ASSIGN"]
    assert message["population"] == summary["population"]
    assert message["expected_savings"] == pytest.approx(summary["expected_savings"])
    assert message["results_version"] == summary["results_version"]
    assert f"{summary['decisions']['ASSIGN']} para gestionar" in message["text"]

    # the experiment's control group: never in the contact list, counted apart in the message
    held = holdout_ids(stack)
    assert held and held.isdisjoint(r["Obligación"] for r in rows)
    assert message["holdout"] == summary["holdout"] == len(held)
    assert f"{len(held)} en el grupo de control" in message["text"]
    # without a registered challenger no row of the list is counted apart
    if summary["challenger_version"] is None:
        assert message["challenger_worklist_rows"] is None
        assert "modelo retador" not in message["text"]


def test_daily_decisions_reports_the_error_of_a_failed_job(stack, tmp_path):
    before = {j["job_id"] for j in score_jobs(stack)}
    sink = stack["sink"]
    n_notify, n_worklist = len(sink.at("/notify")), len(sink.at("/worklist"))
    wf = manual_variant(load_template("daily_decisions.json"), "cbzTestDailyErr1")
    bad_job = json.dumps({"type": "score", "params": {"as_of": "2019-01-31"}})  # no such cut
    env = n8n_env(stack, COBRANZA_DAILY_JOB=bad_job, COBRANZA_WORKLIST_URL=sink.url + "/worklist")
    code, result = run_workflow(wf, tmp_path, env, stack["harness"])
    assert code == 0, json.dumps(result)[:3000]
    new = [j for j in score_jobs(stack) if j["job_id"] not in before]
    assert len(new) == 1 and new[0]["status"] == "failed" and new[0]["error"]
    message = sink.wait_for("/notify", n_notify + 1)[-1].json()
    assert message["status"] == "failed"
    assert message["job_id"] == new[0]["job_id"]
    assert message["error"] == new[0]["error"]
    assert len(sink.at("/worklist")) == n_worklist  # no worklist on failure
    assert not node_runs(result, "Get summary")


@pytest.fixture(scope="module")
def router(stack, tmp_path_factory):
    """The router active in a real n8n server; cobranza's webhook points at it."""
    require_n8n()
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhook/cobranza-jobs"
    resp = http.post(
        stack["server"].url + "/v1/webhooks",
        json={"url": url, "events": ["job.succeeded", "job.failed"]},
        headers={"Authorization": f"Bearer {stack['keys']['admin']}"},
    )
    assert resp.status_code == 201, resp.text
    hook = resp.json()
    server = N8nServer(
        tmp_path_factory.mktemp("n8n-server"),
        port,
        load_template("job_webhook_router.json"),
        n8n_env(stack, COBRANZA_WEBHOOK_SECRET=hook["secret"]),
        api_key=stack["keys"]["operator"],
    )
    server.start()
    try:
        yield {"url": url, "hook": hook, "server": server}
    finally:
        server.stop()


def _deliver(
    url: str, body: bytes, signature: str | None, timestamp: int, delivery_id: str
) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "X-Cobranza-Event": "job.succeeded",
        "X-Cobranza-Timestamp": str(timestamp),
        "X-Cobranza-Delivery": delivery_id,
    }
    if signature is not None:
        headers["X-Cobranza-Signature"] = signature
    return http.post(url, content=body, headers=headers)


def _signed(secret: str, body: bytes, age_seconds: int = 0) -> tuple[str, int, str]:
    """(signature, timestamp, delivery id) of a new delivery signed `age_seconds` ago."""
    timestamp, delivery_id = int(time.time()) - age_seconds, secrets.token_hex(8)
    return sign(secret, timestamp, delivery_id, body), timestamp, delivery_id


def _etl_succeeded(job_id: str) -> bytes:
    payload = {
        "event": "job.succeeded",
        "sent_at": now_iso(),
        "job": {"job_id": job_id, "type": "etl", "status": "succeeded", "error": None},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def test_router_rejects_bad_signatures_and_starts_nothing(stack, router):
    before = {j["job_id"] for j in score_jobs(stack)}
    secret = router["hook"]["secret"]
    body = _etl_succeeded("0badc0de")
    good, ts, did = _signed(secret, body)
    tampered = body.replace(b'"etl"', b'"ingest"')
    for attempt_body, signature, t, d in (
        (tampered, good, ts, did),
        (body, None, ts, did),
        (body, sign("not-the-secret", ts, did, body), ts, did),
        (body, good.upper(), ts, did),
        (body, good[:-1], ts, did),
        (body, good, ts + 1, did),  # the signed timestamp changed
        (body, good, ts, "0123456789abcdef"),  # the signed delivery id changed
    ):
        resp = _deliver(router["url"], attempt_body, signature, t, d)
        assert resp.status_code == 401
        assert resp.json() == {"accepted": False, "reason": "bad signature"}
    # a correctly signed but old delivery is refused too
    old, old_ts, old_id = _signed(secret, body, age_seconds=3600)
    resp = _deliver(router["url"], body, old, old_ts, old_id)
    assert resp.status_code == 401
    assert resp.json() == {"accepted": False, "reason": "stale delivery"}
    assert {j["job_id"] for j in score_jobs(stack)} == before


def test_router_rejects_a_replayed_delivery(stack, router):
    """The same signed delivery sent twice: accepted once, refused as a replay the second time.

    A succeeded monitor job: a delivery the router accepts and then leaves alone (no job started,
    so the other tests' jobs are undisturbed)."""
    before = {j["job_id"] for j in api(stack, "/v1/jobs", limit=500)["items"]}
    body = json.dumps(
        {
            "event": "job.succeeded",
            "sent_at": now_iso(),
            "job": {"job_id": "5eed5eed", "type": "monitor", "status": "succeeded", "error": None},
        },
        separators=(",", ":"),
    ).encode()
    signature, ts, delivery_id = _signed(router["hook"]["secret"], body)
    first = _deliver(router["url"], body, signature, ts, delivery_id)
    assert first.status_code == 200 and first.json() == {"accepted": True}
    again = _deliver(router["url"], body, signature, ts, delivery_id)
    assert again.status_code == 401
    assert again.json() == {"accepted": False, "reason": "replayed delivery"}
    assert {j["job_id"] for j in api(stack, "/v1/jobs", limit=500)["items"]} == before


def test_router_chains_etl_to_score_and_reports_the_real_delivery(stack, router):
    sink = stack["sink"]
    before = {j["job_id"] for j in score_jobs(stack)}
    n_notify = len(sink.at("/notify"))
    body = _etl_succeeded("e71e71e7")
    resp = _deliver(router["url"], body, *_signed(router["hook"]["secret"], body))
    assert resp.status_code == 200 and resp.json() == {"accepted": True}

    # n8n started a score job through the API ...
    chained = sink.wait_for("/notify", n_notify + 1)[n_notify].json()
    assert chained["status"] == "chained" and chained["next_job_type"] == "score"
    new = [j for j in score_jobs(stack) if j["job_id"] not in before]
    assert [j["job_id"] for j in new] == [chained["next_job_id"]]
    headers = {"Authorization": f"Bearer {stack['keys']['operator']}"}
    job = wait_job(stack["server"].url, headers, chained["next_job_id"])
    assert job["status"] == "succeeded"

    # ... whose completion cobranza delivered, signed, to n8n, which fetched the summary
    done = sink.wait_for("/notify", n_notify + 2)[n_notify + 1].json()
    assert done["status"] == "succeeded" and done["job_id"] == job["job_id"]
    summary = api(stack, "/v1/summary")
    assert done["results_version"] == summary["results_version"]
    assert done["results_version"] == job["result"]["results_version"]
    assert (done["assign"], done["no_assign"]) == (
        summary["decisions"]["ASSIGN"],
        summary["decisions"]["NO_ASSIGN"],
    )
    assert done["expected_savings"] == pytest.approx(summary["expected_savings"])
    deliveries = api(stack, f"/v1/webhooks/{router['hook']['webhook_id']}/deliveries", "admin")
    ours = [d for d in deliveries if d["job_id"] == job["job_id"]]
    assert ours and ours[0]["ok"] and ours[0]["status_code"] == 200 and ours[0]["attempt"] == 1


def test_router_reports_a_failed_job_with_its_error(stack, router):
    sink = stack["sink"]
    n_notify = len(sink.at("/notify"))
    headers = {"Authorization": f"Bearer {stack['keys']['operator']}"}
    resp = http.post(
        stack["server"].url + "/v1/jobs",
        json={"type": "score", "params": {"as_of": "2019-01-31"}},
        headers=headers,
    )
    assert resp.status_code == 202, resp.text
    job = wait_job(stack["server"].url, headers, resp.json()["job_id"])
    assert job["status"] == "failed"
    message = sink.wait_for("/notify", n_notify + 1)[n_notify].json()
    assert message["status"] == "failed" and message["job_id"] == job["job_id"]
    assert message["error"] == job["error"]


def test_model_watch_alerts_on_a_new_champion_and_a_failed_gate(stack, tmp_path):
    from cobranza.config import load_settings
    from cobranza.ml.training import train

    # a challenger held to an impossible gate: registered, not promoted
    base = stack["settings"]
    strict = load_settings(lake=base.lake, truth_path=base.truth_path, gate={"max_ece": 0.0})
    challenger = train(strict)
    assert not challenger.gate.passed
    models = api(stack, "/v1/models")
    failed = next(m for m in models["items"] if m["version"] == str(challenger.version))
    sink = stack["sink"]
    n_notify = len(sink.at("/notify"))
    wf = manual_variant(load_template("model_watch.json"), "cbzTestWatch0001")

    code, result = run_workflow(
        wf, tmp_path, n8n_env(stack, COBRANZA_WATCH_MINUTES="60"), stack["harness"]
    )
    assert code == 0, json.dumps(result)[:3000]
    message = sink.wait_for("/notify", n_notify + 1)[n_notify].json()
    alerts = {(a["kind"], a["version"]) for a in message["alerts"]}
    assert alerts == {
        ("champion_changed", models["champion"]),
        ("gate_failed", failed["version"]),
    }
    assert message["champion"] == models["champion"] != failed["version"]
    assert failed["gate_reason"] in message["text"]

    # nothing new in a window that ended before now: no message at all
    code, result = run_workflow(
        wf, tmp_path, n8n_env(stack, COBRANZA_WATCH_MINUTES="0.001"), stack["harness"]
    )
    assert code == 0, json.dumps(result)[:3000]
    assert node_runs(result, "Get models") and not node_runs(result, "Notify")
    assert len(sink.at("/notify")) == n_notify + 1


def test_daily_decisions_reports_a_job_that_could_not_start(stack, tmp_path):
    """A key below operator: the API refuses the job (403) and the message says so."""
    before = {j["job_id"] for j in score_jobs(stack)}
    sink = stack["sink"]
    n_notify = len(sink.at("/notify"))
    wf = manual_variant(load_template("daily_decisions.json"), "cbzTestDailyKey1")
    use_key(stack["harness"], stack["keys"]["viewer"])
    try:
        code, result = run_workflow(wf, tmp_path, n8n_env(stack), stack["harness"])
    finally:
        use_key(stack["harness"], stack["keys"]["operator"])
    assert code == 0, json.dumps(result)[:3000]
    message = sink.wait_for("/notify", n_notify + 1)[n_notify].json()
    assert message["status"] == "not_started" and message["job_id"] is None
    assert "403" in message["error"] and "operator" in message["error"]
    assert {j["job_id"] for j in score_jobs(stack)} == before
    assert not node_runs(result, "Get job")


def test_a_notification_refused_once_is_retried(stack, tmp_path):
    """The channel answers 503 to the first POST: the Notify node tries again and delivers."""
    sink = stack["sink"]
    sink.fail_first["/flaky"] = 1
    wf = manual_variant(load_template("model_watch.json"), "cbzTestRetry0001")
    env = n8n_env(stack, COBRANZA_NOTIFY_URL=sink.url + "/flaky", COBRANZA_WATCH_MINUTES="600")
    code, result = run_workflow(wf, tmp_path, env, stack["harness"])
    assert code == 0, json.dumps(result)[:3000]
    got = sink.wait_for("/flaky", 2)
    assert len(got) == 2 and got[0].body == got[1].body  # the same message, sent twice
    assert sink.fail_first["/flaky"] == 0
    assert got[1].json()["status"] == "model_watch"


def test_a_failing_scheduled_workflow_calls_the_error_workflow(stack, tmp_path_factory):
    """An active workflow whose API is unreachable fails after its retries; n8n runs the error
    workflow, which tells the channel which workflow and node failed, without any key."""
    sink = stack["sink"]
    n_notify = len(sink.at("/errors"))
    failing = load_template("model_watch.json")
    failing["id"] = "cbzTestFailing01"
    for node in failing["nodes"]:
        if node["type"] == "n8n-nodes-base.scheduleTrigger":
            node["parameters"] = {
                "rule": {"interval": [{"field": "seconds", "secondsInterval": 5}]}
            }
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    server = N8nServer(
        tmp_path_factory.mktemp("n8n-errors"),
        free_port(),
        failing,
        {
            **n8n_env(stack, COBRANZA_NOTIFY_URL=sink.url + "/errors"),
            "COBRANZA_API_URL": closed,
        },
        api_key=stack["keys"]["viewer"],
        others=[load_template("error_notify.json")],
    )
    server.start()
    try:
        message = sink.wait_for("/errors", n_notify + 1, timeout=240)[n_notify].json()
    finally:
        server.stop()
    assert message["status"] == "workflow_error"
    assert message["workflow_id"] == "cbzTestFailing01"
    assert message["workflow_name"] == failing["name"]
    assert message["failed_node"] == "Get models"
    assert message["error"] and "Get models" in message["text"]
    assert stack["keys"]["viewer"] not in json.dumps(message)


def test_daily_message_counts_the_worklist_rows_the_challenger_decided(stack, tmp_path):
    """With a registered challenger the day's run routes part of the rows to it: the message
    counts, from the worklist's model column, the rows to contact that the challenger decided."""
    from cobranza.config import load_settings
    from cobranza.ml.registry import challenger_version
    from cobranza.ml.training import train

    base = stack["settings"]
    if challenger_version(base) is None:
        # a training held to an impossible gate: registered as the challenger, not promoted
        strict = load_settings(lake=base.lake, truth_path=base.truth_path, gate={"max_ece": 0.0})
        assert not train(strict).gate.passed
    version = challenger_version(base)
    assert version is not None
    sink = stack["sink"]
    folder = tmp_path / "worklists"
    folder.mkdir()
    wf = manual_variant(load_template("daily_decisions.json"), "cbzTestDailyChal")
    # a channel of its own: the webhook router may post to /notify when the score job ends
    env = n8n_env(
        stack,
        COBRANZA_WORKLIST_DIR=str(folder),
        COBRANZA_WORKLIST_SEP=";",
        COBRANZA_NOTIFY_URL=sink.url + "/notify-challenger",
    )
    code, result = run_workflow(wf, tmp_path, env, stack["harness"])
    assert code == 0, json.dumps(result)[:3000]
    message = sink.wait_for("/notify-challenger", 1)[0].json()
    assert message["status"] == "succeeded"

    summary = api(stack, "/v1/summary")
    assert summary["challenger_version"] == version and summary["challenger"] > 0
    routed, cursor = 0, None
    while True:
        params = {"decision": "ASSIGN", "limit": 100, **({"cursor": cursor} if cursor else {})}
        page = api(stack, "/v1/scores", **params)
        routed += sum(r["arm"] == "CHALLENGER" for r in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert routed > 0
    text = next(folder.glob("*.csv")).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert sum(r["Modelo"] == version for r in rows) == routed
    assert message["challenger_worklist_rows"] == routed
    assert message["challenger_version"] == version
    assert message["challenger"] == summary["challenger"]
    assert f"{routed} de ellas decididas por el modelo retador {version}" in message["text"]
