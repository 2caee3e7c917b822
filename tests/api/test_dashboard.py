"""The collections dashboard in a REAL browser (Debian Chromium driven by Playwright) against a real
`cobranza serve` process on loopback over a trained and scored lake.

What the page shows is compared with what the API answers for the same key: the counts of
`GET /v1/summary`, the worklist rows of `GET /v1/scores?decision=ASSIGN` (first and second page,
then filtered by product and by probability in percent) with their call order and the filtered
total, the NO_ASSIGN view, an obligation's detail in the side drawer, the charts, the CSV
download. The layout is checked on screenshots at 1280 and 768 px: no horizontal overflow, Spanish
text, compact rows, the drawer beside the list, the charts' bars in the API's proportions; every
text meets WCAG AA contrast. Roles: a wrong key stays on the sign-in form with an error, a revoked
key sends the user back to it, a viewer has no run button and an operator does (and runs scoring
with it). Values from the data are inserted as text: markup in a product name or a reason text is
shown, never run.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from PIL import Image

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
ASSIGN_BAR, NO_ASSIGN_BAR = (0xC8, 0x65, 0x2A), (0x2E, 0x8B, 0x57)  # style.css --*-bar
MAX_ROW_PX = 34  # a worklist row is one line (about 30 px): 20 or more rows fit on 1280x900
# WCAG 2.1 contrast of every visible text against the background it is drawn on
CONTRAST = """() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92
    : Math.pow((c + 0.055) / 1.055, 2.4); }).reduce((a, c, i) => a + c * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (node) => {
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const node of document.querySelectorAll("body *")) {
    const own = Array.from(node.childNodes).some((c) => c.nodeType === 3 && c.textContent.trim());
    if (!own || node.closest("[hidden]") || node.closest("button:disabled") || node.matches("option")) continue;
    const box = node.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const style = getComputedStyle(node);
    if (style.visibility !== "visible") continue;
    const fg = rgb(node instanceof SVGElement ? style.fill : style.color).slice(0, 3);
    const l1 = lum(fg), l2 = lum(background(node instanceof SVGElement ? node.ownerSVGElement : node));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    if (ratio < need) out.push([node.tagName, node.className.baseVal ?? node.className,
      node.textContent.trim().slice(0, 40), ratio.toFixed(2)]);
  }
  return out;
}"""
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


def _color_share(image: Image.Image, color: tuple[int, int, int], tolerance: int = 12) -> int:
    """Pixels of `image` within `tolerance` of `color` on every channel."""
    rgb = image.convert("RGB")
    return sum(
        n
        for n, px in rgb.getcolors(rgb.width * rgb.height)
        if all(abs(a - b) <= tolerance for a, b in zip(px, color, strict=True))
    )


def _no_sideways_overflow(page, path: Path) -> Image.Image:
    """A full-page screenshot: its width is the layout's, so it equals the viewport's when
    nothing overflows sideways."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(path), full_page=True)
    shot = Image.open(path)
    assert shot.width == width, f"the page is {shot.width} px wide in a {width} px window"
    return shot


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
    # the net savings split: the decisions' own, less the control group's cost
    for node, key in (
        ("#savings-without-holdout", "expected_savings_without_holdout"),
        ("#holdout-cost", "expected_holdout_cost"),
    ):
        assert summary[key] is not None
        assert abs(int(_digits(page.text_content(node))) - summary[key]) <= 1
    assert int(_digits(page.text_content("#collection-action"))) == round(
        summary["costs"]["collection_action"]
    )
    assert page.text_content("#model-version") == summary["model_version"] == "1"
    assert page.text_content("#cut-date") == summary["cut_date_max"]
    assert page.text_content("#who-role") == "viewer"
    words = http.get(f"{url}/dashboard/labels.json").json()  # cobranza.labels, Spanish

    # the worklist: the first page of GET /v1/scores?decision=ASSIGN in the calling order
    # (sort=risk), with its call order, codes in Spanish, the main reason in words
    first = _api(url, viewer, "/v1/scores", decision="ASSIGN", sort="risk", limit=PAGE_SIZE)
    rows = _rows(page)
    assert [r["id"] for r in rows] == [i["obligation_id"] for i in first["items"]]
    assert len(rows) == min(PAGE_SIZE, decisions["ASSIGN"])
    assert _digits(page.text_content("#worklist-total")) == str(first["total"])
    assert first["total"] == decisions["ASSIGN"]
    for n, (row, item) in enumerate(zip(rows, first["items"], strict=True), start=1):
        assert row["cells"][0] == str(n) == str(item["call_order"])
        assert row["cells"][2] == words["product"][item["product"]]
        assert row["cells"][3] == words["segment"][item["segment"]]
        assert row["cells"][4] == str(item["days_past_due"])
        assert item["decision"] == "ASSIGN"
        if item["eligible"]:
            assert row["cells"][7] == (item["reasons"][0]["text"] if item["reasons"] else "")
        else:  # a short tag, not the rule's sentence
            assert row["cells"][7] == "sin débito automático"
    eligible_row = next(
        (r, i) for r, i in zip(rows, first["items"], strict=True) if i["probability"] is not None
    )
    assert eligible_row[0]["cells"][6] == f"{100 * eligible_row[1]['probability']:.1f} %".replace(
        ".", ","
    )
    heights = page.eval_on_selector_all(
        "#worklist-rows tr", "rows => rows.map(r => r.getBoundingClientRect().height)"
    )
    assert max(heights) <= MAX_ROW_PX, heights

    # the next page follows the API's cursor, and the call order goes on
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
    rows2 = _rows(page)
    assert [r["id"] for r in rows2] == [i["obligation_id"] for i in second["items"]]
    assert rows2[0]["cells"][0] == str(PAGE_SIZE + 1)
    _reload_worklist(page, lambda: page.click("#prev-page"))
    assert [r["id"] for r in _rows(page)] == [i["obligation_id"] for i in first["items"]]

    # filter by product, days past due and probability in percent: the API's filtered list
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
    assert {r["cells"][2] for r in rows} == {words["product"][product]}
    assert min(int(r["cells"][4]) for r in rows) >= 5
    assert _digits(page.text_content("#worklist-total")) == str(filtered["total"])
    # the call order is the day's: the same numbers as in the unfiltered list
    assert [r["cells"][0] for r in rows] == [str(i["call_order"]) for i in filtered["items"]]
    page.fill("#f-max-p", "40")  # percent: probability <= 0.40
    _reload_worklist(page, lambda: page.click("#apply-filters"))
    capped = _api(
        url,
        viewer,
        "/v1/scores",
        decision="ASSIGN",
        product=product,
        min_days_past_due=5,
        max_probability=0.4,
        sort="risk",
        limit=PAGE_SIZE,
    )
    assert [r["id"] for r in _rows(page)] == [i["obligation_id"] for i in capped["items"]]
    page.fill("#f-max-p", "")
    _reload_worklist(page, lambda: page.click("#apply-filters"))

    # download the filtered list: the people's CSV for Excel (BOM, ';', Spanish), every page
    with page.expect_download() as info:
        page.click("#download-csv")
    path = tmp_path / "worklist.csv"
    info.value.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    downloaded = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    api_csv = http.get(
        f"{url}/v1/scores",
        params={
            "decision": "ASSIGN",
            "product": product,
            "min_days_past_due": 5,
            "sort": "risk",
            "format": "csv",
            "lang": "es",
            "sep": ";",
            "limit": 10_000,
        },
        headers={"X-API-Key": viewer},
    )
    expected = list(csv.DictReader(io.StringIO(api_csv.text), delimiter=";"))
    assert downloaded == expected and len(downloaded) == filtered["total"] >= len(rows)
    assert {r["Decisión"] for r in downloaded} == {"Gestionar"}
    assert {r["Producto"] for r in downloaded} == {words["product"][product]}
    # the calling order: no covering mandate first, then the largest expected benefit of managing
    order = [int(r["Orden de llamada"]) for r in downloaded]
    assert order == sorted(order)
    keys = [
        (
            r["Débito automático"] != "Sin débito automático",
            r["Beneficio esperado de gestionar (COP)"],
        )
        for r in downloaded
    ]
    assert {e for e, _ in keys} == {False, True}  # both kinds are in the list
    assert all(b == "" for e, b in keys if not e)  # no mandate: ASSIGN by rule, no benefit
    benefits = [float(b.lstrip("'").replace(",", ".")) for e, b in keys if e]
    assert benefits == sorted(benefits, reverse=True)

    # the order can be switched to the obligation id
    page.select_option("#f-sort", "obligation")
    _reload_worklist(page, lambda: page.click("#apply-filters"))
    by_id = [r["id"] for r in _rows(page)]
    assert by_id == sorted(by_id) and set(by_id) <= {
        i["obligation_id"] for i in capped["items"]
    } | {r["Obligación"] for r in downloaded}
    page.select_option("#f-sort", "risk")
    _reload_worklist(page, lambda: page.click("#apply-filters"))

    # one click opens the obligation in the side drawer, as GET /v1/scores/{id} has it, with
    # its reasons as bars; the list stays in view beside it
    oid = next(r["id"] for r, i in zip(rows, filtered["items"], strict=True) if i["eligible"])
    page.click(f"#worklist-rows tr[data-obligation-id='{oid}'] button.open-detail")
    page.wait_for_function(
        "oid => document.getElementById('detail-id').textContent === oid "
        "&& document.getElementById('detail-fields').children.length > 0",
        arg=oid,
    )
    detail = _api(url, viewer, f"/v1/scores/{oid}")
    assert page.is_visible("#drawer")
    fields = page.eval_on_selector_all("#detail-fields dd", "dds => dds.map(d => d.textContent)")
    labels = page.eval_on_selector_all("#detail-fields dt", "dts => dts.map(d => d.textContent)")
    assert detail["client_key"] in fields and "Gestionar" in fields
    assert str(detail["call_order"]) in fields
    # what decided it: the roll risks without and with management, the roll loss, the benefit
    shown = dict(zip(labels, fields, strict=True))
    for label, key in (
        ("Riesgo de rodar a 31+ sin gestión", "p_roll_no_action"),
        ("Riesgo de rodar a 31+ con gestión", "p_roll_action"),
    ):
        assert shown[label] == f"{100 * detail[key]:.1f} %".replace(".", ",")
    for label, key in (
        ("Pérdida si rueda a 31+", "roll_loss"),
        ("Beneficio esperado de gestionar", "expected_benefit"),
    ):
        assert int(_digits(shown[label])) == abs(round(detail[key]))
    benefit = shown["Beneficio esperado de gestionar"]
    assert ("-" in benefit or "−" in benefit) == (round(detail["expected_benefit"]) < 0)
    assert not any("Umbral" in label for label in labels)
    reasons = page.eval_on_selector_all(
        "#detail-reasons li .reason-label", "ls => ls.map(l => l.textContent)"
    )
    assert reasons == [r["text"] or r["code"] for r in detail["reasons"]]
    widths = page.eval_on_selector_all(
        "#detail-reasons .reason-bar", "bars => bars.map(b => b.getBoundingClientRect().width)"
    )
    assert len(widths) == len(detail["reasons"]) and max(widths) > 0
    # the decision's own reason comes first, a rule without weight; of the model's reasons the
    # strongest has the longest bar
    assert detail["reasons"][0]["contribution"] is None
    weighted = [
        (abs(r["contribution"]), w)
        for r, w in zip(detail["reasons"], widths, strict=True)
        if r["contribution"] is not None
    ]
    assert weighted
    strongest = max(weighted)[0]
    assert max(w for c, w in weighted if c == strongest) == max(w for _, w in weighted)
    drawer = page.eval_on_selector("#drawer", "d => d.getBoundingClientRect().toJSON()")
    assert drawer["right"] <= 1400 and drawer["left"] >= 1400 / 2
    assert page.evaluate(
        "() => { const t = document.getElementById('worklist-rows').getBoundingClientRect();"
        " return t.top < window.innerHeight && t.bottom > 0; }"
    ), "the list stays in view beside the drawer"
    page.keyboard.press("Escape")
    assert not page.is_visible("#drawer")

    # model and health: champion with its out-of-time AUC, monitoring state, last jobs
    models = _api(url, viewer, "/v1/models")
    champion = next(m for m in models["items"] if m["version"] == models["champion"])
    model_fields = page.eval_on_selector_all("#model-fields dd", "d => d.map(x => x.textContent)")
    assert model_fields[0] == champion["version"]
    assert f"{champion['oot_auc']:.3f}" in model_fields
    monitoring = http.get(f"{url}/v1/monitoring", headers={"X-API-Key": viewer})
    badge = page.get_attribute("#monitoring-status", "data-status")
    assert badge == (monitoring.json()["status"] if monitoring.status_code == 200 else "NO_DATA")
    jobs = _api(url, viewer, "/v1/jobs", limit=10)["items"]
    shown_jobs = page.eval_on_selector_all(
        "#jobs-rows tr", "rows => rows.map(r => r.firstChild.textContent)"
    )
    assert shown_jobs == [j["job_id"] for j in jobs]

    # a viewer gets no run button
    assert not page.is_visible("#operator-actions") and not page.is_visible("#run-score")
    assert page.evaluate(CONTRAST) == []
    assert page.errors == []


def test_no_assign_view_lists_the_self_cures_to_audit(page, served):
    _, server, keys = served
    url, viewer = server.url, keys["viewer"]
    _sign_in(page, url, viewer)
    _reload_worklist(page, lambda: page.click("#view-no-assign"))
    want = _api(url, viewer, "/v1/scores", decision="NO_ASSIGN", sort="risk", limit=PAGE_SIZE)
    rows = _rows(page)
    assert want["items"] and [r["id"] for r in rows] == [i["obligation_id"] for i in want["items"]]
    assert {r["cells"][0] for r in rows} == {"–"}  # not called: no call order
    assert _digits(page.text_content("#worklist-total")) == str(want["total"])
    assert "Autocura" in page.text_content("#worklist-title")
    assert page.get_attribute("#view-no-assign", "aria-pressed") == "true"
    benefits = [i["expected_benefit"] for i in want["items"]]
    # managing them does not pay (or the team was full)...
    # the model's NO_ASSIGN: managing would not pay (the capacity and the control group aside)
    assert all(
        i["expected_benefit"] < 0
        for i in want["items"]
        if not i["capacity_limited"] and i["arm"] != "HOLDOUT"
    )
    assert benefits == sorted(benefits, reverse=True)  # ...the closest to paying first


def test_control_group_rows_are_tagged_and_never_in_the_call_list(page, served):
    """The scoring run's holdout (arm HOLDOUT) is NO_ASSIGN: never in the ASSIGN call list, and in
    the NO_ASSIGN view tagged "do not contact" with no call order."""
    _, server, keys = served
    url, viewer = server.url, keys["viewer"]
    held, cursor = set(), None
    while True:
        params = {"decision": "NO_ASSIGN", "limit": 500} | ({"cursor": cursor} if cursor else {})
        page_ = _api(url, viewer, "/v1/scores", **params)
        held |= {i["obligation_id"] for i in page_["items"] if i["arm"] == "HOLDOUT"}
        if not (cursor := page_["next_cursor"]):
            break
    assert held
    _sign_in(page, url, viewer)
    assert held.isdisjoint(r["id"] for r in _rows(page))
    assert page.query_selector("#worklist-rows tr[data-arm=HOLDOUT]") is None
    _reload_worklist(page, lambda: page.click("#view-no-assign"))
    shown = {r["id"] for r in _rows(page)} & held
    tagged = page.eval_on_selector_all(
        "#worklist-rows tr[data-arm=HOLDOUT]",
        """rows => rows.map(r => [r.dataset.obligationId,
            r.querySelector('.tag-holdout').textContent, r.querySelector('td.order').textContent])""",
    )
    assert shown and {t[0] for t in tagged} == shown
    assert {t[1] for t in tagged} == {"Grupo de control — no contactar"}
    assert {t[2] for t in tagged} == {"–"}
    assert page.errors == []


@pytest.mark.parametrize("width", [1280, 768])
def test_layout_fits_the_screen_in_spanish_with_drawer_and_charts(browser, served, tmp_path, width):
    """Screenshots at a desktop and a tablet width: nothing overflows sideways, the text is
    Spanish, the call order and the drawer show, the charts draw the API's figures."""
    _, server, keys = served
    url, viewer = server.url, keys["viewer"]
    context = browser.new_context(viewport={"width": width, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        _sign_in(tab, url, viewer)
        summary = _api(url, viewer, "/v1/summary")
        shot = _no_sideways_overflow(tab, tmp_path / f"dashboard-{width}.png")
        assert shot.height > 900
        text = tab.inner_text("body")
        for spanish in (
            "Lista de trabajo",
            "Orden de llamada",
            "obligaciones con estos filtros",
            "Decisiones por producto",
            "sin débito automático",
            "Gestionar",
        ):
            assert spanish in text, spanish
        for code in ("CONSUMER_LOAN", "CREDIT_CARD", "AFFLUENT", "NO_ASSIGN", "INSUFFICIENT_DATA"):
            assert code not in tab.inner_text("#app"), code
        assert tab.text_content("#worklist-rows tr:first-child td.order") == "1"
        visible_rows = tab.evaluate(
            "() => Array.from(document.querySelectorAll('#worklist-rows tr'))"
            ".filter(r => r.getBoundingClientRect().bottom <= window.innerHeight + 1200).length"
        )
        assert visible_rows >= 20

        # the charts: one bar pair per product and segment, in the summary's proportions
        for kind, groups in (
            ("product", summary["by_product"]),
            ("segment", summary["by_segment"]),
        ):
            bars = tab.eval_on_selector_all(
                f"#chart-{kind} rect[data-group]",
                "rs => rs.map(r => [r.dataset.group, r.dataset.kind, r.getBBox().width])",
            )
            assert {g for g, _, _ in bars} == {g[kind] for g in groups}
            widest = max(g["population"] for g in groups)
            totals = {g[kind]: sum(w for grp, _, w in bars if grp == g[kind]) for g in groups}
            longest = max(totals.values())
            for g in groups:
                a = next(w for grp, k, w in bars if grp == g[kind] and k == "ASSIGN")
                assert totals[g[kind]] / longest == pytest.approx(
                    g["population"] / widest, abs=0.01
                )
                if g["population"]:
                    assert a / totals[g[kind]] == pytest.approx(
                        g["assign"] / g["population"], abs=0.01
                    )
            image = tab.locator(f"#chart-{kind}").screenshot(
                path=str(tmp_path / f"chart-{kind}-{width}.png")
            )
            picture = Image.open(io.BytesIO(image))
            orange, green = _color_share(picture, ASSIGN_BAR), _color_share(picture, NO_ASSIGN_BAR)
            share = sum(g["assign"] for g in groups) / sum(g["population"] for g in groups)
            assert orange > 200 and green > 50
            assert orange / (orange + green) == pytest.approx(share, abs=0.08)
        cuts = _api(url, viewer, "/v1/summary/cuts")
        trend = tab.eval_on_selector_all(
            "#chart-trend rect[data-cut]", "rs => rs.map(r => r.dataset.cut)"
        )
        assert sorted(set(trend)) == [c["cut_date"] for c in cuts][-12:]

        # the drawer opens beside the list, inside the window
        tab.click("#worklist-rows tr:first-child button.open-detail")
        tab.wait_for_selector("#drawer:not([hidden])")
        tab.wait_for_function("document.getElementById('detail-fields').children.length > 0")
        box = tab.eval_on_selector("#drawer", "d => d.getBoundingClientRect().toJSON()")
        assert box["left"] >= 0 and box["right"] <= width and box["top"] == 0
        assert tab.evaluate("document.documentElement.scrollWidth") <= width
        tab.screenshot(path=str(tmp_path / f"drawer-{width}.png"))
        drawn = Image.open(tmp_path / f"drawer-{width}.png").convert("RGB")
        # the drawer's white panel covers its part of the window; the page shows left of it
        assert drawn.getpixel((width - 5, 450)) == (255, 255, 255)
        assert tab.evaluate(CONTRAST) == []
        assert errors == []
    finally:
        context.close()


def test_root_leads_to_the_dashboard_and_the_icon_is_served(served):
    _, server, _ = served
    root = http.get(f"{server.url}/", follow_redirects=False)
    assert root.status_code in (307, 308) and root.headers["location"] == "/dashboard"
    icon = http.get(f"{server.url}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert Image.open(io.BytesIO(icon.content)).format == "ICO"
    english = http.get(f"{server.url}/dashboard/labels.json", params={"lang": "en"}).json()
    assert english["product"]["CONSUMER_LOAN"] == "Consumer loan"


def test_english_is_one_switch_away(page, served):
    _, server, keys = served
    _sign_in(page, server.url, keys["viewer"])
    page.select_option("#lang", "en")
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.wait_for_function(
        "document.getElementById('worklist-title').textContent.startsWith('Worklist')"
    )
    page.wait_for_selector("body[data-loaded=true]")
    words = http.get(f"{server.url}/dashboard/labels.json", params={"lang": "en"}).json()
    first = _api(server.url, keys["viewer"], "/v1/scores", decision="ASSIGN", sort="risk", limit=1)
    page.wait_for_function(
        "w => document.querySelector('#worklist-rows tr td:nth-child(3)').textContent === w",
        arg=words["product"][first["items"][0]["product"]],
    )
    assert "Calling order" in page.inner_text("#worklist")


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
    done = (
        "type => { const i = document.getElementById('action-info'); return i.dataset.type === "
        "type && ['succeeded', 'failed', 'cancelled', 'interrupted'].includes(i.dataset.status); }"
    )
    page.wait_for_function(done, arg="score", timeout=300_000)
    assert page.get_attribute("#action-info", "data-status") == "succeeded"
    assert page.text_content("#action-info").endswith(": Terminado")
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
    page.wait_for_function(done, arg="monitor", timeout=300_000)
    assert page.get_attribute("#action-info", "data-status") == "succeeded"
    report = _api(url, operator, "/v1/monitoring")
    page.wait_for_function(
        "status => document.getElementById('monitoring-status').dataset.status === status",
        arg=report["status"],
    )
    words = http.get(f"{url}/dashboard/labels.json").json()["monitoring_status"]
    assert page.text_content("#monitoring-status") == words[report["status"]]
    drift = page.eval_on_selector_all(
        "#drift-rows tr", "rows => rows.map(r => Array.from(r.children).map(c => c.textContent))"
    )
    assert drift == [
        [f["feature"], f"{f['psi']:.3f}", words[f["status"]]] for f in report["features"][:8]
    ]
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
    arms = [
        "HOLDOUT" if i % 4 == 0 else "CHALLENGER" if i % 4 == 1 else "ASSIGNED"
        for i in range(len(frame))
    ]
    publish_results(lake, frame, extra={"arm": arms})
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
        # results that carry the arm: control-group rows are marked "do not contact"
        holdout = page.eval_on_selector_all(
            "#worklist-rows tr[data-arm=HOLDOUT]",
            "rows => rows.map(r => r.querySelector('.tag-holdout').textContent)",
        )
        want = [
            i for i, a in enumerate(arms) if a == "HOLDOUT" and frame["decision"][i] == "ASSIGN"
        ]
        assert len(holdout) == len(want) > 0
        assert set(holdout) == {"Grupo de control — no contactar"}
        # rows the challenger model decided are worklist rows like the others, their arm shown
        challenger = page.eval_on_selector_all(
            "#worklist-rows tr[data-arm=CHALLENGER]",
            "rows => rows.map(r => [r.className, r.querySelector('.tag-challenger').textContent])",
        )
        want = [
            i for i, a in enumerate(arms) if a == "CHALLENGER" and frame["decision"][i] == "ASSIGN"
        ]
        assert len(challenger) == len(want) > 0
        assert set(map(tuple, challenger)) == {("", "Modelo retador")}
        assert page.evaluate(CONTRAST) == []  # the tags and the marked rows stay readable
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
