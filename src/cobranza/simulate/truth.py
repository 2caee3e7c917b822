"""The explicit probability behind every drawn outcome (`p_true`), and its coefficients.

Every term but the last is computed from what the extract shows up to the cut (point in time):
a model can learn it from features; the latent health term keeps the oracle's ceiling below 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cobranza.simulate.common import PAY_IRREGULAR, PENSIONER, SALARIED, sigmoid

if TYPE_CHECKING:
    from cobranza.simulate.months import World

# p_true coefficients (documented in docs/simulator.md).
PT = {
    "intercept": 1.6,
    "debit_success_rate": 4.2,
    "balance_cover": 0.95,
    "other_bank": -0.8,
    "payroll_before_due": 0.9,
    "irregular_income": -0.45,
    "past_episodes": -0.45,
    "affordability": -3.0,
    "days_past_due": -0.045,
    "inflow_ratio": 1.6,
    "latent_health": 0.3,
}
PT_SEGMENT = np.array([0.0, 0.25, 0.5, -0.2])
PT_PRODUCT = np.array([0.0, -0.35, 0.35, 0.6, -0.55])


def p_true(w: World, idx: np.ndarray, c: int) -> np.ndarray:
    """The explicit probability of self-cure through the debit for rows `idx` at cut c."""
    o, cl_, a = w.o, w.c, w.a
    lo = max(0, c - 5)
    n_att = w.att_cnt[idx, lo : c + 1].sum(axis=1)
    n_ok = w.succ_cnt[idx, lo : c + 1].sum(axis=1)
    rate_ok = (n_ok + 1.0) / (n_att + 2.0)
    cl = o.ocl[idx]
    own = w.md.cur_own[idx]
    # The debited account over the last 3 complete months (the cut's month included).
    lo3 = max(0, c - 2)
    bal_3m = a.avg_bal[cl, lo3 : c + 1].mean(axis=1)
    inflow_3m = a.inflow[cl, lo3 : c + 1].mean(axis=1)
    cover = np.clip(np.log(np.maximum(bal_3m, 1.0) / o.inst[idx]), -3.0, 3.0)
    # Inflow against the declared income (no signal when the income is not declared).
    inflow_ratio = np.where(
        cl_.declared_missing[cl], 0.0, np.clip(inflow_3m / cl_.declared[cl], 0.0, 2.0) - 1.0
    )
    # Payday as the bank knows it from the employment type: salaried 15th/30th, pension 20th.
    t = o.due_day[idx]
    ds = np.select(
        [cl_.emp[cl] == SALARIED, cl_.emp[cl] == PENSIONER],
        [np.where(t >= 15, t - 15, t), np.where(t >= 20, t - 20, t + 10)],
        99,
    )
    good_timing = ds <= 6
    eps = w.early[idx, max(0, c - 12) : c].sum(axis=1)
    z = (
        PT["intercept"]
        + PT["debit_success_rate"] * (rate_ok - 0.6)
        + np.where(
            own,
            PT["balance_cover"] * cover + PT["inflow_ratio"] * inflow_ratio,
            PT["other_bank"],
        )
        + PT["payroll_before_due"] * good_timing
        + PT["irregular_income"] * (cl_.pay_kind[cl] == PAY_IRREGULAR)
        + PT["past_episodes"] * eps
        + PT["affordability"] * (o.afford[idx] - 0.15)
        + PT["days_past_due"] * (w.dpd_prev[idx] - 10)
        + PT_SEGMENT[cl_.seg[cl]]
        + PT_PRODUCT[o.prod[idx]]
        + PT["latent_health"] * o.ho[idx]
    )
    return sigmoid(z)
