"""simulate -> ingest -> etl: the target reproduces the outcomes the simulator drew."""

from __future__ import annotations

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
