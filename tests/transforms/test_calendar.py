"""The cut calendar: periods before the first cut, so "n months" is n months at every cut.

An extract whose events start long before its first cut (a bank hands over two years of debits and
a year of cuts) must not let the first cuts' 3-month windows count two years, nor cut them short.
"""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pandas as pd
import pytest

from cobranza.transforms.silver import HISTORY_PERIODS, silver_cut_calendar
from tests.transforms.conftest import etl, read_gold
from tests.transforms.rawdata import month_ends


def _calendar(cuts: list[date]) -> pd.DataFrame:
    con = ibis.duckdb.connect()
    t = ibis.memtable({"cut_date": cuts}, schema={"cut_date": "date"})
    return con.execute(silver_cut_calendar(t).order_by("period"))


def test_month_end_cuts_get_month_end_periods_before_them():
    cal = _calendar(month_ends(date(2025, 1, 1), 3))
    assert len(cal) == 3 + HISTORY_PERIODS
    assert list(cal["period"]) == list(range(1 - HISTORY_PERIODS, 4))
    assert list(cal["is_cut"]) == [False] * HISTORY_PERIODS + [True] * 3
    ends = [pd.Timestamp(d).date() for d in cal["cut_date"]]
    assert ends == month_ends(date(2024, 1, 1), 12 + 3)  # 2024-01-31 .. 2025-03-31
    starts = [pd.Timestamp(d).date() for d in cal["period_start"]]
    assert starts == [date(2023, 12, 31), *ends[:-1]]  # contiguous, each (start, cut]


def test_other_calendars_go_back_by_their_first_gap():
    cal = _calendar([date(2025, 3, 14), date(2025, 3, 21), date(2025, 3, 28)])
    first_synthetic = pd.Timestamp(cal["cut_date"].iloc[0]).date()
    assert first_synthetic == date(2025, 3, 14) - pd.Timedelta(days=7 * HISTORY_PERIODS)
    one = _calendar([date(2025, 3, 31)])  # a single month-end cut: months
    assert pd.Timestamp(one["period_start"].iloc[-1]).date() == date(2025, 2, 28)


FIRST_CUTS = month_ends(date(2025, 1, 1), 3)  # 2025-01-31 .. 2025-03-31
EVENT_MONTHS = [(y, m) for y in (2023, 2024) for m in range(1, 13)] + [(2025, 1), (2025, 2)]


@pytest.fixture(scope="module")
def gold(tmp_path_factory) -> pd.DataFrame:
    """One obligation with a debit, a payment and a call on the 10th of every month since 2023."""
    tables = {
        "clients": [
            {
                "client_id": "C1",
                "document_type": "CC",
                "document_number": "1",
                "segment": "MASS",
                "customer_since": date(2020, 1, 1),
            }
        ],
        "obligations": [
            {
                "obligation_id": "O1",
                "client_id": "C1",
                "product": "CONSUMER_LOAN",
                "origination_date": date(2022, 6, 1),
                "original_amount": 5000.0,
                "annual_rate": 20.0,
                "installment_amount": 100.0,
                "due_day": 10,
                "status": "ACTIVE",
            }
        ],
        "debit_mandates": [
            {
                "mandate_id": "M1",
                "obligation_id": "O1",
                "account_id": "A1",
                "account_type": "SAVINGS",
                "account_bank": "OWN",
                "start_date": date(2022, 6, 1),
                "status": "ACTIVE",
                "debit_mode": "FULL",
            }
        ],
        "portfolio_cuts": [
            {
                "cut_date": d,
                "obligation_id": "O1",
                "days_past_due": 5,
                "amount_past_due": 100.0,
                "outstanding_balance": 3000.0,
            }
            for d in FIRST_CUTS
        ],
        "debit_attempts": [
            {
                "attempt_id": f"T{y}{m:02d}",
                "mandate_id": "M1",
                "attempt_ts": datetime(y, m, 10, 6),
                "amount_requested": 100.0,
                "amount_debited": 100.0,
                "result": "SUCCESS",
            }
            for y, m in EVENT_MONTHS
        ],
        "payments": [
            {
                "payment_id": f"P{y}{m:02d}",
                "obligation_id": "O1",
                "payment_ts": datetime(y, m, 10, 6, 1),
                "amount": 100.0,
                "channel": "RECURRING_DEBIT",
            }
            for y, m in EVENT_MONTHS
        ],
        "collection_actions": [
            {
                "action_id": f"X{y}{m:02d}",
                "obligation_id": "O1",
                "action_ts": datetime(y, m, 10, 9),
                "action_type": "CALL",
                "outcome": "CONTACTED",
                "cost": 10.0,
            }
            for y, m in EVENT_MONTHS
        ],
    }
    root = tmp_path_factory.mktemp("calendar")
    etl(root, tables, FIRST_CUTS[-1])
    return read_gold(root).set_index("cut_date")


def test_first_cuts_windows_cover_exactly_their_months(gold):
    first = gold.loc[pd.Timestamp(FIRST_CUTS[0])]  # 2025-01-31: one debit a month for 25 months
    for k in (3, 6, 12):
        assert first[f"debit_attempts_{k}m"] == k
        assert first[f"payments_{k}m"] == k
        assert first[f"amount_paid_{k}m"] == 100.0 * k
    assert first["actions_3m"] == 3 and first["actions_12m"] == 12
    assert first["contacts_12m"] == 12
    assert first["days_since_debit_success"] == 21  # 2025-01-10 to 2025-01-31
    march = gold.loc[pd.Timestamp(FIRST_CUTS[2])]  # no event in March: Jan and Feb only in 3m
    assert march["debit_attempts_3m"] == 2 and march["debit_attempts_12m"] == 11  # Apr-Feb
