"""Read endpoints on a results version published by hand: filters, pagination, formats, summary."""

from __future__ import annotations

import base64
import io
import json
from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.api.conftest import POLICY, auth, publish_results, results_frame


@pytest.fixture
def scored(client, lake_dir, keys):
    frame = results_frame(40)
    version = publish_results(lake_dir, frame)
    return frame, version, auth(keys["viewer"])


def _all_pages(client, headers, **params):
    items, cursor, pages = [], None, 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get("/v1/scores", params=query, headers=headers).json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def test_no_results_yet_is_404(client, keys):
    resp = client.get("/v1/scores", headers=auth(keys["viewer"]))
    assert resp.status_code == 404
    assert "no results" in resp.json()["detail"]


def test_cursor_pagination_returns_every_row_once_in_order(client, scored):
    frame, _, headers = scored
    items, pages = _all_pages(client, headers, limit=7)
    ids = [r["obligation_id"] for r in items]
    assert ids == sorted(frame["obligation_id"])
    assert pages == 6  # 40 rows by 7: 5 full pages and one of 5


def test_risk_sort_is_the_policy_capacity_order_and_its_cursor_survives_ties(
    client, lake_dir, keys
):
    """No mandate first, then the largest expected benefit of managing, then the largest roll
    loss; ties broken by id."""
    frame = results_frame(61, seed=3)
    frame["expected_benefit"] = frame["expected_benefit"].round(-4)  # many ties on benefit...
    frame["roll_loss"] = 100_000.0 + 50_000.0 * (np.arange(61) % 3)  # ...and on roll loss
    frame.loc[frame.index % 5 == 0, "decision"] = "ASSIGN"
    publish_results(lake_dir, frame)
    headers = auth(keys["viewer"])
    items, pages = _all_pages(client, headers, limit=4, sort="risk")
    assert pages == 16  # 61 rows by 4
    expected = (
        frame.assign(b=-frame["expected_benefit"].fillna(np.inf), loss=-frame["roll_loss"])
        .sort_values(["cut_date", "b", "loss", "obligation_id"])["obligation_id"]
        .tolist()
    )
    assert [r["obligation_id"] for r in items] == expected
    assert not items[0]["eligible"]  # no covering mandate: the debit cannot cure it
    assigned, _ = _all_pages(client, headers, limit=5, sort="risk", decision="ASSIGN")
    assert [r["obligation_id"] for r in assigned] == [
        o for o in expected if o in set(frame.loc[frame.decision == "ASSIGN", "obligation_id"])
    ]
    first = client.get("/v1/scores", params={"limit": 4, "sort": "risk"}, headers=headers).json()
    wrong = client.get(
        "/v1/scores", params={"cursor": first["next_cursor"]}, headers=headers
    )  # a risk cursor on the default sort
    assert wrong.status_code == 400 and "sort=risk" in wrong.json()["detail"]
    assert client.get("/v1/scores", params={"sort": "amount"}, headers=headers).status_code == 422


@pytest.mark.parametrize(
    ("params", "mask"),
    [
        ({"decision": "NO_ASSIGN"}, lambda f: f.decision == "NO_ASSIGN"),
        ({"product": "CREDIT_CARD"}, lambda f: f["product"] == "CREDIT_CARD"),
        (
            {"segment": "AFFLUENT", "decision": "ASSIGN"},
            lambda f: (f.segment == "AFFLUENT") & (f.decision == "ASSIGN"),
        ),
        (
            {"min_probability": 0.3, "max_probability": 0.7},
            lambda f: f.probability.between(0.3, 0.7),
        ),
        ({"min_days_past_due": 5, "max_days_past_due": 9}, lambda f: f.days_past_due.between(5, 9)),
        ({"eligible": False}, lambda f: ~f.eligible),
        ({"cut_date": "2025-06-30"}, lambda f: f.cut_date == date(2025, 6, 30)),
        ({"cut_date": "2025-05-31"}, lambda f: f.cut_date == date(2025, 5, 31)),
    ],
)
def test_filters_match_a_pandas_filter(client, scored, params, mask):
    frame, _, headers = scored
    items, _ = _all_pages(client, headers, limit=9, **params)
    expected = sorted(frame.loc[mask(frame), "obligation_id"])
    assert [r["obligation_id"] for r in items] == expected


def test_one_obligation_has_reason_codes_and_no_personal_data(client, scored):
    frame, _, headers = scored
    resp = client.get("/v1/scores/OB00005", headers=headers)
    assert resp.status_code == 200
    body = resp.json()
    row = frame.set_index("obligation_id").loc["OB00005"]
    assert body["probability"] == pytest.approx(row.probability)
    assert body["decision"] == row.decision
    assert [r["code"] for r in body["reasons"]] == ["feature_1", "feature_2", "feature_3"]
    assert body["reasons"][1]["contribution"] == pytest.approx(0.25)
    assert set(body) & {"client_id", "full_name", "document_number", "email", "phone"} == set()
    ineligible = client.get("/v1/scores/OB00003", headers=headers).json()
    assert ineligible["probability"] is None and ineligible["decision"] == "ASSIGN"
    assert ineligible["reasons"][0]["code"] == "NO_ACTIVE_MANDATE"
    assert client.get("/v1/scores/NOPE", headers=headers).status_code == 404


def test_csv_and_parquet_by_accept_header_or_format(client, scored):
    frame, version, headers = scored
    csv = client.get("/v1/scores", params={"limit": 10}, headers={**headers, "Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].split(",")[:3] == ["obligation_id", "cut_date", "client_key"]
    assert len(lines) == 11
    assert csv.headers["x-next-cursor"]
    assert csv.headers["x-results-version"] == version
    pq_resp = client.get(
        "/v1/scores", params={"format": "parquet", "decision": "NO_ASSIGN"}, headers=headers
    )
    table = pq.read_table(io.BytesIO(pq_resp.content))
    assert table.num_rows == int((frame.decision == "NO_ASSIGN").sum())
    assert table.schema.field("cut_date").type == "date32[day]"
    assert "x-next-cursor" not in pq_resp.headers


def test_bad_cursor_is_400_and_outdated_cursor_says_so(client, scored, lake_dir):
    _, _, headers = scored
    assert (
        client.get("/v1/scores", params={"cursor": "garbage!"}, headers=headers).status_code == 400
    )
    cursor = client.get("/v1/scores", params={"limit": 5}, headers=headers).json()["next_cursor"]
    publish_results(lake_dir, results_frame(12, seed=1))
    resp = client.get("/v1/scores", params={"cursor": cursor}, headers=headers)
    assert resp.status_code == 400
    assert "start again" in resp.json()["detail"]


def test_new_results_version_is_picked_up_and_history_serves_old_cuts(client, scored, lake_dir):
    _, _, headers = scored
    newer = results_frame(12, cut=date(2025, 7, 31), seed=2)
    version = publish_results(lake_dir, newer)
    body = client.get("/v1/scores", headers=headers).json()
    assert body["results_version"] == version
    assert len(body["items"]) == 12
    old = client.get("/v1/scores", params={"cut_date": "2025-06-30", "limit": 100}, headers=headers)
    assert len(old.json()["items"]) == 40
    one = client.get("/v1/scores/OB00020", params={"cut_date": "2025-06-30"}, headers=headers)
    assert one.json()["cut_date"] == "2025-06-30"


def test_summary_counts_and_expected_savings(client, scored):
    frame, version, headers = scored
    body = client.get("/v1/summary", headers=headers).json()
    no_assign = frame.decision == "NO_ASSIGN"
    assert body["results_version"] == version
    assert body["population"] == 40
    assert body["eligible"] == int(frame.eligible.sum())
    assert body["decisions"] == {
        "ASSIGN": int((~no_assign).sum()),
        "NO_ASSIGN": int(no_assign.sum()),
    }
    # a NO_ASSIGN obligation saves what managing it would cost beyond the rolls it prevents
    loss = 10 * frame.amount_past_due * frame["product"].map(POLICY["provision_step"]) + 30_000
    prevented = (frame.p_roll_no_action - frame.p_roll_action) * loss
    savings = float(np.sum(np.where(no_assign, 8_000 - prevented, 0.0)))
    assert savings > 0
    assert body["expected_savings"] == pytest.approx(savings, abs=0.01)
    assert sum(g["population"] for g in body["by_product"]) == 40
    assert sum(g["expected_savings"] for g in body["by_product"]) == pytest.approx(savings)
    assert body["capacity_limited"] == 0
    assert body["mean_p_roll_no_action"] == pytest.approx(frame.p_roll_no_action.mean(), abs=1e-6)
    assert body["costs"] == {
        "collection_action": 8000.0,
        "later_collection_cost": 30000.0,
        "provision_step": {"CONSUMER_LOAN": 0.08, "CREDIT_CARD": 0.1},
        "default_provision_step": 0.05,
        "capacity": None,
    }
    assert "threshold" not in body


@pytest.mark.parametrize("identified", [True, False])
def test_summary_splits_the_savings_into_the_policys_and_the_control_groups(
    client, lake_dir, keys, identified
):
    """The control group's cost is the benefit of managing of the held-out rows the policy would
    have assigned (where managing pays; every one when the effect is not identified)."""
    frame = results_frame(40)
    held = np.flatnonzero(frame.eligible.to_numpy())[::3]
    benefit = frame.expected_benefit.to_numpy()
    assert (benefit[held] >= 0).any() and (benefit[held] < 0).any()
    frame.loc[held, "arm"] = "HOLDOUT"
    frame.loc[held, "decision"] = "NO_ASSIGN"
    publish_results(lake_dir, frame, policy={**POLICY, "effect_identified": identified})
    body = client.get("/v1/summary", headers=auth(keys["viewer"])).json()
    assigned = benefit[held] >= 0 if identified else np.ones(len(held), bool)
    lost = float(benefit[held][assigned].sum())
    net = float(-benefit[frame.decision.to_numpy() == "NO_ASSIGN"].sum())
    assert body["holdout"] == len(held)
    assert body["expected_savings"] == pytest.approx(net, abs=0.01)
    assert body["expected_holdout_cost"] == pytest.approx(lost, abs=0.01)
    assert body["expected_savings_without_holdout"] == pytest.approx(net + lost, abs=0.01)
    assert body["expected_savings"] == pytest.approx(
        body["expected_savings_without_holdout"] - body["expected_holdout_cost"], abs=1e-6
    )
    if identified:
        assert body["expected_holdout_cost"] > 0


def test_call_order_numbers_the_cut_assign_rows_whatever_the_filter(client, lake_dir, keys):
    """1 is the first to call in the cut's risk order; a filtered page keeps the day's numbers."""
    frame = results_frame(45, seed=4)
    publish_results(lake_dir, frame)
    headers = auth(keys["viewer"])
    everyone, _ = _all_pages(client, headers, decision="ASSIGN", sort="risk", limit=8)
    assert [r["call_order"] for r in everyone] == list(range(1, len(everyone) + 1))
    by_id = {r["obligation_id"]: r["call_order"] for r in everyone}
    cards = client.get(
        "/v1/scores",
        params={"decision": "ASSIGN", "product": "CREDIT_CARD", "sort": "risk", "limit": 5},
        headers=headers,
    ).json()
    assert cards["items"] and all(
        r["call_order"] == by_id[r["obligation_id"]] for r in cards["items"]
    )
    want_total = int(((frame.decision == "ASSIGN") & (frame["product"] == "CREDIT_CARD")).sum())
    assert cards["total"] == want_total and cards["count"] == min(5, want_total)
    no_assign = client.get("/v1/scores", params={"decision": "NO_ASSIGN"}, headers=headers).json()
    assert no_assign["items"] and all(r["call_order"] is None for r in no_assign["items"])
    assert no_assign["total"] == int((frame.decision == "NO_ASSIGN").sum())
    csv_resp = client.get(
        "/v1/scores", params={"format": "csv", "decision": "ASSIGN", "limit": 3}, headers=headers
    )
    assert csv_resp.headers["x-total-count"] == str(len(everyone))


def test_a_repeated_reason_is_shown_once(client, lake_dir, keys):
    frame = results_frame(7)
    frame["reason_2_text"] = frame["reason_1_text"]  # two features that read the same
    publish_results(lake_dir, frame)
    body = client.get("/v1/scores/OB00000", headers=auth(keys["viewer"])).json()
    texts = [r["text"] for r in body["reasons"]]
    assert texts == ["reason 1 in words", "reason 3 in words"]


def test_people_csv_in_spanish_for_excel_and_codes_in_english(client, lake_dir, keys):
    import csv as csvlib

    frame = results_frame(14)
    frame.loc[0, "reason_1_text"] = '=HYPERLINK("http://evil","clic")'
    frame.loc[1, "product"] = "@SUM(A1:A9)"
    publish_results(lake_dir, frame)
    headers = auth(keys["viewer"])
    base = {"format": "csv", "sort": "obligation", "limit": 100}
    es = client.get(
        "/v1/scores", params={**base, "lang": "es", "sep": ";", "bom": True}, headers=headers
    )
    assert es.headers["content-type"] == "text/csv; charset=utf-8"
    assert es.content.startswith(b"\xef\xbb\xbf")
    rows = list(csvlib.DictReader(io.StringIO(es.content.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 14
    first, second, third = rows[0], rows[1], rows[3]
    assert list(first)[:3] == ["Orden de llamada", "Obligación", "Corte"]
    assert first["Obligación"] == "OB00000" and first["Producto"] == "Tarjeta de crédito"
    assert first["Razón 1"] == "'" + frame.loc[0, "reason_1_text"]  # never a live formula
    assert second["Producto"] == "'@SUM(A1:A9)"
    assert first["Segmento"] == "Masivo" and second["Segmento"] == "Preferencial"
    p = frame.loc[0, "probability"]
    assert first["Probabilidad de autocura (%)"] == f"{100 * p:.1f}".rstrip("0").rstrip(
        "."
    ).replace(".", ",")
    assert (
        first["Decisión"]
        == {"ASSIGN": "Gestionar", "NO_ASSIGN": "No gestionar (gestionar no paga)"}[
            frame.loc[0, "decision"]
        ]
    )
    assert third["Débito automático"] == "Sin débito automático"  # OB00003 is ineligible
    assert third["Monto vencido (COP)"] == "103000"
    assert first["Grupo"] == "Modelo campeón"  # scoring's arm, in words
    en = client.get("/v1/scores", params={**base, "lang": "en"}, headers=headers).text
    en_rows = list(csvlib.DictReader(io.StringIO(en)))
    assert en_rows[0]["Product"] == "Credit card" and en_rows[0]["Obligation"] == "OB00000"
    codes = list(
        csvlib.DictReader(io.StringIO(client.get("/v1/scores", params=base, headers=headers).text))
    )
    assert codes[0]["product"] == "CREDIT_CARD" and codes[1]["product"] == "'@SUM(A1:A9)"
    assert codes[0]["reason_1_text"].startswith("'=HYPERLINK")
    assert all(len(r["probability"].split(".")[-1]) <= 6 for r in codes if r["probability"])


def test_the_arm_is_a_column_when_the_results_carry_it(client, lake_dir, keys):
    import csv as csvlib

    frame = results_frame(6)
    arms = ["ASSIGNED", "HOLDOUT", "RULE", "ASSIGNED", "HOLDOUT", "ASSIGNED"]
    publish_results(lake_dir, frame, extra={"arm": arms})
    headers = auth(keys["viewer"])
    one = client.get("/v1/scores/OB00001", headers=headers).json()
    assert one["arm"] == "HOLDOUT"
    text = client.get(
        "/v1/scores", params={"format": "csv", "lang": "es", "sort": "obligation"}, headers=headers
    ).text
    rows = list(csvlib.DictReader(io.StringIO(text)))
    assert rows[1]["Grupo"] == "Grupo de control — no contactar"


def test_challenger_rows_are_worklist_rows_that_carry_their_arm(client, lake_dir, keys):
    """Rows decided by the challenger model are contacted like any other: in the ASSIGN list,
    with their arm, the version that decided them, and counted apart in the summary."""
    import csv as csvlib

    frame = results_frame(14)
    arms = ["CHALLENGER" if i % 3 == 0 and e else "CHAMPION" for i, e in enumerate(frame.eligible)]
    arms[1] = "HOLDOUT"
    frame["arm"] = arms
    frame["model_version"] = ["2" if a == "CHALLENGER" else "1" for a in arms]
    publish_results(lake_dir, frame)
    headers = auth(keys["viewer"])
    routed = {f"OB{i:05d}" for i, a in enumerate(arms) if a == "CHALLENGER"}
    listed = client.get(
        "/v1/scores", params={"decision": "ASSIGN", "limit": 100}, headers=headers
    ).json()["items"]
    assigned = {i["obligation_id"] for i in listed}
    want = {f"OB{i:05d}" for i in range(14) if frame["decision"][i] == "ASSIGN"}
    assert assigned == want and routed & assigned
    for item in listed:
        if item["obligation_id"] in routed:
            assert item["arm"] == "CHALLENGER" and item["model_version"] == "2"
    summary = client.get("/v1/summary", headers=headers).json()
    assert summary["challenger"] == len(routed) and summary["holdout"] == 1
    text = client.get(
        "/v1/scores", params={"format": "csv", "lang": "es", "sort": "obligation"}, headers=headers
    ).text
    rows = {r["Obligación"]: r for r in csvlib.DictReader(io.StringIO(text))}
    assert {rows[o]["Grupo"] for o in routed} == {"Modelo retador"}


def test_decisions_by_cut_take_the_last_run_of_each_cut(client, lake_dir, keys):
    june, july = date(2025, 6, 30), date(2025, 7, 31)
    publish_results(lake_dir, results_frame(20, cut=june, seed=1))
    rescored = results_frame(20, cut=june, seed=2)  # the same cut again: replaces the first run
    publish_results(lake_dir, rescored)
    current = results_frame(9, cut=july, seed=3)
    publish_results(lake_dir, current)
    headers = auth(keys["viewer"])
    cuts = client.get("/v1/summary/cuts", headers=headers).json()
    assert [c["cut_date"] for c in cuts] == ["2025-06-30", "2025-07-31"]
    by_cut = {c["cut_date"]: c for c in cuts}
    for cut, frame in (("2025-06-30", rescored), ("2025-07-31", current)):
        got = by_cut[cut]
        assert got["population"] == len(frame)
        assert got["assign"] == int((frame.decision == "ASSIGN").sum())
        assert got["no_assign"] == int((frame.decision == "NO_ASSIGN").sum())
        na = frame[frame.decision == "NO_ASSIGN"]
        assert got["expected_savings"] == pytest.approx(
            float(-na["expected_benefit"].sum()), abs=0.01
        )
    assert by_cut["2025-07-31"]["is_current"] and not by_cut["2025-06-30"]["is_current"]
    summary = client.get("/v1/summary", headers=headers).json()
    assert by_cut["2025-07-31"]["expected_savings"] == pytest.approx(
        summary["expected_savings"], abs=0.01
    )


def test_forged_cursor_numbers_are_400_not_500(client, lake_dir, keys):
    version = publish_results(lake_dir, results_frame(20))
    viewer = auth(keys["viewer"])
    first = client.get("/v1/scores", params={"sort": "risk", "limit": 5}, headers=viewer).json()
    assert first["next_cursor"]
    page = client.get(
        "/v1/scores",
        params={"sort": "risk", "limit": 5, "cursor": first["next_cursor"]},
        headers=viewer,
    )
    assert page.status_code == 200 and page.json()["count"] == 5
    for middle in ([10**40, 1, "z"], [0.5, -(10**40), "z"], [1e300, 0, "z"]):
        cursor = _forged(version, ["2025-06-30", *middle])
        resp = client.get("/v1/scores", params={"sort": "risk", "cursor": cursor}, headers=viewer)
        assert resp.status_code == 400, (middle, resp.text)
        assert "cursor is not valid" in resp.json()["detail"]
    # 1e309 and -1e309 are inf in JSON: refused too, not taken as an open bound
    raw = f'["{version}","risk",["2025-06-30",1e309,-1e309,"z"]]'
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    resp = client.get("/v1/scores", params={"sort": "risk", "cursor": cursor}, headers=viewer)
    assert resp.status_code == 400


def _forged(version: str, key: list) -> str:
    raw = json.dumps([version, "risk", key], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_people_csv_shows_what_decided_each_row(client, lake_dir, keys):
    import csv as csvlib

    frame = results_frame(10)
    publish_results(lake_dir, frame)
    text = client.get(
        "/v1/scores",
        params={"format": "csv", "lang": "en", "sort": "obligation"},
        headers=auth(keys["viewer"]),
    ).text
    rows = list(csvlib.DictReader(io.StringIO(text)))
    first, ineligible = rows[0], rows[3]
    assert float(first["Roll risk to 31+ unmanaged (%)"]) == pytest.approx(
        100 * frame.loc[0, "p_roll_no_action"], abs=0.05
    )
    assert float(first["Roll risk to 31+ managed (%)"]) == pytest.approx(
        100 * frame.loc[0, "p_roll_action"], abs=0.05
    )
    assert float(first["Loss if it rolls (COP)"]) == round(frame.loc[0, "roll_loss"])
    assert float(first["Expected benefit of managing (COP)"]) == round(
        frame.loc[0, "expected_benefit"]
    )
    assert ineligible["Expected benefit of managing (COP)"] == ""  # ASSIGN by rule


def test_results_scored_before_the_expected_benefit_still_serve(client, lake_dir, keys):
    """A version without the estimate columns: pages, the calling order and the detail work, with
    the estimates null, and savings that cannot be computed are null rather than a partial sum."""
    from cobranza.api.results import ESTIMATES

    frame = results_frame(12)
    old_policy = {"collection_action": 8000.0, "capacity": None}  # logged before the new costs
    publish_results(lake_dir, frame, drop=ESTIMATES, policy=old_policy)
    headers = auth(keys["viewer"])
    items, _ = _all_pages(client, headers, sort="risk", limit=5)
    assert sorted(r["obligation_id"] for r in items) == sorted(frame["obligation_id"])
    one = client.get("/v1/scores/OB00001", headers=headers).json()
    assert one["expected_benefit"] is None and one["p_roll_no_action"] is None
    summary = client.get("/v1/summary", headers=headers).json()
    assert summary["expected_savings"] is None
    assert summary["population"] == 12
    assert summary["costs"]["collection_action"] == 8000.0
    assert (
        summary["costs"]["later_collection_cost"]
        == client.app.state.services.settings.costs.later_collection_cost
    )
    cuts = client.get("/v1/summary/cuts", headers=headers).json()
    assert [c["expected_savings"] for c in cuts] == [None]
    csv_resp = client.get("/v1/scores", params={"format": "csv"}, headers=headers)
    assert csv_resp.status_code == 200


def test_a_poisoned_extract_is_quarantined_and_formula_cells_are_exported_inert(
    live_server, lake_dir, keys, tmp_path
):
    """Against a real server: an id that would run as a formula is quarantined by the ingest job,
    and a formula-like id already in results leaves every CSV with a leading `'`."""
    import copy
    import csv as csvlib

    from tests.api.conftest import wait_job
    from tests.http import live_client
    from tests.ingest.conftest import BASE_ROWS, write_extract

    rows = copy.deepcopy(BASE_ROWS)
    poisoned = copy.deepcopy(rows["obligations"][0])
    poisoned[0] = "=1+2*3"
    rows["obligations"].append(poisoned)
    extract = write_extract(tmp_path / "poisoned", rows=rows)
    op, viewer = auth(keys["operator"]), auth(keys["viewer"])
    with live_client(base_url=live_server.url, timeout=60) as http:
        job = http.post(
            "/v1/jobs", json={"type": "ingest", "params": {"extract_dir": str(extract)}}, headers=op
        ).json()
        done = wait_job(live_server.url, op, job["job_id"])
        assert done["status"] == "succeeded", done
        assert done["result"]["files"]["obligations.csv"]["rows_quarantined"] == 1
        frame = results_frame(6)
        frame.loc[2, "obligation_id"] = "=1+2*3"
        frame.loc[3, "obligation_id"] = "@SUM(A1)"
        publish_results(lake_dir, frame)
        for params in ({"format": "csv"}, {"format": "csv", "lang": "es", "sep": ";"}):
            body = http.get("/v1/scores", params={**params, "limit": 100}, headers=viewer)
            assert body.status_code == 200
            sep = params.get("sep", ",")
            cells = [c for row in csvlib.reader(io.StringIO(body.text), delimiter=sep) for c in row]
            assert "'=1+2*3" in cells and "'@SUM(A1)" in cells
            assert not [c for c in cells if c[:1] in ("=", "@", "+", "\t", "\r")]
