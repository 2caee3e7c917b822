"""Named scenarios change what docs/simulator.md says they change, in their last months only."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cobranza.simulate import SimulationConfig, simulate
from cobranza.simulate.config import SCENARIO_MONTHS

BASE = dict(clients=1500, months=14, seed=23, noise=0.0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name in ("baseline", "mandate_churn", "bank_migration", "fee_hike", "collections_strike"):
        folder = tmp_path_factory.mktemp(name) / "extract"
        simulate(folder, SimulationConfig(scenario=name, **BASE))
        out[name] = folder
    return out


def _one(sql: str) -> tuple:
    return duckdb.sql(sql).fetchone()


def _last_months(folder: Path) -> str:
    return (
        f"(select max(cut_date) - interval {SCENARIO_MONTHS} month "
        f"from read_csv('{folder / 'portfolio_cuts.csv'}'))"
    )


def test_mandate_churn_stops_mandates_more_often(runs):
    def stops(folder: Path) -> tuple[int, int]:
        return _one(
            f"""
            select count(*) filter (where end_date > {_last_months(folder)}),
                   count(*) filter (where end_date <= {_last_months(folder)}
                                    and end_date > {_last_months(folder)} - interval 6 month)
            from read_csv('{folder / "debit_mandates.csv"}') m
            join read_csv('{folder / "obligations.csv"}') o using (obligation_id)
            where (o.closed_date is null or m.end_date <> o.closed_date + 1)  -- not a paid-off loan's
            """
        )

    late, early = stops(runs["mandate_churn"])
    base_late, _ = stops(runs["baseline"])
    assert late > 2.5 * base_late and late > 2 * early
    inactive = _one(
        f"""select count(*) from read_csv('{runs["mandate_churn"] / "debit_attempts.csv"}')
        where reject_reason = 'MANDATE_INACTIVE'"""
    )[0]
    assert inactive > 20


def test_bank_migration_moves_mandates_to_other_banks(runs):
    def other_share(folder: Path) -> float:
        return _one(
            f"""select avg((account_bank = 'OTHER')::int)
            from read_csv('{folder / "debit_mandates.csv"}')
            where start_date > {_last_months(folder)}"""
        )[0]

    assert other_share(runs["bank_migration"]) > other_share(runs["baseline"]) + 0.2


def test_fee_hike_raises_fees_in_the_last_months(runs):
    def fees(folder: Path) -> tuple[float, float]:
        return _one(
            f"""
            select avg(i.amount_due - o.installment_amount)
                       filter (where i.due_date > {_last_months(folder)}),
                   avg(i.amount_due - o.installment_amount)
                       filter (where i.due_date <= {_last_months(folder)})
            from read_csv('{folder / "installments.csv"}') i
            join read_csv('{folder / "obligations.csv"}') o using (obligation_id)
            where o.product <> 'CREDIT_CARD' and i.amount_due > o.installment_amount
            """
        )

    late, early = fees(runs["fee_hike"])
    base_late, _ = fees(runs["baseline"])
    assert late > 1.8 * early and late > 1.8 * base_late


def test_collections_strike_leaves_one_cut_unmanaged(runs):
    folder = runs["collections_strike"]
    rows = duckdb.sql(
        f"""
        with cuts as (select distinct cut_date from read_csv('{folder / "portfolio_cuts.csv"}')),
             strike as (select cut_date from cuts order by cut_date desc limit 1 offset 3)
        select o.arm, o.treated, count(*),
               count(*) filter (where exists (
                   select 1 from read_csv('{folder / "collection_actions.csv"}') a
                   where a.obligation_id = o.obligation_id and a.action_ts::date > o.cut_date
                     and a.action_ts::date <= o.cut_date + 30))
        from read_csv('{folder / "_truth" / "outcomes.csv"}') o
        where o.cut_date = (select cut_date from strike) group by all
        """
    ).fetchall()
    assert {(arm, treated) for arm, treated, _, _ in rows} <= {
        ("ASSIGNED", False),
        ("HOLDOUT", False),
    }
    assert sum(n for _, _, n, _ in rows) > 40 and sum(k for *_, k in rows) == 0


def test_mandates_suspended_at_the_latest_cut_make_it_ineligible(runs):
    """A suspension in the last month has no end date yet; the latest cut is not eligible on it."""
    folder = runs["mandate_churn"]
    rows = duckdb.sql(
        f"""
        with m as (select * from read_csv('{folder / "debit_mandates.csv"}')),
             t as (select * from read_csv('{folder / "_truth" / "outcomes.csv"}')
                   where cut_date = (select max(cut_date) from read_csv('{folder / "_truth" / "outcomes.csv"}')))
        select (select count(*) from m where status = 'SUSPENDED' and end_date is null),
               count(*), count(*) filter (where t.eligible)
        from t where exists (select 1 from m where m.obligation_id = t.obligation_id
                               and m.status = 'SUSPENDED' and m.end_date is null)
                 and not exists (select 1 from m where m.obligation_id = t.obligation_id
                                   and m.status = 'ACTIVE' and m.start_date <= t.cut_date)
        """
    ).fetchone()
    suspended, early, eligible = rows
    assert suspended > 5 and early > 0 and eligible == 0
