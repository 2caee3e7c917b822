"""The contract's target and eligibility rules, each on hand-built rows where the answer is known."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from tests.transforms.conftest import etl, read_gold

CUTS = [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]
AS_OF = date(2024, 3, 31)
D = CUTS[0]  # horizon (2024-01-31, 2024-03-01] with H = 30


def _client(cid: str) -> dict:
    return {
        "client_id": cid,
        "document_type": "CC",
        "document_number": "1" + cid[1:],
        "segment": "MASS",
        "customer_since": date(2020, 1, 1),
    }


def _obligation(oid: str, cid: str = "C1") -> dict:
    return {
        "obligation_id": oid,
        "client_id": cid,
        "product": "CONSUMER_LOAN",
        "origination_date": date(2023, 1, 15),
        "original_amount": 1_000_000.0,
        "annual_rate": 20.0,
        "installment_amount": 100.0,
        "due_day": 15,
        "status": "ACTIVE",
    }


def _mandate(oid: str, start=date(2023, 1, 15), end=None, status="ACTIVE") -> dict:
    return {
        "mandate_id": "M" + oid,
        "obligation_id": oid,
        "account_id": "A" + oid,
        "account_type": "SAVINGS",
        "account_bank": "OWN",
        "start_date": start,
        "end_date": end,
        "status": status,
        "debit_mode": "FULL",
    }


def _cut(oid: str, d: date, dpd: int = 5, apd: float = 100.0) -> dict:
    return {
        "cut_date": d,
        "obligation_id": oid,
        "days_past_due": dpd,
        "amount_past_due": apd if dpd else 0.0,
        "outstanding_balance": 900_000.0,
    }


def _pay(pid: str, oid: str, ts: datetime, amount: float, channel="RECURRING_DEBIT") -> dict:
    return {
        "payment_id": pid,
        "obligation_id": oid,
        "payment_ts": ts,
        "amount": amount,
        "channel": channel,
    }


CASES = {
    # obligation: (payments in/around the horizon of D, expected label at D)
    "O_LAST_DAY": ([(datetime(2024, 3, 1, 23, 59, 59), 100.0, "RECURRING_DEBIT")], 1),
    "O_DAY_AFTER": ([(datetime(2024, 3, 2, 0, 0, 1), 100.0, "RECURRING_DEBIT")], 0),
    "O_MIXED": (
        [
            (datetime(2024, 2, 10, 8), 60.0, "RECURRING_DEBIT"),
            (datetime(2024, 2, 12, 8), 40.0, "BRANCH"),
        ],
        0,
    ),
    "O_BEFORE_CUT": ([(datetime(2024, 1, 31, 22, 0), 100.0, "RECURRING_DEBIT")], 0),
    "O_OVERPAY": ([(datetime(2024, 2, 15, 9), 150.0, "RECURRING_DEBIT")], 1),
    "O_TWO_DEBITS": (
        [
            (datetime(2024, 2, 5, 9), 50.0, "RECURRING_DEBIT"),
            (datetime(2024, 2, 20, 9), 50.0, "RECURRING_DEBIT"),
        ],
        1,
    ),
    "O_SHORT": ([(datetime(2024, 2, 15, 9), 99.0, "RECURRING_DEBIT")], 0),
    "O_NONE": ([], 0),
}


@pytest.fixture(scope="module")
def gold(tmp_path_factory) -> pd.DataFrame:
    tables: dict[str, list[dict]] = {
        "clients": [_client("C1"), _client("C2")],
        "obligations": [],
        "debit_mandates": [],
        "portfolio_cuts": [],
        "payments": [],
    }
    n = 0
    for oid, (pays, _) in CASES.items():
        tables["obligations"].append(_obligation(oid))
        tables["debit_mandates"].append(_mandate(oid))
        tables["portfolio_cuts"] += [_cut(oid, d) for d in CUTS]
        for ts, amount, channel in pays:
            n += 1
            tables["payments"].append(_pay(f"P{n}", oid, ts, amount, channel))
    # eligibility cases, all early-delinquent at every cut
    extra = {
        "O_ENDED_BEFORE": _mandate("O_ENDED_BEFORE", end=date(2024, 1, 20), status="CANCELLED"),
        "O_ENDED_ON_CUT": _mandate("O_ENDED_ON_CUT", end=D, status="CANCELLED"),
        "O_ENDED_AFTER": _mandate("O_ENDED_AFTER", end=date(2024, 2, 10), status="CANCELLED"),
        "O_STARTS_LATER": _mandate("O_STARTS_LATER", start=date(2024, 2, 1)),
        "O_SUSPENDED": _mandate("O_SUSPENDED", status="SUSPENDED"),
    }
    for oid, mandate in extra.items():
        tables["obligations"].append(_obligation(oid, "C2"))
        tables["debit_mandates"].append(mandate)
        tables["portfolio_cuts"] += [_cut(oid, d) for d in CUTS]
    # two mandates cover every cut: an older ACTIVE one at another bank, a newer SUSPENDED one
    tables["obligations"].append(_obligation("O_TWO_MANDATES", "C2"))
    tables["portfolio_cuts"] += [_cut("O_TWO_MANDATES", d) for d in CUTS]
    older = {**_mandate("O_TWO_MANDATES"), "mandate_id": "MOLD", "account_bank": "OTHER"}
    newer = {**_mandate("O_TWO_MANDATES", start=date(2023, 6, 1), status="SUSPENDED")}
    tables["debit_mandates"] += [older, newer]
    tables["obligations"].append(_obligation("O_NO_MANDATE", "C2"))
    tables["portfolio_cuts"] += [_cut("O_NO_MANDATE", d) for d in CUTS]
    # not early-delinquent: no gold rows
    tables["obligations"].append(_obligation("O_CURRENT", "C2"))
    tables["portfolio_cuts"] += [_cut("O_CURRENT", CUTS[0], dpd=0), _cut("O_CURRENT", CUTS[1], 31)]
    root = tmp_path_factory.mktemp("target")
    etl(root, tables, AS_OF)
    return read_gold(root).set_index(["obligation_id", "cut_date"])


def _row(gold: pd.DataFrame, oid: str, d: date) -> pd.Series:
    return gold.loc[(oid, pd.Timestamp(d))]


@pytest.mark.parametrize("oid", list(CASES))
def test_label_at_first_cut(gold, oid):
    assert _row(gold, oid, D)["self_cure_debit"] == CASES[oid][1]


def test_horizon_past_as_of_is_unlabeled(gold):
    # 2024-02-29 + 30 = 2024-03-30 <= as_of: labeled; 2024-03-31 + 30 > as_of: null
    assert gold.xs(pd.Timestamp(CUTS[1]), level="cut_date")["self_cure_debit"].notna().all()
    assert gold.xs(pd.Timestamp(CUTS[2]), level="cut_date")["self_cure_debit"].isna().all()


def test_payment_on_horizon_last_day_labels_the_next_cut_too(gold):
    # the 2024-03-01 payment is also in (2024-02-29, 2024-03-30]
    assert _row(gold, "O_LAST_DAY", CUTS[1])["self_cure_debit"] == 1
    assert _row(gold, "O_DAY_AFTER", CUTS[1])["self_cure_debit"] == 1


def test_only_early_delinquent_rows(gold):
    assert "O_CURRENT" not in gold.index.get_level_values("obligation_id")
    assert gold["days_past_due"].between(1, 30).all()
    assert not gold.index.duplicated().any()


@pytest.mark.parametrize(
    ("oid", "expected"),
    [
        ("O_ENDED_BEFORE", [False, False, False]),
        ("O_ENDED_ON_CUT", [False, False, False]),
        ("O_ENDED_AFTER", [True, False, False]),
        ("O_STARTS_LATER", [False, True, True]),
        # status describes the extract date: it only decides the latest cut
        ("O_SUSPENDED", [True, True, False]),
        ("O_NO_MANDATE", [False, False, False]),
        ("O_LAST_DAY", [True, True, True]),
    ],
)
def test_eligibility(gold, oid, expected):
    assert [bool(_row(gold, oid, d)["eligible"]) for d in CUTS] == expected


def test_mandate_features_only_when_covered(gold):
    assert pd.isna(_row(gold, "O_ENDED_BEFORE", D)["account_bank"])
    assert _row(gold, "O_STARTS_LATER", CUTS[1])["account_bank"] == "OWN"
    # the suspended mandate still covers the latest cut by dates: features stay, eligibility goes
    assert _row(gold, "O_SUSPENDED", CUTS[2])["account_bank"] == "OWN"


def test_eligible_rows_take_their_features_from_a_usable_mandate(gold):
    """Past cuts: the latest started covering mandate. The latest cut: the ACTIVE one that makes the
    row eligible, never the suspended one beside it."""
    rows = [_row(gold, "O_TWO_MANDATES", d) for d in CUTS]
    assert [bool(r["eligible"]) for r in rows] == [True, True, True]
    assert [r["account_bank"] for r in rows] == ["OWN", "OWN", "OTHER"]


def test_episode_outcomes_only_when_observed(gold):
    # at 2024-02-29 the 2024-01-31 episode's horizon (ends 2024-03-01) is not over yet
    r = _row(gold, "O_LAST_DAY", CUTS[1])
    assert r["past_early_cuts_12m"] == 1 and r["past_cured_debit_12m"] == 0
    # at 2024-03-31 it is: cured by debit; the 2024-02-29 episode (ends 03-30) too
    r = _row(gold, "O_LAST_DAY", CUTS[2])
    assert r["past_early_cuts_12m"] == 2 and r["past_cured_debit_12m"] == 2
    r = _row(gold, "O_MIXED", CUTS[2])
    assert r["past_cured_other_12m"] == 1 and r["past_cured_debit_12m"] == 0


def test_payment_windows_count_the_cut_day_not_later(gold):
    # paid on the cut day 2024-01-31 22:00: inside the window of the cut, outside its horizon
    r = _row(gold, "O_BEFORE_CUT", D)
    assert r["payments_3m"] == 1 and r["amount_paid_3m"] == 100.0
    assert r["debit_payment_share_3m"] == 1.0
    r = _row(gold, "O_LAST_DAY", D)
    assert r["payments_3m"] == 0 and pd.isna(r["debit_payment_share_3m"])
