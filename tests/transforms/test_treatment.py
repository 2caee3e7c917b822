"""The treatment in gold, on hand-built rows: the arm of each early-delinquency row and the
collection actions in its horizon (d, d + H]."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from tests.transforms.conftest import etl, read_gold
from tests.transforms.rawdata import client_row, cut_row, mandate_row, obligation_row

CUTS = [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
AS_OF = date(2024, 4, 30)  # the latest cut; the horizon of 2024-03-31 ends on it
D = CUTS[0]  # horizon (2024-01-31, 2024-03-01]


def _assign(oid: str, d: date, arm: str) -> dict:
    return {"obligation_id": oid, "cut_date": d, "arm": arm, "policy_id": "p"}


def _action(aid: str, oid: str, ts: datetime, cost: float) -> dict:
    return {
        "action_id": aid,
        "obligation_id": oid,
        "action_ts": ts,
        "action_type": "CALL",
        "outcome": "CONTACTED",
        "cost": cost,
    }


@pytest.fixture(scope="module")
def gold(tmp_path_factory) -> pd.DataFrame:
    oids = ["O_HOLD", "O_RULE", "O_NONE", "O_LATEST_SET"]
    tables: dict[str, list[dict]] = {
        "clients": [client_row("C1")],
        "obligations": [obligation_row(o) for o in oids],
        "debit_mandates": [mandate_row(o) for o in oids],
        "portfolio_cuts": [cut_row(o, d) for o in oids for d in CUTS],
        "collection_assignments": [
            _assign("O_HOLD", D, "HOLDOUT"),
            _assign("O_HOLD", CUTS[1], "ASSIGNED"),
            _assign("O_RULE", D, "RULE"),
            _assign("O_LATEST_SET", CUTS[3], "HOLDOUT"),  # today's decision, already recorded
        ],
        "collection_actions": [
            _action("X1", "O_NONE", datetime(2024, 1, 31, 18), 100.0),  # on d: not in horizon
            _action("X2", "O_NONE", datetime(2024, 2, 1, 9), 3200.0),  # d + 1
            _action("X3", "O_NONE", datetime(2024, 3, 1, 17), 120.0),  # d + 30
            _action("X4", "O_NONE", datetime(2024, 3, 2, 9), 4500.0),  # d + 31: outside
            _action("X5", "O_HOLD", datetime(2024, 2, 20, 9), 250.0),  # contamination
            _action("X6", "O_RULE", datetime(2024, 4, 20, 9), 40.0),  # in the horizon of 2024-03-31
        ],
    }
    root = tmp_path_factory.mktemp("treatment")
    etl(root, tables, AS_OF)
    return read_gold(root).set_index(["obligation_id", "cut_date"])


def _col(gold, oid: str, column: str) -> list:
    values = [gold.loc[(oid, pd.Timestamp(d)), column] for d in CUTS]
    return [None if pd.isna(v) else v for v in values]


def test_arms_come_from_the_file_past_cuts_default_to_assigned_the_latest_is_undecided(gold):
    assert _col(gold, "O_HOLD", "arm") == ["HOLDOUT", "ASSIGNED", "ASSIGNED", None]
    assert _col(gold, "O_RULE", "arm") == ["RULE", "ASSIGNED", "ASSIGNED", None]
    assert _col(gold, "O_NONE", "arm") == ["ASSIGNED", "ASSIGNED", "ASSIGNED", None]
    assert _col(gold, "O_LATEST_SET", "arm") == ["ASSIGNED", "ASSIGNED", "ASSIGNED", "HOLDOUT"]
    assert _col(gold, "O_HOLD", "assigned") == [False, True, True, None]
    assert _col(gold, "O_LATEST_SET", "assigned") == [True, True, True, False]


def test_days_to_first_action_and_cost_count_the_actions_in_the_horizon(gold):
    # O_NONE at d: X2 (day 1) and X3 (day 30); X1 on d and X4 on d + 31 are outside
    assert _col(gold, "O_NONE", "days_to_first_action")[0] == 1
    assert _col(gold, "O_NONE", "action_cost")[0] == pytest.approx(3320.0)
    # at 2024-02-29 (horizon to 2024-03-30): X3 (day 1) and X4 (day 2)
    assert _col(gold, "O_NONE", "days_to_first_action")[1] == 1
    assert _col(gold, "O_NONE", "action_cost")[1] == pytest.approx(4620.0)
    assert _col(gold, "O_HOLD", "days_to_first_action")[0] == 20  # the HOLDOUT row was managed
    assert _col(gold, "O_RULE", "days_to_first_action") == [None, None, 20, None]
    assert _col(gold, "O_RULE", "action_cost") == [0.0, 0.0, 40.0, None]


def test_the_treatment_after_d_is_unknown_while_the_horizon_is_open(gold):
    latest = gold.xs(pd.Timestamp(CUTS[3]), level="cut_date")
    assert latest["days_to_first_action"].isna().all() and latest["action_cost"].isna().all()
