"""The contract's target and eligibility rules, each on hand-built rows where the answer is known."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from tests.transforms.conftest import etl, read_gold
from tests.transforms.rawdata import client_row as _client
from tests.transforms.rawdata import cut_row as _cut
from tests.transforms.rawdata import mandate_row as _mandate
from tests.transforms.rawdata import obligation_row as _obligation
from tests.transforms.rawdata import payment_row as _pay

CUTS = [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]
AS_OF = date(2024, 3, 31)
D = CUTS[0]  # horizon (2024-01-31, 2024-03-01] with H = 30


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


# ---- version 2: reversals, the other labels, roll_31_plus -------------------------------------
# Cuts 2024-01-31 (D), 2024-02-29, 2024-03-31; as_of 2024-04-30, so the horizons of D and of
# 2024-02-29 are over and that of 2024-03-31 (ends 2024-04-30) too; 2024-04-30 is the latest cut.
CUTS_V2 = [*CUTS, date(2024, 4, 30)]
AS_OF_V2 = date(2024, 4, 30)
HORIZON_END = datetime(2024, 3, 1, 23, 0)  # D + 30, late on the day


def _pay_v2(pid, oid, ts, amount, channel="RECURRING_DEBIT", reversed_ts=None) -> dict:
    return {**_pay(pid, oid, ts, amount, channel), "reversed_ts": reversed_ts}


REVERSAL_CASES = {
    # obligation: (payments (ts, amount, channel, reversed_ts), self_cure_debit, cure_any, recovered)
    "R_REVERSED_INSIDE": (
        [(datetime(2024, 2, 10, 8), 100.0, "RECURRING_DEBIT", datetime(2024, 2, 14, 9))],
        0,
        0,
        0.0,
    ),
    "R_REVERSED_ON_HORIZON_END": (
        [(datetime(2024, 2, 10, 8), 100.0, "RECURRING_DEBIT", HORIZON_END)],
        0,
        0,
        0.0,
    ),
    "R_REVERSED_AFTER": (
        [(datetime(2024, 2, 10, 8), 100.0, "RECURRING_DEBIT", datetime(2024, 3, 2, 0, 30))],
        1,
        1,
        100.0,
    ),
    "R_OTHER_REVERSED": (  # a reversed branch payment does not break the all-debit condition
        [
            (datetime(2024, 2, 10, 8), 100.0, "RECURRING_DEBIT", None),
            (datetime(2024, 2, 11, 8), 40.0, "BRANCH", datetime(2024, 2, 20, 8)),
        ],
        1,
        1,
        100.0,
    ),
    "R_OTHER_KEPT": (  # the same branch payment, not reversed: covered, but not by the debit only
        [
            (datetime(2024, 2, 10, 8), 100.0, "RECURRING_DEBIT", None),
            (datetime(2024, 2, 11, 8), 40.0, "BRANCH", None),
        ],
        0,
        1,
        140.0,
    ),
    "R_OTHER_COVERS": ([(datetime(2024, 2, 11, 8), 100.0, "PSE", None)], 0, 1, 100.0),
    "R_PAID_BEFORE_REVERSED_INSIDE": (  # paid on d: not a horizon payment, whatever happens
        [(datetime(2024, 1, 31, 8), 100.0, "RECURRING_DEBIT", datetime(2024, 2, 3, 8))],
        0,
        0,
        0.0,
    ),
}
ROLL_CASES = {
    # obligation: (days past due at the cuts (None: no row), status, closed_date, roll at D)
    "L_NEXT_31": ([5, 31, None, None], "ACTIVE", None, 1),
    "L_NEXT_30": ([5, 30, 30, 30], "ACTIVE", None, 0),
    "L_NEXT_CURED": ([5, 0, 0, 0], "ACTIVE", None, 0),
    "L_WRITTEN_OFF_NO_NEXT": ([5, None, None, None], "WRITTEN_OFF", date(2024, 2, 15), 1),
    "L_WRITTEN_OFF_ON_NEXT_CUT": ([5, None, None, None], "WRITTEN_OFF", date(2024, 2, 29), 1),
    "L_WRITTEN_OFF_AFTER_NEXT": ([5, 10, None, None], "WRITTEN_OFF", date(2024, 3, 5), 0),
    "L_CLOSED_NO_NEXT": ([5, None, None, None], "CLOSED", date(2024, 2, 10), 0),
}


@pytest.fixture(scope="module")
def gold_v2(tmp_path_factory) -> pd.DataFrame:
    tables: dict[str, list[dict]] = {
        "clients": [_client("C1")],
        "obligations": [],
        "debit_mandates": [],
        "portfolio_cuts": [],
        "payments": [],
    }
    n = 0
    for oid, (pays, *_) in REVERSAL_CASES.items():
        tables["obligations"].append(_obligation(oid))
        tables["debit_mandates"].append(_mandate(oid))
        tables["portfolio_cuts"].append(_cut(oid, D))
        for ts, amount, channel, reversed_ts in pays:
            n += 1
            tables["payments"].append(_pay_v2(f"P{n}", oid, ts, amount, channel, reversed_ts))
    for oid, (dpds, status, closed, _) in ROLL_CASES.items():
        tables["obligations"].append({**_obligation(oid), "status": status, "closed_date": closed})
        tables["debit_mandates"].append(_mandate(oid))
        tables["portfolio_cuts"] += [
            _cut(oid, d, dpd=dpd) for d, dpd in zip(CUTS_V2, dpds, strict=True) if dpd is not None
        ]
    # one obligation early at every cut, so the latest cut is one of its rows
    tables["obligations"].append(_obligation("L_EVERY_CUT"))
    tables["debit_mandates"].append(_mandate("L_EVERY_CUT"))
    tables["portfolio_cuts"] += [_cut("L_EVERY_CUT", d, dpd=5) for d in CUTS_V2]
    root = tmp_path_factory.mktemp("target_v2")
    etl(root, tables, AS_OF_V2)
    return read_gold(root).set_index(["obligation_id", "cut_date"])


@pytest.mark.parametrize("oid", list(REVERSAL_CASES))
def test_a_payment_reversed_by_the_horizon_end_does_not_exist_for_it(gold_v2, oid):
    _, label, cure_any, recovered = REVERSAL_CASES[oid]
    row = _row(gold_v2, oid, D)
    assert (row["self_cure_debit"], row["cure_any"]) == (label, cure_any)
    assert row["amount_recovered"] == pytest.approx(recovered)


@pytest.mark.parametrize("oid", list(ROLL_CASES))
def test_roll_31_plus_at_the_next_cut_or_by_a_write_off(gold_v2, oid):
    assert _row(gold_v2, oid, D)["roll_31_plus"] == ROLL_CASES[oid][3]


def test_roll_31_plus_is_unlabeled_at_the_latest_cut_and_while_the_horizon_is_open(gold_v2):
    rows = [_row(gold_v2, "L_EVERY_CUT", d) for d in CUTS_V2]
    assert [r["roll_31_plus"] for r in rows[:3]] == [0, 0, 0]
    latest = rows[3]
    for label in ("roll_31_plus", "self_cure_debit", "cure_any", "amount_recovered"):
        assert pd.isna(latest[label]), label


def test_every_label_is_null_while_the_horizon_is_open(tmp_path):
    """The horizon of the last past cut reaches past as_of: no label, though its next cut is known."""
    tables = {
        "clients": [_client("C1")],
        "obligations": [_obligation("O1")],
        "debit_mandates": [_mandate("O1")],
        "portfolio_cuts": [_cut("O1", CUTS[1], dpd=5), _cut("O1", CUTS[2], dpd=40)],
        "payments": [_pay("P1", "O1", datetime(2024, 3, 10), 100.0)],
    }
    etl(tmp_path, tables, date(2024, 3, 29))  # 2024-02-29 + 30 = 2024-03-30 > as_of
    row = _row(read_gold(tmp_path).set_index(["obligation_id", "cut_date"]), "O1", CUTS[1])
    for label in ("self_cure_debit", "cure_any", "roll_31_plus", "amount_recovered"):
        assert pd.isna(row[label]), label
