"""The collections dashboard in a REAL browser (Debian Chromium driven by Playwright) against a real
`cobranza serve` process on loopback over a trained and scored lake.

What the page shows is compared with what the API answers for the same key: the counts of
`GET /v1/summary`, the worklist rows of `GET /v1/scores?decision=ASSIGN` (first and second page,
then filtered by product), an obligation's detail, the CSV download. Roles: a wrong key stays on
the sign-in form with an error, a revoked key sends the user back to it, a viewer has no run button
and an operator does (and runs scoring with it). Values from the data are inserted as text: markup
in a product name or a reason text is shown, never run.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from tests.api.conftest import LiveServer, free_port, publish_results, results_frame
from tests.api.dashboard_lake import scored_lake, serving
from tests.http import live_client

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_SIZE = 50  # the page's worklist page size (app.js PAGE_SIZE)
http = live_client(timeout=120)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}): run `make setup`, which installs the Debian "
            "packages chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serving(scored_lake(tmp_path_factory), "dashboard") as served:
        yield served


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors
    try:
        yield tab
    finally:
        context.close()


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _sign_in(page, url: str, key: str) -> None:
    page.goto(f"{url}/dashboard")
    page.fill("#api-key", key)
    page.click("#signin-button")
    page.wait_for_selector("body[data-loaded=true]")


def _rows(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#worklist-rows tr[data-obligation-id]",
        """rows => rows.map(r => ({
            id: r.dataset.obligationId,
            cells: Array.from(r.querySelectorAll('td')).map(td => td.textContent)
        }))""",
    )


def _reload_worklist(page, action) -> None:
    before = page.get_attribute("#worklist", "data-loads")
    action()
    page.wait_for_function(
        "before => document.getElementById('worklist').dataset.loads !== before", arg=before
    )


def _api(url: str, key: str, path: str, **params):
    resp = http.get(f"{url}{path}", params=params, headers={"X-API-Key": key})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_viewer_sees_the_cut_the_worklist_and_a_detail(browser, page, served, tmp_path):
    _, server, keys = served
    url, viewer = server.url, keys["viewer"]
    _sign_in(page, url, viewer)

    # today's cut: the same figures as GET /v1/summary
    summary = _api(url, viewer, "/v1/summary")
    assert _digits(page.text_content("#count-population")) == str(summary["population"])
    assert _digits(page.text_content("#count-eligible")) == str(summary["eligible"])
    decisions = summary["decisions"]
    assert _digits(page.text_content("#count-assign")) == str(decisions["ASSIGN"])
    assert _digits(page.text_content("#count-no-assign")) == str(decisions["NO_ASSIGN"])
    shown = int(_digits(page.text_content("#expected-savings")))
    assert abs(shown - summary["expected_savings"]) <= 1
    assert page.text_content("#threshold") == f"{summary['threshold']:.3f}"
    assert page.text_content("#model-version") == summary["model_version"] == "1"
    assert page.text_content("#cut-date") == summary["cut_date_max"]
    assert page.text_content("#who-role") == "viewer"

    # the worklist: the first page of GET /v1/scores?decision=ASSIGN in the calling order
    # (sort=risk), reasons in words
    first = _api(url, viewer, "/v1/scores", decision="ASSIGN", sort="risk", limit=PAGE_SIZE)
    rows = _rows(page)
    assert [r["id"] for r in rows] == [i["obligation_id"] for i in first["items"]]
    assert len(rows) == min(PAGE_SIZE, decisions["ASSIGN"])
    for row, item in zip(rows, first["items"], strict=True):
        assert row["cells"][2] == item["product"] and row["cells"][4] == str(item["days_past_due"])
        texts = [r["text"] or r["code"] for r in item["reasons"]]
        assert row["cells"][7:10] == texts + [""] * (3 - len(texts))
        assert item["decision"] == "ASSIGN"
    eligible_row = next(
        (r, i) for r, i in zip(rows, first["items"], strict=True) if i["probability"] is not None
    )
    assert eligible_row[0]["cells"][6] == f"{100 * eligible_row[1]['probability']:.1f} %"

    # the next page follows the API's cursor
    assert first["next_cursor"], "the fixture's ASSIGN list should span two pages"
    _reload_worklist(page, lambda: page.click("#next-page"))
    second = _api(
        url,
        viewer,
        "/v1/scores",
        decision="ASSIGN",
        sort="risk",
        limit=PAGE_SIZE,
        cursor=first["next_cursor"],
    )
    assert [r["id"] for r in _rows(page)] == [i["obligation_id"] for i in second["items"]]
    _reload_worklist(page, lambda: page.click("#prev-page"))
    assert [r["id"] for r in _rows(page)] == [i["obligation_id"] for i in first["items"]]

    # filter by product (and days past due): the API's filtered list
    product = next(g["product"] for g in summary["by_product"] if g["assign"] > 0)
    page.select_option("#f-product", product)
    page.fill("#f-min-dpd", "5")
    _reload_worklist(page, lambda: page.click("#apply-filters"))
    filtered = _api(
        url,
        viewer,
        "/v1/scores",
        decision="ASSIGN",
        product=product,
        min_days_past_due=5,
        sort="risk",
        limit=PAGE_SIZE,
    )
    rows = _rows(page)
    assert rows and [r["id"] for r in rows] == [i["obligation_id"] for i in filtered["items"]]
    assert {r["cells"][2] for r in rows} == {product}
    assert min(int(r["cells"][4]) for r in rows) >= 5

    # download the filtered list as CSV: every ASSIGN row of the product from 5 days past due
    with page.expect_download() as info:
        page.click("#download-csv")
    path = tmp_path / "worklist.csv"
    info.value.save_as(path)
    downloaded = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    api_csv = http.get(
        f"{url}/v1/scores",
        params={
            "decision": "ASSIGN",
            "product": product,
            "min_days_past_due": 5,
            "sort": "risk",
            "format": "csv",
            "limit": 10_000,
        },
        headers={"X-API-Key": viewer},
    )
    expected = list(csv.DictReader(io.StringIO(api_csv.text)))
    assert downloaded == expected and len(downloaded) >= len(rows)
    assert {r["decision"] for r in downloaded} == {"ASSIGN"}
    # the calling order: no covering mandate first, then the lowest self-cure probability
    keys = [(r["eligible"] == "True", float(r["probability"] or -1)) for r in downloaded]
    assert {e for e, _ in keys} == {False, True}  # both kinds are in the list
    assert keys == sorted(keys)

    # the order can be switched to the obligation id
    page.select_option("#f-sort", "obligation")
    _reload_worklist(page, lambda: page.click("#apply-filters"))
    by_id = [r["id"] for r in _rows(page)]
    assert by_id == sorted(by_id) and set(by_id) <= {r["obligation_id"] for r in downloaded}
    page.select_option("#f-sort", "risk")
    _reload_worklist(page, lambda: page.click("#apply-filters"))

    # one click opens the obligation's detail, as GET /v1/scores/{id} has it
    oid = rows[0]["id"]
    page.click(f"#worklist-rows tr[data-obligation-id='{oid}'] button.open-detail")
    page.wait_for_function(
        "oid => document.getElementById('detail-id').textContent === oid "
        "&& document.getElementById('detail-fields').children.length > 0",
        arg=oid,
    )
    detail = _api(url, viewer, f"/v1/scores/{oid}")
    assert page.is_visible("#detail")
    fields = page.eval_on_selector_all("#detail-fields dd", "dds => dds.map(d => d.textContent)")
    assert detail["client_key"] in fields and detail["decision"] in fields
    reasons = page.eval_on_selector_all("#detail-reasons li", "lis => lis.map(l => l.textContent)")
    assert len(reasons) == len(detail["reasons"])
    for shown_reason, reason in zip(reasons, detail["reasons"], strict=True):
        assert shown_reason.startswith(reason["text"] or reason["code"])

    # model and health: champion with its out-of-time AUC, monitoring state, last jobs
    models = _api(url, viewer, "/v1/models")
    champion = next(m for m in models["items"] if m["version"] == models["champion"])
    model_fields = page.eval_on_selector_all("#model-fields dd", "d => d.map(x => x.textContent)")
    assert model_fields[0] == champion["version"]
    assert f"{champion['oot_auc']:.3f}" in model_fields
    monitoring = http.get(f"{url}/v1/monitoring", headers={"X-API-Key": viewer})
    badge = page.text_content("#monitoring-status")
    assert badge == (monitoring.json()["status"] if monitoring.status_code == 200 else "SIN DATOS")
    jobs = _api(url, viewer, "/v1/jobs", limit=10)["items"]
    shown_jobs = page.eval_on_selector_all(
        "#jobs-rows tr", "rows => rows.map(r => r.firstChild.textContent)"
    )
    assert shown_jobs == [j["job_id"] for j in jobs]

    # a viewer gets no run button
    assert not page.is_visible("#operator-actions") and not page.is_visible("#run-score")
    page.screenshot(path=str(tmp_path / "dashboard-viewer.png"), full_page=True)
    assert (tmp_path / "dashboard-viewer.png").stat().st_size > 10_000
    assert page.errors == []


def test_wrong_key_stays_on_sign_in_with_an_error(page, served):
    _, server, _ = served
    page.goto(f"{server.url}/dashboard")
    page.fill("#api-key", "cbz_nope_nope")
    page.click("#signin-button")
    page.wait_for_selector("#signin-error:not([hidden])")
    assert "inválida" in page.text_content("#signin-error")
    assert not page.is_visible("#app")
    assert page.evaluate("sessionStorage.length") == 0


def test_revoked_key_goes_back_to_sign_in(page, served):
    from cobranza.api.keys import create_key, revoke_key

    built, server, _ = served
    created = create_key(built.settings, "viewer", "dashboard-short-lived")
    _sign_in(page, server.url, created["key"])
    assert page.is_visible("#app")
    from cobranza.api.control import ControlDB, control_path

    revoke_key(ControlDB(control_path(built.lake)), created["key_id"])
    page.click("#apply-filters")
    page.wait_for_selector("#signin:not([hidden])")
    assert not page.is_visible("#app")
    assert page.is_visible("#signin-error")
    assert page.evaluate("sessionStorage.length") == 0


def test_operator_runs_scoring_from_the_page(page, served, tmp_path):
    _, server, keys = served
    url, operator = server.url, keys["operator"]
    _sign_in(page, url, operator)
    assert page.text_content("#who-role") == "operator"
    assert page.is_visible("#run-score")
    before = {j["job_id"] for j in _api(url, operator, "/v1/jobs", limit=50)["items"]}
    page.click("#run-score")
    page.wait_for_function(
        "() => /: (succeeded|failed|cancelled|interrupted)$/"
        ".test(document.getElementById('action-info').textContent)",
        timeout=300_000,
    )
    assert page.text_content("#action-info").endswith(": succeeded")
    new = [
        j for j in _api(url, operator, "/v1/jobs", limit=50)["items"] if j["job_id"] not in before
    ]
    assert [j["type"] for j in new] == ["score"] and new[0]["status"] == "succeeded"
    assert new[0]["created_by"] == _api(url, operator, "/v1/me")["key_id"]
    page.wait_for_function(
        "jid => Array.from(document.querySelectorAll('#jobs-rows tr'))"
        ".some(r => r.firstChild.textContent === jid)",
        arg=new[0]["job_id"],
    )

    # the monitor button: the panel then shows the run GET /v1/monitoring serves
    page.click("#run-monitor")
    page.wait_for_function(
        "() => /monitor .*: (succeeded|failed|cancelled|interrupted)$/"
        ".test(document.getElementById('action-info').textContent)",
        timeout=300_000,
    )
    assert page.text_content("#action-info").endswith(": succeeded")
    report = _api(url, operator, "/v1/monitoring")
    page.wait_for_function(
        "status => document.getElementById('monitoring-status').textContent === status",
        arg=report["status"],
    )
    drift = page.eval_on_selector_all(
        "#drift-rows tr", "rows => rows.map(r => Array.from(r.children).map(c => c.textContent))"
    )
    assert drift == [[f["feature"], f"{f['psi']:.3f}", f["status"]] for f in report["features"][:8]]
    performance = page.eval_on_selector_all(
        "#performance-rows tr", "rows => rows.map(r => r.firstChild.textContent)"
    )
    assert performance == [p["cut_date"] for p in report["performance"][-6:]]
    page.screenshot(path=str(tmp_path / "dashboard-operator.png"), full_page=True)
    assert page.errors == []


def test_markup_in_the_data_is_shown_as_text(browser, page, tmp_path):
    """A product name and a reason text holding HTML reach the page as text and never run."""
    from cobranza.api.keys import create_key
    from cobranza.config import load_settings

    lake = tmp_path / "lake"
    frame = results_frame(n=12)
    evil = '<img src=x onerror="window.__xss=1">'
    frame.loc[frame["decision"] == "ASSIGN", "product"] = evil
    frame.loc[frame["decision"] == "ASSIGN", "reason_1_text"] = "<b>negrita</b>"
    publish_results(lake, frame)
    key = create_key(load_settings(lake=lake), "viewer", "xss")["key"]
    server = LiveServer(lake, free_port()).start()
    try:
        _sign_in(page, server.url, key)
        rows = _rows(page)
        assert rows and {r["cells"][2] for r in rows} == {evil}
        assert page.query_selector("#worklist-rows img") is None
        assert page.query_selector("#worklist-rows b") is None
        assert page.evaluate("window.__xss") is None
        options = page.eval_on_selector_all("#f-product option", "o => o.map(x => x.value)")
        assert evil in options
        # no champion in this lake: the health panel says so instead of failing
        assert "ninguno" in page.text_content("#model-fields")
        assert page.text_content("#monitoring-status") == "SIN DATOS"
        assert page.errors == []
    finally:
        server.stop()


def test_interactive_docs_render_with_no_third_party_request(browser, served):
    """/docs draws the API's operations from the service's own files: no CDN on a bank network."""
    _, server, _ = served
    context = browser.new_context()
    tab = context.new_page()
    requested: list[str] = []
    tab.on("request", lambda req: requested.append(req.url))
    try:
        tab.goto(f"{server.url}/docs")
        tab.wait_for_selector(".opblock-summary-path", timeout=60_000)
        paths = tab.eval_on_selector_all(
            ".opblock-summary-path", "els => els.map(e => e.dataset.path || e.textContent)"
        )
    finally:
        context.close()
    assert "/v1/scores" in paths and "/v1/jobs" in paths
    assert requested and all(u.startswith(server.url) for u in requested), requested
