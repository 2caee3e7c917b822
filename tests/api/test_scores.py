"""Read endpoints on a results version published by hand: filters, pagination, formats, summary."""

from __future__ import annotations

import base64
import io
import json
from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.api.conftest import auth, publish_results, results_frame


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
    """No mandate first, then lowest probability, then largest amount; ties broken by id."""
    frame = results_frame(61, seed=3)
    frame["probability"] = frame["probability"].round(1)  # many ties on probability...
    frame["amount_past_due"] = 100_000.0 + 50_000.0 * (np.arange(61) % 3)  # ...and on amount
    frame.loc[frame.index % 5 == 0, "decision"] = "ASSIGN"
    publish_results(lake_dir, frame)
    headers = auth(keys["viewer"])
    items, pages = _all_pages(client, headers, limit=4, sort="risk")
    assert pages == 16  # 61 rows by 4
    expected = (
        frame.assign(p=frame["probability"].fillna(-1.0), a=-frame["amount_past_due"])
        .sort_values(["cut_date", "p", "a", "obligation_id"])["obligation_id"]
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
    loss = 25_000 + 0.05 * frame.amount_past_due
    savings = float(np.sum(np.where(no_assign, 8_000 - (1 - frame.probability) * loss, 0.0)))
    assert body["expected_savings"] == pytest.approx(savings, abs=0.01)
    assert sum(g["population"] for g in body["by_product"]) == 40
    assert body["threshold"] == 0.6


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
