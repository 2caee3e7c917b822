"""Feature values on one hand-built obligation, where each figure can be worked out by hand."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from tests.transforms.conftest import etl, read_gold
from tests.transforms.rawdata import month_ends

CUTS = month_ends(date(2024, 1, 1), 6)  # 2024-01-31 .. 2024-06-30
APRIL, JUNE = pd.Timestamp(CUTS[3]), pd.Timestamp(CUTS[5])

ATTEMPTS = [
    (datetime(2024, 1, 15, 6), "SUCCESS", None),
    (datetime(2024, 2, 15, 6), "REJECTED", "INSUFFICIENT_FUNDS"),
    (datetime(2024, 3, 15, 6), "PARTIAL", None),
    (datetime(2024, 3, 20, 6), "REJECTED", "TECHNICAL"),
    (datetime(2024, 4, 15, 6), "REJECTED", "INSUFFICIENT_FUNDS"),
    (datetime(2024, 5, 15, 6), "SUCCESS", None),
    (datetime(2024, 6, 15, 6), "REJECTED", "ACCOUNT_BLOCKED"),
    (datetime(2024, 6, 30, 23), "REJECTED", "INSUFFICIENT_FUNDS"),
    (datetime(2024, 7, 1, 6), "SUCCESS", None),
]
PAYMENTS = [
    (datetime(2024, 1, 15, 6, 1), 100.0, "RECURRING_DEBIT"),
    (datetime(2024, 3, 15, 6, 1), 50.0, "RECURRING_DEBIT"),
    (datetime(2024, 4, 5, 12), 100.0, "PSE"),
    (datetime(2024, 5, 15, 6, 1), 100.0, "RECURRING_DEBIT"),
]
ACTIONS = [
    (datetime(2024, 4, 10, 9), "CALL", "NO_CONTACT"),
    (datetime(2024, 4, 20, 9), "SMS", "PROMISE_TO_PAY"),
    (datetime(2024, 5, 2, 9), "CALL", "CONTACTED"),
]


@pytest.fixture(scope="module")
def gold(tmp_path_factory) -> pd.DataFrame:
    tables = {
        "clients": [
            {
                "client_id": "C1",
                "document_type": "CC",
                "document_number": "123",
                "birth_date": date(1990, 6, 1),
                "segment": "MASS",
                "employment_type": "SALARIED",
                "monthly_income": 400.0,
                "customer_since": date(2020, 4, 15),
            }
        ],
        "obligations": [
            {
                "obligation_id": "O1",
                "client_id": "C1",
                "product": "CONSUMER_LOAN",
                "origination_date": date(2023, 5, 10),
                "maturity_date": date(2026, 5, 10),
                "original_amount": 3600.0,
                "annual_rate": 24.0,
                "term_months": 36,
                "installment_amount": 100.0,
                "due_day": 15,
                "status": "ACTIVE",
            }
        ],
        "debit_mandates": [
            {
                "mandate_id": "M1",
                "obligation_id": "O1",
                "account_id": "A1",
                "account_type": "SAVINGS",
                "account_bank": "OTHER",
                "start_date": date(2023, 6, 1),
                "status": "ACTIVE",
                "debit_mode": "PARTIAL_ALLOWED",
            }
        ],
        "portfolio_cuts": [
            {
                "cut_date": d,
                "obligation_id": "O1",
                "days_past_due": 5,
                "amount_past_due": 100.0,
                "outstanding_balance": 2000.0,
            }
            for d in CUTS
        ],
        "debit_attempts": [
            {
                "attempt_id": f"T{i}",
                "mandate_id": "M1",
                "attempt_ts": ts,
                "amount_requested": 100.0,
                "amount_debited": {"SUCCESS": 100.0, "PARTIAL": 50.0}.get(res, 0.0),
                "result": res,
                "reject_reason": reason,
            }
            for i, (ts, res, reason) in enumerate(ATTEMPTS)
        ],
        "payments": [
            {
                "payment_id": f"P{i}",
                "obligation_id": "O1",
                "payment_ts": ts,
                "amount": amount,
                "channel": channel,
            }
            for i, (ts, amount, channel) in enumerate(PAYMENTS)
        ],
        "collection_actions": [
            {
                "action_id": f"X{i}",
                "obligation_id": "O1",
                "action_ts": ts,
                "action_type": kind,
                "outcome": outcome,
                "cost": 10.0,
            }
            for i, (ts, kind, outcome) in enumerate(ACTIONS)
        ],
        "account_monthly": [
            {
                "account_id": "A1",
                "month": date(2024, m, 1),
                "avg_balance": 100.0 * m,
                "min_balance": -float(m),
                "end_balance": 10.0 * m,
                "inflow_total": 1000.0,
                "payroll_inflow": 800.0 if m in (1, 3, 5) else 0.0,
                "n_inflows": 2,
                "outflow_total": 500.0,
            }
            for m in range(1, 8)
        ],
    }
    root = tmp_path_factory.mktemp("values")
    etl(root, tables, CUTS[-1])
    return read_gold(root).set_index("cut_date")


def test_debit_history(gold):
    r = gold.loc[APRIL]
    assert r["debit_attempts_3m"] == 4 and r["debit_attempts_12m"] == 5
    assert r["debit_success_rate_3m"] == 0.0 and r["debit_partial_rate_3m"] == 0.25
    assert r["debit_success_rate_12m"] == pytest.approx(0.2)
    assert r["consecutive_debit_failures"] == 2  # after the partial of 03-15: 03-20, 04-15
    assert r["days_since_debit_success"] == (date(2024, 4, 30) - date(2024, 1, 15)).days
    assert r["debit_rejects_insufficient_funds_12m"] == 2
    assert r["debit_rejects_technical_12m"] == 1
    assert r["debit_insufficient_funds_share_12m"] == pytest.approx(2 / 3)
    assert r["debit_success_day_12m"] == 15.0 and r["debit_day_minus_due_day"] == 0.0
    r = gold.loc[JUNE]  # the 06-30 23:00 rejection counts at the 06-30 cut, 07-01 does not
    assert r["consecutive_debit_failures"] == 2
    assert r["days_since_debit_success"] == 46 and r["debit_attempts_3m"] == 4


def test_payments_and_actions(gold):
    r = gold.loc[APRIL]
    assert r["payments_3m"] == 2 and r["amount_paid_3m"] == 150.0
    assert r["debit_payment_share_3m"] == pytest.approx(50 / 150)
    assert r["payments_12m"] == 3 and r["other_channel_payments_12m"] == 1
    assert r["actions_3m"] == 2 and r["contacts_12m"] == 1 and r["promises_12m"] == 1
    assert r["last_action_outcome"] == "PROMISE_TO_PAY" and r["days_since_last_action"] == 10


def test_account_months_only_when_complete(gold):
    r = gold.loc[APRIL]  # complete months Jan..Apr; 3m = Feb, Mar, Apr
    assert r["avg_balance_3m"] == 300.0 and r["avg_balance_6m"] == 250.0
    assert r["min_balance_3m"] == -4.0 and r["balance_trend_3m"] == 200.0
    assert r["end_balance_last_month"] == 40.0 and r["account_months_6m"] == 4
    assert r["payroll_regularity_6m"] == 0.5
    assert r["balance_to_installment"] == 3.0 and r["inflow_to_installment_3m"] == 10.0
    assert r["outflow_to_inflow_3m"] == 0.5


def test_episodes_state_and_label(gold):
    r = gold.loc[APRIL]
    assert r["past_early_cuts_12m"] == 3
    assert r["past_cured_other_12m"] == 1 and r["past_cured_debit_12m"] == 0
    assert r["past_rolled_31_12m"] == 0 and r["self_cure_debit"] == 1
    assert r["days_past_due_prev_cut"] == 5 and pd.isna(gold.iloc[0]["days_past_due_prev_cut"])
    assert r["obligation_age_months"] == 11 and r["months_to_maturity"] == 25
    assert r["client_tenure_months"] == 48 and r["age_band"] == "25-34"
    assert r["installment_to_income"] == 0.25 and r["n_products"] == 1
    assert r["mandate_age_months"] == 10 and r["account_bank"] == "OTHER"
    assert r["past_due_to_installment"] == 1.0 and r["outstanding_to_original"] == 2000 / 3600


def test_mid_month_cut_uses_only_complete_months():
    """A cut on 2024-04-15 sees January..March; April is not over, so it is not known yet."""
    import ibis

    from cobranza.transforms.features import account_features

    covered = ibis.memtable(
        {
            "obligation_id": ["O1"],
            "cut_date": [date(2024, 4, 15)],
            "account_key": ["K"],
            "installment_amount": [100.0],
        }
    )
    months = ibis.memtable(
        {
            "account_key": ["K"] * 4,
            "month": [date(2024, m, 1) for m in range(1, 5)],
            "month_index": [2024 * 12 + m for m in range(1, 5)],
            "avg_balance": [100.0, 200.0, 300.0, 999.0],
            "min_balance": [1.0, 2.0, 3.0, -999.0],
            "end_balance": [10.0, 20.0, 30.0, 999.0],
            "inflow_total": [1.0] * 4,
            "payroll_inflow": [1.0] * 4,
            "n_inflows": [1] * 4,
            "outflow_total": [1.0] * 4,
        }
    )
    con = ibis.duckdb.connect()
    r = con.to_pandas(account_features(covered, months)).iloc[0]
    assert r["account_months_6m"] == 3 and r["avg_balance_3m"] == 200.0
    assert r["min_balance_3m"] == 1.0 and r["end_balance_last_month"] == 30.0


def test_the_installment_at_d_comes_from_the_history_not_the_extract(tmp_path):
    """A card's minimum payment changes month to month: at each cut the installment last due on or
    before it, and every ratio built on it; before any is due, the obligation's own."""
    from tests.transforms.conftest import etl
    from tests.transforms.rawdata import client_row, cut_row, mandate_row, obligation_row

    cuts = month_ends(date(2024, 1, 1), 4)  # 2024-01-31 .. 2024-04-30
    card = {**obligation_row("O1"), "product": "CREDIT_CARD", "installment_amount": 250.0}
    tables = {
        "clients": [{**client_row("C1"), "monthly_income": 1000.0}],
        "obligations": [card],
        "debit_mandates": [mandate_row("O1")],
        "portfolio_cuts": [cut_row("O1", d, apd=300.0) for d in cuts],
        "installments": [  # due on the 15th; two share 2024-03-15: the higher number counts
            {"obligation_id": "O1", "installment_no": n, "due_date": due, "amount_due": amount}
            for n, due, amount in [
                (1, date(2024, 2, 15), 100.0),
                (2, date(2024, 3, 15), 120.0),
                (3, date(2024, 3, 15), 150.0),
                (4, date(2024, 4, 30), 200.0),  # due on the cut day: counts at that cut
                (5, date(2024, 5, 15), 250.0),  # after every cut: the latest, as the extract says
            ]
        ],
    }
    etl(tmp_path, tables, cuts[-1])
    gold = read_gold(tmp_path)
    assert gold["installment_amount"].tolist() == [250.0, 100.0, 150.0, 200.0]
    assert gold["past_due_to_installment"].tolist() == pytest.approx([1.2, 3.0, 2.0, 1.5])
    assert gold["installment_to_income"].tolist() == pytest.approx([0.25, 0.1, 0.15, 0.2])
