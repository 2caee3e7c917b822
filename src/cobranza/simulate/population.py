"""Clients and their own deposit accounts: who they are, what they earn and when, what they hold.

A client has a segment, an employment type, an income, a latent financial health `h` (never
written) and a payroll calendar; the monthly summary of the deposit account follows that story
(payroll inflows, a balance buffer that grows with `h`, the monthly balance identity). The money
available on a given day drives every debit attempt (`Accounts.funds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cobranza.simulate.common import (
    INDEPENDENT,
    PAY_BIWEEKLY,
    PAY_IRREGULAR,
    PAY_MONTHLY,
    PAY_PENSION,
    PENSIONER,
    SALARIED,
    SME,
)
from cobranza.simulate.config import DRIFT_MONTHS, Calendar, SimulationConfig

JANUARY_BALANCE = 0.7  # end balances in January, against the story without seasonality
JANUARY_SPENDING = 2.5  # the intra-month dip of balances in January, times the usual one


@dataclass
class Clients:
    """One chunk's clients (arrays of length n)."""

    n: int
    seg: np.ndarray
    emp: np.ndarray
    income: np.ndarray
    h: np.ndarray  # latent financial health, never written
    gender: np.ndarray
    birth: np.ndarray
    pay_kind: np.ndarray
    declared: np.ndarray
    declared_missing: np.ndarray
    own_account: np.ndarray
    checking: np.ndarray
    shock: np.ndarray
    latent_f: np.ndarray  # latent "would pay if reminded" term (truth.PF), never written


def draw_clients(rng: np.random.Generator, cfg: SimulationConfig, cal: Calendar, n: int) -> Clients:
    seg = rng.choice(4, n, p=[0.64, 0.20, 0.06, 0.10])
    emp = np.where(
        seg == SME,
        rng.choice(4, n, p=[0.10, 0.80, 0.0, 0.10]),
        rng.choice(4, n, p=[0.58, 0.24, 0.12, 0.06]),
    )
    income = np.array([2.3e6, 6.5e6, 18e6, 9e6])[seg] * rng.lognormal(0.0, 0.45, n)
    income = np.where(emp == PENSIONER, income * 0.8, income)
    income = np.maximum(np.round(income, -3), 1_000_000.0)
    h = rng.normal(0.0, 1.0, n)
    gender = np.array(["F", "M", "X"], dtype=object)[rng.choice(3, n, p=[0.5, 0.49, 0.01])]
    age_years = np.where(emp == PENSIONER, rng.uniform(58, 82, n), rng.uniform(21, 68, n))
    birth = cal.cut[-1] - (age_years * 365.25).astype("timedelta64[D]")
    pay_kind = np.select(
        [emp == SALARIED, emp == PENSIONER],
        [np.where(rng.random(n) < 0.75, PAY_BIWEEKLY, PAY_MONTHLY), PAY_PENSION],
        PAY_IRREGULAR,
    )
    declared = np.round(income * rng.lognormal(0.0, 0.1, n), -3)
    declared_missing = rng.random(n) < 0.04
    own_account = rng.random(n) < 0.8
    checking = rng.random(n) < 0.2
    shock = np.zeros(n, bool)
    if cfg.income_shock:
        shock = rng.random(n) < np.where(emp == INDEPENDENT, 0.55, 0.4)
    latent_f = rng.normal(0.0, 1.0, n)
    return Clients(
        n, seg, emp, income, h, gender, birth, pay_kind, declared, declared_missing,
        own_account, checking, shock, latent_f,
    )  # fmt: skip


@dataclass
class Accounts:
    """Monthly summary of each client's own deposit account (arrays of shape (n, M))."""

    pay_kind: np.ndarray
    payroll: np.ndarray
    end_bal: np.ndarray
    min_bal: np.ndarray
    avg_bal: np.ndarray
    inflow: np.ndarray
    outflow: np.ndarray
    n_inflows: np.ndarray
    irregular_days: np.ndarray

    def days_since_payroll(self, cl: np.ndarray, m: int, day: np.ndarray) -> np.ndarray:
        kind = self.pay_kind[cl]
        return np.select(
            [kind == PAY_BIWEEKLY, kind == PAY_MONTHLY, kind == PAY_PENSION],
            [
                np.where(day >= 15, day - 15, day),
                day,
                np.where(day >= 20, day - 20, day + 10),
            ],
            self.irregular_days[cl, m],
        )

    def funds(
        self, rng: np.random.Generator, cl: np.ndarray, m: int, day: np.ndarray
    ) -> np.ndarray:
        """Money available in the debited account on `day` (hidden; balances show it noisily)."""
        ds = self.days_since_payroll(cl, m, day)
        base = np.maximum(self.min_bal[cl, m], 0) * 0.45 + np.maximum(self.avg_bal[cl, m], 0) * 0.15
        fresh = self.payroll[cl, m] * 0.8 * np.exp(-ds / 7.0)
        return (base + fresh) * rng.lognormal(0.0, 0.6, len(cl))


def draw_accounts(
    rng: np.random.Generator, cfg: SimulationConfig, cal: Calendar, c: Clients
) -> Accounts:
    n, M = c.n, cal.n
    emp, income = c.emp, c.income
    moy = cal.month_of_year[None, :]
    season = cfg.has("seasonality")
    bonus = season * np.where(
        (emp == SALARIED)[:, None] & ((moy == 6) | (moy == 12)),
        0.5,
        np.where((emp == PENSIONER)[:, None] & ((moy == 6) | (moy == 11)), 1.0, 0.0),
    )
    irregular = (c.pay_kind == PAY_IRREGULAR)[:, None]
    pay_noise = np.where(
        irregular,
        rng.lognormal(-0.05, 0.45, (n, M)) * (rng.random((n, M)) > 0.1),
        rng.lognormal(0.0, 0.03, (n, M)),
    )
    payroll = income[:, None] * (1.0 + bonus) * pay_noise
    in_drift = np.zeros(M, bool)
    if cfg.income_shock:
        in_drift[-DRIFT_MONTHS:] = True
    shocked = c.shock[:, None] & in_drift[None, :]
    payroll = np.where(shocked, payroll * 0.55, payroll)
    payroll = np.round(payroll, -3)
    buffer = income * 0.6 * np.exp(0.8 * c.h) * rng.lognormal(0.0, 0.25, n)
    end_bal = buffer[:, None] * rng.lognormal(0.0, 0.35, (n, M)) + 0.25 * (
        payroll - income[:, None]
    )
    end_bal = np.where(shocked, end_bal * 0.45, end_bal)
    # January: the squeeze after the holidays, balances at their lowest.
    end_bal = np.where(season & (moy == 1), end_bal * JANUARY_BALANCE, end_bal)
    overdraft = (c.checking & (c.h < -1.0))[:, None] & (rng.random((n, M)) < 0.3)
    end_bal = np.where(overdraft, -income[:, None] * 0.3 * rng.random((n, M)), end_bal)
    prev_end = np.concatenate(
        [(buffer * rng.lognormal(0.0, 0.35, n))[:, None], end_bal[:, :-1]], axis=1
    )
    other_in = income[:, None] * 0.15 * rng.lognormal(0.0, 0.5, (n, M))
    outflow = payroll + other_in + prev_end - end_bal
    short = outflow < 0
    other_in = np.where(short, other_in - outflow + income[:, None] * 0.05, other_in)
    outflow = payroll + other_in + prev_end - end_bal
    dip = income[:, None] * 0.25 * rng.random((n, M))
    dip = np.where(season & (moy == 1), dip * JANUARY_SPENDING, dip)
    min_bal = np.minimum(prev_end, end_bal) - dip
    avg_bal = 0.5 * (prev_end + end_bal) + 0.2 * payroll - 0.5 * dip
    inflow = payroll + other_in
    pay_count = np.select(
        [c.pay_kind == PAY_BIWEEKLY, c.pay_kind == PAY_IRREGULAR],
        [2, rng.integers(1, 4, n)],
        1,
    )[:, None] * (payroll > 0)
    n_inflows = pay_count + 1 + rng.poisson(1.5, (n, M))
    irregular_days = rng.integers(0, 30, (n, M))
    return Accounts(
        c.pay_kind, payroll, end_bal, min_bal, avg_bal, inflow, outflow, n_inflows, irregular_days
    )
