"""The month loop: outcomes drawn at each cut, then the month's debits, payments and the next cut.

At each month-end cut an obligation 1-30 days past due with a mandate covering the cut draws its
outcome over the next 30 days from an explicit `p_true` (mostly a function of what the extract
shows up to the cut, plus a modest latent term), and the month's debits and payments are then
generated so that the contract's target computed from the files reproduces the drawn outcome
exactly. `World` holds the chunk's state; `Month` what one month's steps share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cobranza.contract import ACTION_TYPES, CHANNELS
from cobranza.simulate.common import (
    ACTION_COST,
    ACTION_P,
    DEBIT,
    FIRST_PAY_DAY,
    LAST_PAY_DAY,
    M_DUE_CURE,
    M_NONE,
    M_OTHER_CHANNEL,
    M_PARTIAL_DEBIT,
    M_PARTIAL_OTHER,
    M_RETRY_CURE,
    M_ROLL,
    OTHER_CHANNEL_P,
    PARTIAL,
    R_BLOCKED,
    R_CLOSED,
    R_FUNDS,
    R_TECH,
    REJECTED,
    SUCCESS,
    WRITE_OFF_DPD,
    Events,
    sigmoid,
)
from cobranza.simulate.config import Calendar, SimulationConfig
from cobranza.simulate.population import Accounts, Clients
from cobranza.simulate.portfolio import Mandates, Obligations
from cobranza.simulate.truth import p_true


@dataclass
class World:
    """One chunk's state: its people, obligations and mandates, the running ledger and events."""

    rng: np.random.Generator
    cfg: SimulationConfig
    cal: Calendar
    c: Clients
    a: Accounts
    o: Obligations
    md: Mandates
    inst_amt: np.ndarray = field(init=False)  # (no, M) installment due in each window month
    paid_cum: np.ndarray = field(init=False)
    ar_prev: np.ndarray = field(init=False)  # amount past due at the previous cut
    dpd_prev: np.ndarray = field(init=False)  # days past due at the previous cut
    alive: np.ndarray = field(init=False)
    status: np.ndarray = field(init=False)  # 0 ACTIVE 1 CLOSED 2 WRITTEN_OFF
    closed: np.ndarray = field(init=False)
    att_cnt: np.ndarray = field(init=False)  # (no, M) debit attempts per month
    succ_cnt: np.ndarray = field(init=False)  # (no, M) successful debit attempts per month
    early: np.ndarray = field(init=False)  # (no, M) early delinquency at each cut
    had_cut_prev: np.ndarray = field(init=False)
    att: Events = field(init=False)
    pay: Events = field(init=False)
    cuts: Events = field(init=False)
    acts: Events = field(init=False)
    truth: Events = field(init=False)

    def __post_init__(self) -> None:
        no, M = self.o.no, self.cal.n
        self.inst_amt = np.zeros((no, M))
        self.paid_cum = np.zeros(no)
        self.ar_prev = np.zeros(no)
        self.dpd_prev = np.zeros(no, np.int64)
        self.alive = np.ones(no, bool)
        self.status = np.zeros(no, np.int64)
        self.closed = np.full(no, np.datetime64("NaT"), "datetime64[D]")
        self.att_cnt = np.zeros((no, M))
        self.succ_cnt = np.zeros((no, M))
        self.early = np.zeros((no, M), bool)
        self.had_cut_prev = np.zeros(no, bool)
        self.att = Events("obl", "mand", "m", "day", "sec", "req", "deb", "res", "reason")
        self.pay = Events("obl", "m", "day", "sec", "amount", "channel")
        self.cuts = Events("obl", "m", "dpd", "apd", "bal")
        self.acts = Events("obl", "date", "sec", "type", "outcome", "cost")
        self.truth = Events("obl", "m", "elig", "p", "y", "mode")


@dataclass
class Month:
    """What the steps of one month share."""

    m: int
    last_day: int
    active: np.ndarray
    A: np.ndarray  # installment due this month
    covering: np.ndarray  # a mandate covers the previous cut
    mode: np.ndarray  # outcome mode of the row at the previous cut (M_NONE: not drawn)
    paid_m: np.ndarray = field(init=False)
    last_day_evt: np.ndarray = field(init=False)
    stop: np.ndarray = field(init=False)
    end_day: np.ndarray = field(init=False)
    debit_ok: np.ndarray = field(init=False)
    owed: np.ndarray = field(init=False)
    pday: np.ndarray = field(init=False)
    oc_before: np.ndarray = field(init=False)
    funds_based: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        no = len(self.active)
        self.paid_m = np.zeros(no)
        self.last_day_evt = np.zeros(no, np.int64)


def funds_attempt(w: World, idx: np.ndarray, m: int, day: np.ndarray, req: np.ndarray):
    """Result of a debit attempt driven by the funds available (SUCCESS/PARTIAL/REJECTED)."""
    rng, k = w.rng, len(idx)
    f = w.a.funds(rng, w.o.ocl[idx], m, day)
    tech = rng.random(k) < np.where(w.md.cur_own[idx], 0.012, 0.06)
    blocked = rng.random(k) < 0.003
    ok = f >= req
    some = np.floor(np.minimum(f, req - 1))
    part = ~ok & w.md.cur_partial[idx] & (f >= 0.05 * req) & (some >= 1)
    res = np.where(ok, SUCCESS, np.where(part, PARTIAL, REJECTED))
    deb = np.where(ok, req, np.where(part, some, 0.0))
    reason = np.where(res == REJECTED, R_FUNDS, -1)
    blocked_reason = np.where(rng.random(k) < 0.3, R_CLOSED, R_BLOCKED)
    reason = np.where(blocked, blocked_reason, np.where(tech, R_TECH, reason))
    res = np.where(tech | blocked, REJECTED, res)
    deb = np.where(tech | blocked, 0.0, deb)
    return res, deb, reason


def record_attempt(w: World, mo: Month, idx, day, req, res, deb, reason) -> None:
    """A debit attempt and, when money was taken, its RECURRING_DEBIT payment (same second)."""
    if len(idx) == 0:
        return
    m = mo.m
    sec = w.rng.integers(4 * 3600, 7 * 3600, len(idx))
    w.att.add(
        obl=idx, mand=w.md.cur_mand[idx], m=np.int64(m), day=day, sec=sec,
        req=req, deb=deb, res=res, reason=reason,
    )  # fmt: skip
    got = deb > 0
    w.pay.add(
        obl=idx[got], m=np.int64(m), day=day[got], sec=sec[got],
        amount=deb[got], channel=np.int64(DEBIT),
    )  # fmt: skip
    np.add.at(mo.paid_m, idx, deb)
    np.add.at(w.att_cnt[:, m], idx, 1.0)
    np.add.at(w.succ_cnt[:, m], idx, (res == SUCCESS).astype(float))
    np.maximum.at(mo.last_day_evt, idx, day)


def record_payment(w: World, mo: Month, idx, day, amount) -> None:
    """A payment through a channel other than the debit."""
    if len(idx) == 0:
        return
    rng = w.rng
    ch = rng.choice(len(CHANNELS), len(idx), p=OTHER_CHANNEL_P)
    w.pay.add(
        obl=idx, m=np.int64(mo.m), day=day, sec=rng.integers(7 * 3600, 22 * 3600, len(idx)),
        amount=amount, channel=ch,
    )  # fmt: skip
    np.add.at(mo.paid_m, idx, amount)
    np.maximum.at(mo.last_day_evt, idx, day)


def draw_outcomes(w: World, mo: Month) -> np.ndarray:
    """Outcome of every early-delinquent row at the previous cut; returns those rows (mask)."""
    rng, m, t = w.rng, mo.m, w.o.due_day
    ep = w.had_cut_prev & (w.dpd_prev >= 1) & (w.dpd_prev <= 30)
    elig = ep & mo.covering
    ie = np.flatnonzero(elig)
    p = p_true(w, ie, m - 1)
    y = rng.random(len(ie)) < p
    u = rng.random(len(ie))
    can_retry = t[ie] >= 5
    m1 = np.where(can_retry & (u < 0.4), M_RETRY_CURE, M_DUE_CURE)
    m0 = np.select(
        [u < 0.35, u < 0.6],
        [M_OTHER_CHANNEL, np.where(w.md.cur_partial[ie], M_PARTIAL_DEBIT, M_PARTIAL_OTHER)],
        M_ROLL,
    )
    mo.mode[ie] = np.where(y, m1, m0)
    w.truth.add(obl=ie, m=np.int64(m - 1), elig=True, p=p, y=y, mode=mo.mode[ie])
    ii = np.flatnonzero(ep & ~mo.covering)
    w.truth.add(obl=ii, m=np.int64(m - 1), elig=False, p=np.nan, y=False, mode=np.int64(M_NONE))
    return ep


def collection_actions(w: World, m: int, ep: np.ndarray) -> None:
    """The bank's current policy: every early-delinquent obligation gets collection actions."""
    rng = w.rng
    ia = np.flatnonzero(ep)
    k_act = 1 + np.minimum(rng.poisson(1.0, len(ia)), 4)
    ia = np.repeat(ia, k_act)
    a_type = rng.choice(len(ACTION_TYPES), len(ia), p=ACTION_P)
    personal = (a_type == 0) | (a_type == 5)
    a_out = np.where(
        personal,
        rng.choice(5, len(ia), p=[0.35, 0.25, 0.3, 0.05, 0.05]),
        rng.choice(5, len(ia), p=[0.75, 0.0, 0.2, 0.05, 0.0]),
    )
    cost = np.round(ACTION_COST[a_type] * rng.uniform(0.9, 1.1, len(ia)), 0)
    w.acts.add(
        obl=ia, date=w.cal.cut[m - 1] + rng.integers(1, 13, len(ia)).astype("timedelta64[D]"),
        sec=rng.integers(8 * 3600, 19 * 3600, len(ia)), type=a_type, outcome=a_out,
        cost=cost,
    )  # fmt: skip


def stop_mandates(w: World, mo: Month) -> None:
    """Mandates stopping this month, never inside a labeled horizon (that would be unobservable)."""
    rng, no, m = w.rng, w.o.no, mo.m
    cand = mo.active & mo.covering & (mo.mode == M_NONE)
    hz = 0.005 + 0.02 * (w.dpd_prev > 60) + 0.004 * (w.o.ho < -1.0)
    mo.stop = cand & (rng.random(no) < hz)
    mo.end_day = np.where(mo.stop, rng.integers(3, 29, no), 99)
    ist = np.flatnonzero(mo.stop)
    w.md.end(
        w.md.cur_mand[ist],
        w.cal.month_start[m] + (mo.end_day[ist] - 1).astype("timedelta64[D]"),
        np.where(rng.random(len(ist)) < 0.35, 1, 2),
    )
    mo.debit_ok = mo.active & mo.covering


def before_due(w: World, mo: Month) -> None:
    """Step 1: before the due date (retries of past-due amounts, early other-channel payments)."""
    rng, no, t, mode, ar_prev = w.rng, w.o.no, w.o.due_day, mo.mode, w.ar_prev
    mo.pday = rng.integers(FIRST_PAY_DAY, mo.last_day + 1, no)
    rday = np.where(t >= 5, rng.integers(FIRST_PAY_DAY, np.maximum(t, 4)), 0)
    early_fail = (rng.random(no) < 0.3) & (t >= 5) & (mode != M_NONE) & (mode != M_RETRY_CURE)
    early_fail &= mode != M_OTHER_CHANNEL
    i = np.flatnonzero(mode == M_RETRY_CURE)
    record_attempt(
        w, mo, i, rday[i], ar_prev[i], np.full(len(i), SUCCESS), ar_prev[i], np.full(len(i), -1)
    )
    i = np.flatnonzero(early_fail)
    record_attempt(
        w, mo, i, rday[i], ar_prev[i], np.full(len(i), REJECTED), np.zeros(len(i)),
        np.full(len(i), R_FUNDS),
    )  # fmt: skip
    mo.oc_before = (mode == M_OTHER_CHANNEL) & (mo.pday < t)
    i = np.flatnonzero(mo.oc_before)
    record_payment(w, mo, i, mo.pday[i], ar_prev[i])


def due_date_attempts(w: World, mo: Month) -> None:
    """Step 2: the due-date attempt."""
    rng, t, mode, ar_prev, owed, paid_m = w.rng, w.o.due_day, mo.mode, w.ar_prev, mo.owed, mo.paid_m
    due_try = mo.debit_ok & (t < mo.end_day) & (owed - paid_m > 0.5)
    mo.funds_based = due_try & ((mode == M_NONE) | (mode == M_RETRY_CURE) | mo.oc_before)
    i = np.flatnonzero(mo.funds_based)
    res, deb, reason = funds_attempt(w, i, mo.m, t[i], owed[i] - paid_m[i])
    record_attempt(w, mo, i, t[i], owed[i] - paid_m[i], res, deb, reason)
    i = np.flatnonzero(mode == M_DUE_CURE)
    part = w.md.cur_partial[i] & (mo.A[i] > 0) & (rng.random(len(i)) < 0.3)
    deb = np.where(part, ar_prev[i] + np.floor(rng.random(len(i)) * mo.A[i]), owed[i])
    record_attempt(
        w, mo, i, t[i], owed[i], np.where(part, PARTIAL, SUCCESS), deb, np.full(len(i), -1)
    )
    i = np.flatnonzero(mode == M_PARTIAL_DEBIT)
    frac = np.maximum(np.floor(ar_prev[i] * rng.uniform(0.15, 0.85, len(i))), 1.0)
    record_attempt(w, mo, i, t[i], owed[i], np.full(len(i), PARTIAL), frac, np.full(len(i), -1))
    forced_rej = ((mode == M_OTHER_CHANNEL) & ~mo.oc_before) | (mode == M_PARTIAL_OTHER)
    forced_rej |= mode == M_ROLL
    i = np.flatnonzero(forced_rej)
    reason = np.where(~w.md.cur_own[i] & (rng.random(len(i)) < 0.25), R_TECH, R_FUNDS)
    record_attempt(w, mo, i, t[i], owed[i], np.full(len(i), REJECTED), np.zeros(len(i)), reason)


def retries(w: World, mo: Month) -> None:
    """Step 3: retries after the due date."""
    t, mode, owed, paid_m = w.o.due_day, mo.mode, mo.owed, mo.paid_m
    retry_pool = (mo.funds_based | (mode == M_DUE_CURE)) & (owed - paid_m > 0.5)
    for k, gap in enumerate((5, 10)):
        day = t + gap
        ok_day = (day <= mo.last_day) & (day < mo.end_day)
        i = np.flatnonzero(retry_pool & ok_day & (owed - paid_m > 0.5))
        res, deb, reason = funds_attempt(w, i, mo.m, day[i], owed[i] - paid_m[i])
        record_attempt(w, mo, i, day[i], owed[i] - paid_m[i], res, deb, reason)
        if k == 0:
            i = np.flatnonzero((mode == M_ROLL) & ok_day & mo.debit_ok)
            record_attempt(
                w, mo, i, day[i], owed[i], np.full(len(i), REJECTED), np.zeros(len(i)),
                np.full(len(i), R_FUNDS),
            )  # fmt: skip


def other_channels(w: World, mo: Month) -> None:
    """Step 4: payments through other channels."""
    rng, no, t, mode, ar_prev, o = w.rng, w.o.no, w.o.due_day, mo.mode, w.ar_prev, w.o
    i = np.flatnonzero((mode == M_OTHER_CHANNEL) & ~mo.oc_before)
    d = np.maximum(mo.pday[i], t[i])
    amt = np.where(rng.random(len(i)) < 0.7, mo.owed[i], ar_prev[i])
    record_payment(w, mo, i, d, amt)
    i = np.flatnonzero(mode == M_PARTIAL_OTHER)
    frac = np.maximum(np.floor(ar_prev[i] * rng.uniform(0.15, 0.85, len(i))), 1.0)
    record_payment(w, mo, i, mo.pday[i], frac)
    rem = mo.owed - mo.paid_m
    normal = mo.active & (mode == M_NONE) & (rem > 0.5)
    current = ar_prev < 0.5
    debit_ok = mo.debit_ok
    q_full = np.where(
        current,
        np.where(debit_ok, sigmoid(0.2 + 1.0 * o.ho), sigmoid(2.8 + 1.0 * o.ho)),
        sigmoid(-0.3 + 0.8 * o.ho - 0.01 * w.dpd_prev),
    )
    uu = rng.random(no)
    full = normal & (uu < q_full)
    partial = normal & ~full & ~current & (uu < q_full + 0.2)
    lo = np.where(
        debit_ok,
        np.minimum(np.maximum(mo.last_day_evt, t) + 1, mo.last_day),
        np.maximum(t - 4, 3),
    )
    lo = np.where(current & ~debit_ok, lo, np.maximum(lo, t))
    hi = np.where(debit_ok, mo.last_day, np.minimum(t + 3, mo.last_day))
    day = lo + np.floor(rng.random(no) * (hi - lo + 1)).astype(np.int64)
    i = np.flatnonzero(full)
    record_payment(w, mo, i, day[i], rem[i])
    i = np.flatnonzero(partial)
    amt = np.maximum(np.floor(rem[i] * rng.uniform(0.2, 0.7, len(i))), 1.0)
    record_payment(w, mo, i, day[i], amt)


def month_end_cut(w: World, mo: Month) -> np.ndarray:
    """The cut at month end: FIFO allocation of payments to installments; returns `gone`."""
    o, cal, m, no = w.o, w.cal, mo.m, w.o.no
    w.paid_cum += mo.paid_m
    cum = np.cumsum(w.inst_amt[:, : m + 1], axis=1)
    ar = cum[:, -1] - w.paid_cum
    unpaid = cum > w.paid_cum[:, None] + 0.5
    k_old = unpaid.argmax(axis=1)
    has_ar = ar > 0.5
    dpd = np.where(has_ar, (cal.cut[m] - o.due_mat[np.arange(no), k_old]).astype(np.int64), 0)
    ar = np.where(has_ar, ar, 0.0)
    closing = mo.active & ~o.revolving & (m >= o.last_inst) & ~has_ar
    close_day = np.where(mo.last_day_evt > 0, mo.last_day_evt, o.due_day)
    w.closed[closing] = cal.month_start[m] + (close_day[closing] - 1).astype("timedelta64[D]")
    w.status[closing] = 1
    w_off = mo.active & ~closing & (dpd > WRITE_OFF_DPD) & (m < cal.n - 1)
    w.closed[w_off] = cal.cut[m] + 1
    w.status[w_off] = 2
    cut_rows = mo.active & ~closing
    remaining_n = np.maximum(o.last_inst - m, 0)
    pv = np.where(
        o.revolving,
        o.amount * o.util,
        o.inst * (1.0 - (1.0 + o.r_m) ** -remaining_n) / np.maximum(o.r_m, 1e-9),
    )
    ic = np.flatnonzero(cut_rows)
    w.cuts.add(obl=ic, m=np.int64(m), dpd=dpd[ic], apd=ar[ic], bal=np.round(pv[ic], -2) + ar[ic])
    w.early[:, m] = cut_rows & (dpd >= 1) & (dpd <= 30)
    gone = closing | w_off
    # A mandate stops the day after its obligation is paid off or written off.
    md = w.md
    ig = np.flatnonzero(gone & (md.cur_mand >= 0) & ~mo.stop & (w.closed + 1 <= cal.cut[-1]))
    md.end(md.cur_mand[ig], w.closed[ig] + 1, np.full(len(ig), 2))
    w.alive &= ~gone
    w.had_cut_prev = cut_rows
    w.ar_prev, w.dpd_prev = ar, dpd
    return gone


def mandate_changes(w: World, mo: Month, gone: np.ndarray) -> None:
    """Mandate changes take effect after the month."""
    rng, md, o, m = w.rng, w.md, w.o, mo.m
    md.cur_mand[mo.stop] = -1
    md.had_mand |= mo.stop
    md.cur_mand[gone] = -1
    cand_new = w.alive & (o.oj <= m) & (md.cur_mand < 0) & ~mo.stop
    start_new = cand_new & (rng.random(o.no) < np.where(md.had_mand, 0.12, 0.008))
    isn = np.flatnonzero(start_new)
    if len(isn):
        start = w.cal.month_start[m] + rng.integers(0, 28, len(isn)).astype("timedelta64[D]")
        md.attach(rng, w.c.own_account[o.ocl[isn]], isn, start)


def run_month(w: World, m: int) -> None:
    o, cal = w.o, w.cal
    active = w.alive & (o.oj <= m)
    has_inst = active & (o.first_inst <= m) & (m <= o.last_inst)
    A = np.where(has_inst, o.inst, 0.0)
    w.inst_amt[:, m] = A
    covering = (w.md.cur_mand >= 0) & (w.md.cur_s < m)
    mo = Month(
        m, min(LAST_PAY_DAY, int(cal.length[m])), active, A, covering, np.zeros(o.no, np.int64)
    )
    if m >= 1:
        ep = draw_outcomes(w, mo)
        collection_actions(w, m, ep)
    stop_mandates(w, mo)
    mo.owed = w.ar_prev + A
    before_due(w, mo)
    due_date_attempts(w, mo)
    retries(w, mo)
    other_channels(w, mo)
    gone = month_end_cut(w, mo)
    mandate_changes(w, mo, gone)


def last_cut_truth(w: World) -> None:
    """p_true at the last cut: the scoring population (no outcome drawn)."""
    M = w.cal.n
    ep = w.had_cut_prev & (w.dpd_prev >= 1) & (w.dpd_prev <= 30)
    covering = (w.md.cur_mand >= 0) & (w.md.cur_s < M)
    ie = np.flatnonzero(ep & covering)
    w.truth.add(
        obl=ie, m=np.int64(M - 1), elig=True, p=p_true(w, ie, M - 1), y=False,
        mode=np.int64(M_NONE),
    )  # fmt: skip
    ii = np.flatnonzero(ep & ~covering)
    w.truth.add(obl=ii, m=np.int64(M - 1), elig=False, p=np.nan, y=False, mode=np.int64(M_NONE))


def run_months(w: World) -> None:
    for m in range(w.cal.n):
        run_month(w, m)
    last_cut_truth(w)
