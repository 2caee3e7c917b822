"""The realism the model must survive, item by item: each shows in the files when on and is gone
when switched off (`SimulationConfig.without`)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import holidays
import numpy as np
import pytest

from cobranza.simulate import REALISM, SimulationConfig, simulate
from cobranza.simulate.common import PARTIAL, REJECTED, SUCCESS
from cobranza.simulate.debits import share_funds

BASE = dict(clients=2000, months=14, seed=17, noise=0.0)


def _db(folder: Path) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    for name in (
        "obligations", "installments", "payments", "debit_attempts", "debit_mandates",
        "account_monthly", "portfolio_cuts", "collection_actions", "collection_assignments",
        "clients",
    ):  # fmt: skip
        types = ", types={'reversed_ts': 'TIMESTAMP'}" if name == "payments" else ""
        db.execute(f"create view {name} as select * from read_csv('{folder / name}.csv'{types})")
    db.execute(f"create view outcomes as select * from read_csv('{folder}/_truth/outcomes.csv')")
    return db


@pytest.fixture(scope="module")
def rich(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    out = tmp_path_factory.mktemp("rich") / "extract"
    simulate(out, SimulationConfig(**BASE))
    return _db(out)


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    out = tmp_path_factory.mktemp("plain") / "extract"
    simulate(out, SimulationConfig(**BASE, without=frozenset(REALISM)))
    return _db(out)


def _off_business_days(db) -> tuple[int, int]:
    dates = [r[0] for r in db.execute("select distinct due_date from installments").fetchall()]
    co = holidays.country_holidays("CO", years=sorted({d.year for d in dates}))
    off = sum(d.weekday() >= 5 or d in co for d in dates)
    return off, len(dates)


def test_holidays_put_due_dates_on_business_days(rich, plain):
    off, n = _off_business_days(rich)
    assert n > 200 and off == 0
    assert _off_business_days(plain)[0] > 50
    for db in (rich, plain):  # never due on a cut date: no arrears at 0 days past due
        assert (
            db.execute(
                "select count(*) from portfolio_cuts where days_past_due = 0 and amount_past_due > 0"
            ).fetchone()[0]
            == 0
        )
        assert (
            db.execute(
                "select count(*) from payments where day(payment_ts) < 3 or day(payment_ts) > 30"
            ).fetchone()[0]
            == 0
        )


def test_fees_make_arrears_exceed_one_installment(rich, plain):
    query = """
        select count(*) filter (where i.amount_due > o.installment_amount),
               count(*) filter (where c.amount_past_due > o.installment_amount)
        from installments i join obligations o using (obligation_id)
        left join portfolio_cuts c on c.obligation_id = i.obligation_id
             and c.cut_date = last_day(i.due_date) and c.days_past_due between 1 and 30
        where o.product <> 'CREDIT_CARD'
    """
    fee_rows, big_arrears = rich.execute(query).fetchone()
    assert fee_rows > 100 and big_arrears > 30
    assert plain.execute(query).fetchone() == (0, 0)


def test_debit_returns_are_reversed_later_in_the_same_month(rich, plain):
    rows = rich.execute(
        """
        select count(*), count(*) filter (where channel <> 'RECURRING_DEBIT'
                   or reversed_ts <= payment_ts or month(reversed_ts) <> month(payment_ts))
        from payments where reversed_ts is not null
        """
    ).fetchone()
    assert rows[0] > 50 and rows[1] == 0
    assert (
        plain.execute("select count(*) from payments where reversed_ts is not null").fetchone()[0]
        == 0
    )
    # a returned debit never cures: the rows whose only cover was returned did not self-cure
    returned = rich.execute(
        "select count(*), sum(outcome + cure_any) from outcomes where mode = 'returned_debit'"
    ).fetchone()
    assert returned[0] > 5 and returned[1] == 0


def test_one_account_debited_the_same_day_gives_its_funds_in_turn():
    account = np.array([7, 7, 7, 9])
    day = np.array([5, 5, 5, 5])
    sec = np.array([300, 100, 200, 100])  # the second attempt in the list runs first
    f = np.array([999.0, 100.0, 999.0, 50.0])  # each group uses its first attempt's draw
    req = np.array([60.0, 60.0, 60.0, 60.0])
    partial_ok = np.array([True, False, True, True])
    rejected = np.zeros(4, bool)
    res, deb = share_funds(account, day, sec, f, req, partial_ok, rejected)
    # account 7 holds 100: 60 to the first (sec 100), the 40 left to the next (partial), none to
    # the last; account 9 holds 50 (a partial debit of all of it)
    assert list(res) == [REJECTED, SUCCESS, PARTIAL, PARTIAL]
    assert list(deb) == [0.0, 60.0, 40.0, 50.0]


def test_seasonality_primas_in_june_and_december_stress_in_january(rich, plain):
    query = """
        select avg(avg_balance) filter (where month(month) = 1)
               / avg(avg_balance) filter (where month(month) not in (1, 6, 12)),
               avg(payroll_inflow) filter (where month(month) in (6, 12))
               / avg(payroll_inflow) filter (where month(month) not in (6, 12))
        from account_monthly
    """
    january, primas = rich.execute(query).fetchone()
    assert january < 0.85 and primas > 1.2
    january, primas = plain.execute(query).fetchone()
    assert 0.9 < january < 1.1 and 0.95 < primas < 1.05


def test_card_minimums_follow_utilization_month_to_month(rich, plain):
    query = """
        select count(*), count(*) filter (where n_amounts >= 2),
               count(*) filter (where last_amount <> installment_amount)
        from (select o.obligation_id, any_value(o.installment_amount) as installment_amount,
                     count(distinct i.amount_due) as n_amounts,
                     arg_max(i.amount_due, i.installment_no) as last_amount
              from obligations o join installments i using (obligation_id)
              where o.product = 'CREDIT_CARD' and o.status = 'ACTIVE'
              group by 1)
    """
    n, moving, _ = rich.execute(query).fetchone()
    assert n > 200 and moving > 0.9 * n
    n, moving, stale = plain.execute(query).fetchone()
    assert n > 200 and moving == 0 and stale == 0


def test_mandates_stop_inside_horizons_when_switched_on(rich, plain):
    query = """
        select count(*) from outcomes t join debit_mandates m using (obligation_id)
        join obligations o using (obligation_id)
        where t.labeled and t.eligible and m.start_date <= t.cut_date
          and m.end_date > t.cut_date and m.end_date <= t.cut_date + 30
          and (o.closed_date is null or m.end_date <> o.closed_date + 1)  -- not a paid-off loan's
    """
    assert rich.execute(query).fetchone()[0] > 0
    assert plain.execute(query).fetchone()[0] == 0


def test_partial_payments_leave_part_of_the_arrears(rich):
    n = rich.execute(
        """
        select count(*) from outcomes o join portfolio_cuts c using (obligation_id, cut_date)
        where o.labeled and o.amount_recovered > 0 and o.amount_recovered < c.amount_past_due
        """
    ).fetchone()[0]
    assert n > 30
