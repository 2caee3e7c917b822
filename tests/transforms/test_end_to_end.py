"""simulate -> ingest -> etl: the target reproduces the outcomes the simulator drew."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cobranza.lake import Lake
from tests.transforms.conftest import read_version


def _outcomes(extract) -> pd.DataFrame:
    path = extract / "_truth" / "outcomes.csv"
    if not path.exists():
        pytest.skip("the simulator wrote no _truth/outcomes.csv")
    df = pd.read_csv(path, dtype={"obligation_id": str})
    df["cut_date"] = pd.to_datetime(df["cut_date"])
    return df


@pytest.mark.slow
def test_target_matches_simulated_outcomes(sim_lake, sim_duckdb, sim_extract_clean):
    summary = sim_duckdb
    gold = read_version(sim_lake, "gold", "obligation_snapshots", summary["gold_version"])
    assert summary["gold"]["rows"] == len(gold) > 500
    assert Lake(sim_lake).run_info("gold", summary["gold_version"])["inputs"] == {
        "silver": summary["silver_version"]
    }
    truth = _outcomes(sim_extract_clean).rename(
        columns={"eligible": "sim_eligible", "outcome": "sim_outcome"}
    )
    m = truth.merge(gold, on=["obligation_id", "cut_date"], how="left", indicator=True)
    assert (m["_merge"] == "both").all(), "a simulated early-delinquent cut is missing from gold"
    assert (m["eligible"] == m["sim_eligible"].astype(bool)).all()
    labeled = m[m["labeled"].astype(bool)]
    assert len(labeled) > 300
    assert (labeled["self_cure_debit"] == labeled["sim_outcome"].astype(int)).all()
    assert m.loc[~m["labeled"].astype(bool), "self_cure_debit"].isna().all()
    # gold's unlabeled rows are exactly those whose horizon passes as_of
    as_of = pd.Timestamp(summary["as_of"])
    late = gold["cut_date"] + pd.Timedelta(days=30) > as_of
    assert (gold["self_cure_debit"].isna() == late).all()
    assert 0.05 < gold["self_cure_debit"].mean() < 0.95


@pytest.mark.slow
def test_etl_on_an_extract_with_quarantined_rows(tmp_path, sim_extract):
    """Bad input quarantined at ingest leaves a consistent raw zone the ETL runs on unchanged."""
    from cobranza.config import load_settings
    from cobranza.contract import STANDARD
    from cobranza.ingest import ingest_extract
    from cobranza.transforms import run_etl

    report = ingest_extract(load_settings(lake=tmp_path), sim_extract, STANDARD)
    assert report["rows_quarantined"] > 0
    summary = run_etl(load_settings(lake=tmp_path, duckdb_threads=1))
    gold = read_version(tmp_path, "gold", "obligation_snapshots", summary["gold_version"])
    assert len(gold) == summary["gold"]["rows"] > 500
    assert not gold.duplicated(["obligation_id", "cut_date"]).any()
    assert gold["days_past_due"].between(1, 30).all() and gold["client_key"].notna().all()


@pytest.mark.slow
def test_a_version_2_extract_through_ingest_and_etl(sim_extract_v2, sim_v2_lake, sim_v2_duckdb):
    """Arms as the assignment file says, contamination counted from the files, and every label
    by the reversal rule, which is the simulator's drawn outcome on every labeled row."""
    import json

    from tests.extracts import UPGRADE_FILE, read_csv

    added = json.loads((sim_extract_v2 / "_truth" / UPGRADE_FILE).read_text())
    info = Lake(sim_v2_lake).run_info("raw", sim_v2_duckdb["raw_version"])
    assert (
        info["contract_version"] == 2 and info["files"]["payments.csv.gz"]["rows_quarantined"] == 0
    )
    assert info["assignments"]["arms"] == added["arms"]
    assert info["assignments"]["missing"] == added["missing"]
    gold = read_version(sim_v2_lake, "gold", "obligation_snapshots", sim_v2_duckdb["gold_version"])
    assignments = read_csv(sim_extract_v2, "collection_assignments").to_pandas()
    assignments["cut_date"] = pd.to_datetime(assignments["cut_date"])
    m = gold.merge(
        assignments, on=["obligation_id", "cut_date"], how="left", suffixes=("", "_file")
    )
    latest = m["cut_date"] == m["cut_date"].max()
    assert (m.loc[m["arm_file"].notna(), "arm"] == m.loc[m["arm_file"].notna(), "arm_file"]).all()
    assert (m.loc[m["arm_file"].isna() & ~latest, "arm"] == "ASSIGNED").all()
    assert m.loc[latest, "arm"].isna().all()
    assert (gold["arm"] == "HOLDOUT").sum() == added["arms"]["HOLDOUT"]

    # contamination recounted from the files: actions in (d, d + 30] of HOLDOUT or RULE rows,
    # but not after a later early-delinquency cut that managed the obligation (ASSIGNED, or no
    # assignment at a past cut): such an action follows that later decision
    actions = read_csv(sim_extract_v2, "collection_actions").to_pandas()
    actions["day"] = pd.to_datetime(actions["action_ts"].str[:10])
    unmanaged = assignments[assignments["arm"].isin(["HOLDOUT", "RULE"])]
    j = unmanaged.merge(actions, on="obligation_id")
    inside = j[(j["day"] > j["cut_date"]) & (j["day"] <= j["cut_date"] + pd.Timedelta(days=30))]
    cuts = read_csv(sim_extract_v2, "portfolio_cuts").to_pandas()
    cuts["cut_date"] = pd.to_datetime(cuts["cut_date"])
    dpd = pd.to_numeric(cuts["days_past_due"], errors="coerce")
    early = cuts[dpd.between(1, 30)][["obligation_id", "cut_date"]].merge(
        assignments[["obligation_id", "cut_date", "arm"]],
        on=["obligation_id", "cut_date"],
        how="left",
    )
    managed = early[
        (early["arm"] == "ASSIGNED")
        | (early["arm"].isna() & (early["cut_date"] < cuts["cut_date"].max()))
    ][["obligation_id", "cut_date"]].rename(columns={"cut_date": "later_cut"})
    later = inside.merge(managed, on="obligation_id")
    keys = ["obligation_id", "cut_date", "action_id"]
    followed = later[(later["later_cut"] > later["cut_date"]) & (later["later_cut"] < later["day"])]
    kept = inside.merge(followed[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"]
    assert info["assignments"]["contamination"] == {
        "rows": len(kept.drop_duplicates(["obligation_id", "cut_date"])),
        "actions": kept["action_id"].nunique(),
    }
    assert len(kept) > 0

    # labels: recomputed here from the payments file with the reversal rule
    pays = read_csv(sim_extract_v2, "payments").to_pandas()
    pays["day"] = pd.to_datetime(pays["payment_ts"].str[:10])
    pays["rev"] = pd.to_datetime(pays["reversed_ts"].str[:10].replace("", None))
    pays["amount"] = pays["amount"].astype(float)
    rows = gold[gold["self_cure_debit"].notna()][["obligation_id", "cut_date", "amount_past_due"]]
    j = rows.merge(pays, on="obligation_id")
    j["end"] = j["cut_date"] + pd.Timedelta(days=30)
    j = j[(j["day"] > j["cut_date"]) & (j["day"] <= j["end"])]
    gone = j["rev"].notna() & (j["rev"] <= j["end"])
    touched = j[gone][["obligation_id", "cut_date"]].drop_duplicates()
    kept = j[~gone]
    agg = kept.groupby(["obligation_id", "cut_date"]).agg(
        paid=("amount", "sum"), other=("channel", lambda c: (c != "RECURRING_DEBIT").sum())
    )
    e = rows.merge(agg.reset_index(), on=["obligation_id", "cut_date"], how="left").fillna(
        {"paid": 0.0, "other": 0}
    )
    covered = e["amount_past_due"] <= e["paid"] + 0.005
    got = gold.set_index(["obligation_id", "cut_date"]).loc[
        list(zip(e["obligation_id"], e["cut_date"], strict=True))
    ]
    assert (got["self_cure_debit"].to_numpy() == (covered & (e["other"] == 0)).astype(int)).all()
    assert (got["cure_any"].to_numpy() == covered.astype(int)).all()
    np.testing.assert_allclose(got["amount_recovered"].to_numpy(), e["paid"].to_numpy())
    assert len(touched) > 5  # reversals do reach some horizons
    # the simulator drew its outcomes with its own reversals: every labeled row, reversed debits
    # in its horizon or not, carries the drawn outcome
    truth = _outcomes(sim_extract_v2)
    t = truth[truth["labeled"].astype(bool)].merge(gold, on=["obligation_id", "cut_date"])
    t = t.merge(touched.assign(touched=True), on=["obligation_id", "cut_date"], how="left")
    assert t["touched"].isna().sum() > 300 and t["touched"].notna().sum() > 5
    assert (t["self_cure_debit"] == t["outcome"].astype(int)).all()
