"""The causal world of an early-delinquent row: latent client types and both potential outcomes.

At a cut `d`, an obligation 1-30 days past due is one of three types for the next month:
- W, waits for payroll: the debit (retry or due-date) collects either way. P(W) = `p_waits`
  (the p_true formula below) when a mandate covers `d`, 0 otherwise, times the chance that the
  mandate does not stop inside the horizon before the debit.
- F, forgot / needs a reminder (among the others, P(F | not W) = `p_forgot`): pays the arrears
  through another channel on its own with `p_pays_alone` (`PAYS_ALONE`: 0.15 for a client who
  relies on a debit, 0.35 for one without a mandate covering the cut, used to paying by hand),
  when managed with `p_pays_managed = p_pays_alone + (1 - p_pays_alone) sigmoid(PM terms)`.
- D, in distress (the rest): pays in neither case (maybe partially), rolls.
A W who is managed pre-empts the debit with `p_preempt`: pays by transfer after the call, so the
debit does not cure (the roll is the same, `self_cure_debit` differs).

Potential outcomes (the ground truth written to `_truth/potential_outcomes.parquet`):
  p_cure_debit_no_action = P(W)                  p_cure_debit_action = P(W) (1 - q)
  p_cure_any_*           = P(W) + (1 - P(W)) P(F|not W) o_*    (o_0 alone, o_1 managed)
  p_roll_*               = 1 - p_cure_any_*      (FIFO, month-end cuts: a row rolls exactly when
                                                  its amount past due is not covered)
Every term but the latent ones is computed from what the extract shows up to `d`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cobranza.simulate.common import (
    AFFLUENT,
    PAY_IRREGULAR,
    PENSIONER,
    PREMIUM,
    SALARIED,
    sigmoid,
)

if TYPE_CHECKING:
    from cobranza.simulate.state import World

# P(W): the p_true formula (documented in docs/simulator.md).
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
    "january": -0.35,  # the horizon is January: the post-holiday squeeze
    "prima": 0.3,  # the horizon is June or December and the client is salaried
}
PT_SEGMENT = np.array([0.0, 0.25, 0.5, -0.2])
PT_PRODUCT = np.array([0.0, -0.35, 0.35, 0.6, -0.55])

# P(F | not W): who forgot (has the money) rather than is in distress.
PF = {
    "intercept": 0.1,
    "inflow_ratio": 0.8,
    "balance_cover": 0.35,
    "past_episodes": -0.4,
    "affordability": -2.5,
    "days_past_due": -0.04,
    "irregular_income": -0.5,
    "january": -0.3,
    "latent": 0.6,  # times the client's own latent N(0, 1), never written
}
PF_SEGMENT = np.array([0.0, 0.3, 0.5, -0.2])
# Response of F: pays alone (by the debit's presence), pays when managed (heterogeneous).
PAYS_ALONE = {"debit": 0.15, "by_hand": 0.35}
PM = {"intercept": 0.0, "affluent": 0.4, "past_episodes": -0.3, "days_past_due": -0.035}
PM_PRODUCT = np.array([0.0, -0.1, 0.3, 0.3, -0.4])
# A managed W pre-empts the debit: digital and affluent clients more.
PQ = {"intercept": -2.7, "affluent": 0.7, "digital": 0.8, "own_bank": 0.2}


@dataclass
class CausalRow:
    """The type probabilities and responses of rows at one cut (arrays over the rows)."""

    p_waits_raw: np.ndarray  # the p_true formula (0 without a covering mandate)
    p_waits: np.ndarray  # P(W): times the chance the mandate does not stop first
    p_forgot: np.ndarray
    p_pays_alone: np.ndarray
    p_pays_managed: np.ndarray
    p_preempt: np.ndarray

    def potential(self) -> dict[str, np.ndarray]:
        pw, pf = self.p_waits, self.p_forgot
        any0 = pw + (1 - pw) * pf * self.p_pays_alone
        any1 = pw + (1 - pw) * pf * self.p_pays_managed
        return {
            "p_cure_debit_no_action": pw,
            "p_cure_debit_action": pw * (1 - self.p_preempt),
            "p_cure_any_no_action": any0,
            "p_cure_any_action": any1,
            "p_roll_no_action": 1 - any0,
            "p_roll_action": 1 - any1,
        }


def _horizon_month(w: World, c: int) -> int:
    return int(w.cal.month_of_year[c] % 12 + 1)


def observables(w: World, idx: np.ndarray, c: int) -> dict[str, np.ndarray]:
    """What the extract shows of rows `idx` up to cut c (the debited account: the current one)."""
    o, cl_, a = w.o, w.c, w.a
    lo = max(0, c - 5)
    n_att = w.att_cnt[idx, lo : c + 1].sum(axis=1)
    n_ok = w.succ_cnt[idx, lo : c + 1].sum(axis=1)
    cl = o.ocl[idx]
    inst = o.inst_path[idx, c]
    # The debited account over the last 3 complete months (the cut's month included).
    lo3 = max(0, c - 2)
    bal_3m = a.avg_bal[cl, lo3 : c + 1].mean(axis=1)
    inflow_3m = a.inflow[cl, lo3 : c + 1].mean(axis=1)
    # Payday as the bank knows it from the employment type: salaried 15th/30th, pension 20th.
    t = o.due_day[idx]
    ds = np.select(
        [cl_.emp[cl] == SALARIED, cl_.emp[cl] == PENSIONER],
        [np.where(t >= 15, t - 15, t), np.where(t >= 20, t - 20, t + 10)],
        99,
    )
    return {
        "rate_ok": (n_ok + 1.0) / (n_att + 2.0),
        "own": w.md.cur_own[idx],
        "cover": np.clip(np.log(np.maximum(bal_3m, 1.0) / inst), -3.0, 3.0),
        # Inflow against the declared income (no signal when the income is not declared).
        "inflow_ratio": np.where(
            cl_.declared_missing[cl], 0.0, np.clip(inflow_3m / cl_.declared[cl], 0.0, 2.0) - 1.0
        ),
        "good_timing": ds <= 6,
        "irregular": cl_.pay_kind[cl] == PAY_IRREGULAR,
        "episodes": w.early[idx, max(0, c - 12) : c].sum(axis=1),
        "afford": np.where(cl_.declared_missing[cl], 0.15, inst / cl_.declared[cl]),
        "dpd": w.dpd_prev[idx],
        "seg": cl_.seg[cl],
        "prod": o.prod[idx],
        "salaried": cl_.emp[cl] == SALARIED,
        "digital": w.digital_cnt[idx, lo : c + 1].sum(axis=1) > 0,
    }


def p_true(w: World, idx: np.ndarray, c: int, x: dict | None = None) -> np.ndarray:
    """P(W) before mandate stops: the probability that the debit collects, rows `idx` at cut c."""
    x = observables(w, idx, c) if x is None else x
    hm = _horizon_month(w, c)
    season = w.cfg.has("seasonality")
    z = (
        PT["intercept"]
        + PT["debit_success_rate"] * (x["rate_ok"] - 0.6)
        + np.where(
            x["own"],
            PT["balance_cover"] * x["cover"] + PT["inflow_ratio"] * x["inflow_ratio"],
            PT["other_bank"],
        )
        + PT["payroll_before_due"] * x["good_timing"]
        + PT["irregular_income"] * x["irregular"]
        + PT["past_episodes"] * x["episodes"]
        + PT["affordability"] * (x["afford"] - 0.15)
        + PT["days_past_due"] * (x["dpd"] - 10)
        + PT_SEGMENT[x["seg"]]
        + PT_PRODUCT[x["prod"]]
        + PT["latent_health"] * w.o.ho[idx]
        + (PT["january"] if season and hm == 1 else 0.0)
        + PT["prima"] * (season and hm in (6, 12)) * x["salaried"]
    )
    return sigmoid(z)


def causal_rows(
    w: World, idx: np.ndarray, c: int, covering: np.ndarray, stop_hazard: np.ndarray
) -> CausalRow:
    """Type probabilities and responses of early-delinquent rows `idx` at cut c."""
    x = observables(w, idx, c)
    pw_raw = np.where(covering, p_true(w, idx, c, x), 0.0)
    affluent = (x["seg"] == AFFLUENT) | (x["seg"] == PREMIUM)
    jan = w.cfg.has("seasonality") and _horizon_month(w, c) == 1
    zf = (
        PF["intercept"]
        + PF["inflow_ratio"] * x["inflow_ratio"]
        + PF["balance_cover"] * np.where(x["own"], x["cover"], 0.0)
        + PF["past_episodes"] * x["episodes"]
        + PF["affordability"] * (x["afford"] - 0.15)
        + PF["days_past_due"] * (x["dpd"] - 10)
        + PF["irregular_income"] * x["irregular"]
        + PF_SEGMENT[x["seg"]]
        + (PF["january"] if jan else 0.0)
        + PF["latent"] * w.o.latent_f[idx]
    )
    zm = (
        PM["intercept"]
        + PM["affluent"] * affluent
        + PM["past_episodes"] * x["episodes"]
        + PM["days_past_due"] * (x["dpd"] - 10)
        + PM_PRODUCT[x["prod"]]
    )
    zq = (
        PQ["intercept"]
        + PQ["affluent"] * affluent
        + PQ["digital"] * x["digital"]
        + PQ["own_bank"] * (covering & x["own"])
    )
    alone = np.where(covering, PAYS_ALONE["debit"], PAYS_ALONE["by_hand"])
    return CausalRow(
        p_waits_raw=pw_raw,
        p_waits=pw_raw * (1.0 - stop_hazard),
        p_forgot=sigmoid(zf),
        p_pays_alone=alone,
        # Whoever pays alone pays when reminded too: management only adds payers.
        p_pays_managed=alone + (1.0 - alone) * sigmoid(zm),
        p_preempt=sigmoid(zq),
    )
