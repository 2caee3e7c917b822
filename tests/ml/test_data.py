"""Split rules: only labeled eligible rows, OOT = latest K labeled months, no client on two sides."""

import numpy as np
import pandas as pd
import pytest

from cobranza.ml.data import TrainingDataError, assign_parts, load_dataset
from tests.ml.conftest import make_lake


@pytest.fixture(scope="module")
def lake(tmp_path_factory, gold_frame):
    lake, _ = make_lake(tmp_path_factory.mktemp("ml-data"), gold_frame)
    return lake


def test_only_labeled_eligible_rows(lake, gold_frame):
    ds = load_dataset(lake, oot_months=3, test_share=0.25, seed=42)
    want = gold_frame[gold_frame["eligible"] & gold_frame["self_cure_debit"].notna()]
    assert len(ds.frame) == len(want)
    assert ds.frame["eligible"].all()
    assert ds.frame["self_cure_debit"].notna().all()
    assert set(ds.features) == {
        "product",
        "segment",
        "days_past_due",
        "amount_past_due",
        "balance_to_installment",
        "debit_rejects_3m",
        "noise_feature",
        "outstanding_balance",
    }
    assert set(ds.categorical) == {"product", "segment"}


def test_oot_is_latest_labeled_months(lake, gold_frame):
    ds = load_dataset(lake, oot_months=3, test_share=0.25, seed=42)
    labeled_months = sorted(
        pd.to_datetime(gold_frame.loc[gold_frame["self_cure_debit"].notna(), "cut_date"])
        .dt.to_period("M")
        .unique()
    )
    assert ds.oot_months == [str(m) for m in labeled_months[-3:]]
    months = pd.to_datetime(ds.frame["cut_date"]).dt.to_period("M").astype(str)
    assert set(months[ds.part == "oot"]) == set(ds.oot_months)
    assert not set(months[ds.part != "oot"]) & set(ds.oot_months)
    # the unlabeled last month is nowhere
    assert str(max(pd.to_datetime(gold_frame["cut_date"]).dt.to_period("M"))) not in set(months)


def test_no_client_on_two_sides(lake):
    ds = load_dataset(lake, oot_months=3, test_share=0.25, seed=42)
    pre = ds.frame[ds.part != "oot"]
    sides = pre.groupby("client_key").apply(
        lambda g: ds.part[g.index].tolist(), include_groups=False
    )
    assert all(len(set(s)) == 1 for s in sides)
    clients = {p: set(ds.rows(p)["client_key"]) for p in ("train", "valid", "test")}
    assert not clients["train"] & clients["test"]
    assert not clients["valid"] & clients["test"]
    assert not clients["train"] & clients["valid"]
    share = len(clients["test"]) / sum(len(c) for c in clients.values())
    assert 0.15 < share < 0.35


def test_split_depends_on_seed_only(lake):
    a = load_dataset(lake, 3, 0.25, seed=42)
    b = load_dataset(lake, 3, 0.25, seed=42)
    c = load_dataset(lake, 3, 0.25, seed=43)
    assert (a.part == b.part).all()
    assert not (a.part == c.part).all()


def test_too_few_months_is_a_clear_error():
    frame = pd.DataFrame(
        {
            "cut_date": pd.to_datetime(["2025-01-31", "2025-02-28"]),
            "client_key": ["a", "b"],
        }
    )
    with pytest.raises(TrainingDataError, match="oot_months=3"):
        assign_parts(frame, oot_months=3, test_share=0.25, seed=1)
    parts, oot = assign_parts(frame, oot_months=1, test_share=0.25, seed=1)
    assert oot == ["2025-02"] and parts[1] == "oot" and parts[0] in ("train", "valid", "test")
    assert isinstance(parts, np.ndarray)


def test_empty_lake_says_which_command_to_run(tmp_path):
    from cobranza.errors import CobranzaError
    from cobranza.lake import Lake

    with pytest.raises(CobranzaError, match="cobranza etl"):
        load_dataset(Lake(tmp_path / "lake").ensure(), 3, 0.25, 42)


def test_embargo_drops_earlier_rows_whose_horizon_ends_in_the_out_of_time_period():
    """No training label may observe payments after the first OOT cut."""
    cuts = ["2024-12-31", "2025-01-31", "2025-02-28", "2025-03-31"]
    frame = pd.DataFrame(
        {"cut_date": pd.to_datetime(cuts * 2), "client_key": [f"c{i}" for i in range(8)]}
    )
    # OOT = Feb and Mar 2025; with H = 30, 2025-01-31 + 30 = 2025-03-02 > 2025-02-28
    parts, _ = assign_parts(frame, oot_months=2, test_share=0.25, seed=1, horizon_days=30)
    by_cut = dict(zip(frame["cut_date"].dt.strftime("%Y-%m-%d"), parts, strict=False))
    assert by_cut["2025-01-31"] == "embargo"
    assert by_cut["2024-12-31"] in ("train", "valid", "test")  # Dec 31 + 30 = Jan 30: clear
    assert by_cut["2025-02-28"] == by_cut["2025-03-31"] == "oot"
    # a horizon that ends on the first OOT cut itself observes nothing after it
    parts, _ = assign_parts(frame, oot_months=2, test_share=0.25, seed=1, horizon_days=28)
    assert "embargo" not in set(parts)
    # longer horizons reach further back
    parts, _ = assign_parts(frame, oot_months=2, test_share=0.25, seed=1, horizon_days=60)
    assert list(parts[:2]) == ["embargo", "embargo"]


def test_read_gold_reads_the_version_it_reports_while_an_etl_switches_gold(tmp_path):
    """The version is resolved once: the rows and the lineage a model records come from the same
    gold even when an etl switches gold meanwhile (prune keeps a model's gold by that lineage)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cobranza.lake import Lake
    from cobranza.lake.repair import use_version
    from cobranza.ml.data import read_gold

    class SwitchingLake(Lake):
        """Points gold at the other version right after its record was read, as an etl would."""

        target: str | None = None

        def run_info(self, zone, version=None):
            info = super().run_info(zone, version)
            if zone == "gold" and self.target is not None:
                target, self.target = self.target, None
                use_version(self, "gold", target, who="test")
            return info

    lake = SwitchingLake(tmp_path / "lake").ensure()
    versions = []
    for n in (3, 5):
        with lake.publish("gold", refresh=False) as pub:
            table = pa.table(
                {
                    "obligation_id": [f"O{i}" for i in range(n)],
                    "cut_date": pa.array([pd.Timestamp("2026-01-31").date()] * n),
                }
            )
            pq.write_table(table, pub.table_dir("obligation_snapshots") / "part-0.parquet")
            pub.record("obligation_snapshots", rows=n)
        versions.append(pub.version)
    lake.target = versions[0]  # the current gold is versions[1] (5 rows)
    frame, info = read_gold(lake)
    assert lake.current_version("gold") == versions[0]  # the switch did happen meanwhile
    assert info["version"] == versions[1]
    assert len(frame) == info["tables"]["obligation_snapshots"]["rows"] == 5


def test_a_client_sample_keeps_whole_clients_in_the_parts_of_the_whole_book(lake, gold_frame):
    """`train_sample_clients`: every labeled eligible row of N clients chosen by the seed, each in
    the part it has when training on every client; the same N clients on every run."""
    full = load_dataset(lake, 3, 0.25, seed=42)
    n = full.frame["client_key"].nunique() // 3
    a = load_dataset(lake, 3, 0.25, seed=42, sample_clients=n)
    b = load_dataset(lake, 3, 0.25, seed=42, sample_clients=n)
    chosen = set(a.frame["client_key"])
    assert len(chosen) == n and chosen == set(b.frame["client_key"])
    # whole clients: all their labeled eligible rows, none of the others' clients
    whole = full.frame[full.frame["client_key"].isin(chosen)]
    assert len(a.frame) == len(whole)
    key = ["obligation_id", "cut_date"]
    parts = dict(zip(full.frame[key].itertuples(index=False, name=None), full.part, strict=True))
    keys = a.frame[key].itertuples(index=False, name=None)
    assert [parts[k] for k in keys] == list(a.part)
    assert a.oot_months == full.oot_months
    other = load_dataset(lake, 3, 0.25, seed=43, sample_clients=n)
    assert set(other.frame["client_key"]) != chosen
    everyone = load_dataset(lake, 3, 0.25, seed=42, sample_clients=10**9)
    assert len(everyone.frame) == len(full.frame)
