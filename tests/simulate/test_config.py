"""The simulator's knobs: scenarios, realism items, the holdout, and their errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cobranza.errors import CobranzaError
from cobranza.simulate import REALISM, SCENARIOS, SimulationConfig, simulate
from cobranza.simulate.config import Calendar


def test_bad_knobs_are_one_clear_error(tmp_path: Path):
    base = SimulationConfig(clients=10, months=6)
    cases = [
        (dict(scenario="nope"), "unknown scenario 'nope'"),
        (dict(without=frozenset({"gravity"})), "unknown realism item 'gravity'"),
        (dict(holdout_share=1.5), "holdout share"),
        (dict(holdout_months=-1), "holdout months"),
        (dict(contamination=-0.1), "contamination"),
    ]
    for overrides, message in cases:
        with pytest.raises(CobranzaError, match=message):
            simulate(tmp_path / "x", replace(base, **overrides))
    assert not (tmp_path / "x").exists()


def test_every_scenario_and_realism_item_is_documented():
    doc = (Path(__file__).parents[2] / "docs" / "simulator.md").read_text(encoding="utf-8")
    for name in (*SCENARIOS, *REALISM):
        assert f"`{name}`" in doc, name


def test_drift_is_the_income_shock_scenario(tmp_path: Path):
    cfg = SimulationConfig(clients=300, months=8, seed=6, noise=0.0)
    simulate(tmp_path / "drift", replace(cfg, drift=True))
    simulate(tmp_path / "shock", replace(cfg, scenario="income_shock"))
    simulate(tmp_path / "flat", cfg)
    drift = (tmp_path / "drift" / "account_monthly.csv").read_bytes()
    assert drift == (tmp_path / "shock" / "account_monthly.csv").read_bytes()
    assert drift != (tmp_path / "flat" / "account_monthly.csv").read_bytes()


def test_business_days_move_due_dates_within_the_month():
    cal = Calendar.build(SimulationConfig(months=24))
    days = cal.month_start[None, :] + (cal.due[3:28] - 1).astype("timedelta64[D]")
    weekday = (days.astype("int64") + 3) % 7
    assert (weekday < 5).all()  # Monday to Friday
    assert ((cal.due[3:28] >= 3) & (cal.due[3:28] <= cal.length[None, :] - 1)).all()
    # 2025-12-08 (Immaculate Conception) is a Monday holiday: due day 8 of December moves on
    december = int((cal.month_start.astype("datetime64[M]") == np.datetime64("2025-12")).argmax())
    assert cal.due[8, december] == 9
    flat = Calendar.build(SimulationConfig(months=24, without=frozenset({"holidays"})))
    assert (flat.due[3:28] == cal.due[3:28] * 0 + flat.due[3:28][:, :1]).all()
