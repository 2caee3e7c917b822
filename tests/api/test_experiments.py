"""`GET /v1/experiments` against a real `cobranza serve` on loopback: the experiment report of the
current gold, for viewers and above, 404 before there is gold.

The gold is hand-built (two randomized cuts and one without a holdout, known outcomes), published
through `lake.publish`; the figures are recounted here with pandas.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cobranza.api.keys import create_key
from cobranza.config import load_settings
from cobranza.lake import Lake
from tests.api.conftest import LiveServer, free_port
from tests.http import live_client

CUTS = (date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31))


def gold_frame(seed: int = 5) -> pd.DataFrame:
    """Labeled rows: HOLDOUT in the first two cuts (rolls more), ASSIGNED everywhere, a few
    ineligible rows and an unlabeled latest cut."""
    rng = np.random.default_rng(seed)
    parts = []
    for cut, n_holdout, n_assigned in ((CUTS[0], 60, 400), (CUTS[1], 50, 350), (CUTS[2], 0, 300)):
        for arm, n, p_roll in (("HOLDOUT", n_holdout, 0.45), ("ASSIGNED", n_assigned, 0.30)):
            roll = (rng.random(n) < p_roll).astype(np.int64)
            debit = np.where(roll == 1, 0, (rng.random(n) < 0.6).astype(np.int64))
            parts.append(
                pd.DataFrame(
                    {
                        "obligation_id": [f"{arm[0]}{cut:%m}{i:04d}" for i in range(n)],
                        "cut_date": cut,
                        "eligible": np.arange(n) % 10 != 0,
                        "arm": arm,
                        "assigned": arm == "ASSIGNED",
                        "self_cure_debit": debit,
                        "cure_any": 1 - roll,
                        "roll_31_plus": roll,
                        "outstanding_balance": rng.uniform(1e5, 5e6, n).round(0),
                        "product": "CONSUMER_LOAN",
                    }
                )
            )
    latest = pd.DataFrame(
        {
            "obligation_id": [f"L{i:04d}" for i in range(20)],
            "cut_date": date(2026, 4, 30),
            "eligible": True,
            "arm": None,
            "assigned": None,
            "self_cure_debit": None,
            "cure_any": None,
            "roll_31_plus": None,
            "outstanding_balance": 1e6,
            "product": "CONSUMER_LOAN",
        }
    )
    return pd.concat([*parts, latest], ignore_index=True)


def publish(lake: Lake, gold: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(gold, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("cut_date"),
        "cut_date",
        pa.array(gold["cut_date"].tolist(), type=pa.date32()),
    )
    with lake.publish("gold", inputs={"test": "experiments"}) as pub:
        pq.write_table(table, pub.table_dir("obligation_snapshots") / "part-0.parquet")
        pub.meta["as_of"] = "2026-04-30"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments") / "lake"
    lake = Lake(root).ensure()
    settings = load_settings(lake=root)
    keys = {r: create_key(settings, r, f"xp-{r}")["key"] for r in ("viewer", "admin")}
    server = LiveServer(root, free_port()).start()
    http = live_client(base_url=server.url, timeout=120)
    try:
        yield lake, keys, http
    finally:
        http.close()
        server.stop()


def test_experiments_need_a_key_and_gold_then_report_the_holdout(served):
    lake, keys, http = served
    assert http.get("/v1/experiments").status_code == 401
    viewer = {"X-API-Key": keys["viewer"]}
    missing = http.get("/v1/experiments", headers=viewer)
    assert missing.status_code == 404 and "gold" in missing.json()["detail"]

    gold = gold_frame()
    publish(lake, gold)
    got = http.get("/v1/experiments", headers=viewer, params={"mde": 0.05})
    assert got.status_code == 200, got.text
    report = got.json()
    assert report["population"] == "eligible"
    assert report["cuts_pooled"] == ["2026-01-31", "2026-02-28"]
    labeled = gold[gold["eligible"] & gold["roll_31_plus"].notna()]
    pooled = labeled[labeled["cut_date"].isin(CUTS[:2])]
    for arm in report["arms"]:
        rows = pooled[pooled["arm"] == arm["arm"]]
        assert arm["rows"] == len(rows)
        assert arm["roll_rate"] == pytest.approx(rows["roll_31_plus"].astype(float).mean())
        assert arm["cure_debit_rate"] == pytest.approx(rows["self_cure_debit"].astype(float).mean())
    roll = next(e for e in report["effects"] if e["metric"] == "roll_rate")
    assert roll["ci_low"] < roll["difference"] < roll["ci_high"] and 0 <= roll["p_value"] <= 1
    assert [c["cut_date"] for c in report["cuts"]] == [str(c) for c in CUTS]  # not the open one
    assert [c["randomized"] for c in report["cuts"]] == [True, True, False]
    assert report["sample_size"]["mde"] == 0.05 and report["sample_size"]["holdout_rows"] > 0

    everyone = http.get("/v1/experiments", headers=viewer, params={"population": "all"}).json()
    rows = {a["arm"]: a["rows"] for a in everyone["arms"]}
    all_pooled = gold[gold["roll_31_plus"].notna() & gold["cut_date"].isin(CUTS[:2])]
    assert rows == all_pooled["arm"].value_counts().to_dict()
    bad = http.get("/v1/experiments", headers=viewer, params={"mde": 2})
    assert bad.status_code == 422


def test_experiments_show_the_challenger_arm_once_scoring_routed_closed_rows(served):
    """Results of scoring runs that routed rows to a challenger: the report compares the
    scoring's CHALLENGER and CHAMPION arms on the closed eligible rows."""
    from tests.api.conftest import publish_results, results_frame

    lake, keys, http = served
    viewer = {"X-API-Key": keys["viewer"]}
    gold = gold_frame()
    publish(lake, gold)
    assert http.get("/v1/experiments", headers=viewer).json()["challenger"] is None
    scoring = []
    for cut in CUTS[:2]:
        rows = gold[gold["cut_date"] == cut].reset_index(drop=True)
        frame = results_frame(len(rows), cut=cut)
        frame["obligation_id"] = rows["obligation_id"]
        frame["eligible"] = rows["eligible"]
        frame["arm"] = np.where(
            rows["arm"] == "HOLDOUT",
            "HOLDOUT",
            np.where(rows["eligible"] & (np.arange(len(rows)) % 3 == 0), "CHALLENGER", "CHAMPION"),
        )
        frame["model_version"] = np.where(frame["arm"] == "CHALLENGER", "2", "1")
        publish_results(lake.root, frame)
        scoring.append(frame[["obligation_id", "arm"]].assign(cut_date=cut))
    report = http.get("/v1/experiments", headers=viewer).json()
    c = report["challenger"]
    assert c["comparison"] == "CHALLENGER - CHAMPION" and c["cuts_pooled"] == [
        str(x) for x in CUTS[:2]
    ]
    assert c["challenger_versions"] == ["2"] and c["champion_versions"] == ["1"]
    joined = gold.drop(columns=["arm"]).merge(
        pd.concat(scoring), on=["obligation_id", "cut_date"], how="inner"
    )
    joined = joined[joined["eligible"]]
    for arm in c["arms"]:
        rows = joined[joined["arm"] == arm["arm"]]
        assert arm["rows"] == len(rows) > 0
        assert arm["roll_rate"] == pytest.approx(rows["roll_31_plus"].astype(float).mean())
    assert {a["arm"] for a in c["arms"]} == {"CHALLENGER", "CHAMPION"}
    roll = next(e for e in c["effects"] if e["metric"] == "roll_rate")
    assert roll["ci_low"] <= roll["difference"] <= roll["ci_high"]
