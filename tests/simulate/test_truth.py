"""The ground truth: both potential outcomes of every early-delinquency row, consistent with the
causal structure, the realized p_true and the extract (exposure = the outstanding balance)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from cobranza.contract import POTENTIAL_OUTCOME_COLUMNS, TRUTH_DIR
from cobranza.simulate import SimulationConfig, simulate


@pytest.fixture(scope="module")
def truth_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("truth") / "extract"
    return out, simulate(out, SimulationConfig(clients=2000, months=12, seed=21, noise=0.0))


def test_potential_outcomes_have_the_contract_columns_first(truth_run):
    folder, _ = truth_run
    table = pq.read_table(folder / TRUTH_DIR / "potential_outcomes.parquet")
    assert tuple(table.column_names[: len(POTENTIAL_OUTCOME_COLUMNS)]) == POTENTIAL_OUTCOME_COLUMNS
    assert {"treated", "eligible", "client_type", "p_waits", "p_forgot"} <= set(table.column_names)


def test_potential_outcomes_follow_the_causal_structure(truth_run):
    folder, summary = truth_run
    t = duckdb.sql(
        f"select * from '{folder / TRUTH_DIR / 'potential_outcomes.parquet'}'"
    ).fetchnumpy()
    for name in POTENTIAL_OUTCOME_COLUMNS[3:9]:
        assert ((t[name] >= 0) & (t[name] <= 1)).all(), name
    assert np.allclose(t["p_roll_no_action"], 1 - t["p_cure_any_no_action"])
    assert np.allclose(t["p_roll_action"], 1 - t["p_cure_any_action"])
    # management moves the cure off the debit, and lowers the roll
    assert (t["p_cure_debit_action"] <= t["p_cure_debit_no_action"] + 1e-12).all()
    effect = t["p_roll_action"] - t["p_roll_no_action"]
    assert (effect <= 1e-12).all() and effect.mean() < -0.03 and effect.std() > 0.02
    assert summary["effect_on_roll_mean"] == pytest.approx(effect.mean(), abs=1e-4)
    # no mandate covering the cut: no debit cure either way
    inelig = ~t["eligible"]
    assert inelig.any() and (t["p_cure_debit_no_action"][inelig] == 0).all()
    pw = t["p_waits"]
    expected = pw + (1 - pw) * t["p_forgot"] * t["p_pays_managed"]
    assert np.allclose(t["p_cure_any_action"], expected)


def test_latest_cut_has_no_arm_and_every_cut_is_there(truth_run):
    folder, _ = truth_run
    rows = duckdb.sql(
        f"""
        with po as (select * from '{folder / TRUTH_DIR / "potential_outcomes.parquet"}'),
             early as (select * from read_csv('{folder / "portfolio_cuts.csv"}')
                       where days_past_due between 1 and 30)
        select count(*) filter (where po.obligation_id is null or e.obligation_id is null),
               count(*) filter (where e.cut_date = (select max(cut_date) from early)
                                  and po.arm is not null),
               count(*) filter (where e.cut_date < (select max(cut_date) from early)
                                  and po.arm is null),
               count(*) filter (where abs(po.exposure - e.outstanding_balance) > 0.01),
               count(*)
        from po full join early e using (obligation_id, cut_date)
        """
    ).fetchone()
    assert rows[:4] == (0, 0, 0, 0) and rows[4] > 500


def test_p_true_is_the_cure_probability_under_the_treatment_received(truth_run):
    folder, _ = truth_run
    rows = duckdb.sql(
        f"""
        select o.labeled, o.treated, o.p_true, p.p_cure_debit_action, p.p_cure_debit_no_action
        from read_csv('{folder / TRUTH_DIR / "outcomes.csv"}') o
        join '{folder / TRUTH_DIR / "potential_outcomes.parquet"}' p using (obligation_id, cut_date)
        join read_csv('{folder / TRUTH_DIR / "p_true.csv"}') t using (obligation_id, cut_date)
        where o.eligible
        """
    ).fetchall()
    assert len(rows) > 300
    for labeled, treated, p, p_action, p_none in rows:
        expected = p_action if (labeled and treated) else p_none
        assert p == pytest.approx(expected, abs=2e-6)


def test_realized_roll_rates_are_within_what_the_truth_implies(truth_run):
    _, summary = truth_run
    history = summary["roll_rates"]["history"]
    for arm, r in history.items():
        lo, hi = r["interval_95"]
        assert lo <= r["realized"] <= hi or r["rows"] < 30, arm
    assert history["HOLDOUT"]["implied"] > history["ASSIGNED"]["implied"]
