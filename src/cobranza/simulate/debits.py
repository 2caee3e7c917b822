"""A month's money movements: debit attempts (with the mandate's state and the account's funds),
debit returns, payments through other channels, in the order they happen in the month.

Rows with a drawn outcome mode (early-delinquent at the previous cut) follow their mode exactly;
the others (mode M_NONE) follow the money available. Every RECURRING_DEBIT payment is the
`amount_debited` of a SUCCESS/PARTIAL attempt, same obligation and second. A returned debit keeps
its payment with a `reversed_ts` later in the same month; it counts neither at the cut nor
toward a cure (`paid_m` leaves it out).
"""

from __future__ import annotations

import numpy as np

from cobranza.contract import CHANNELS
from cobranza.simulate.common import (
    DEBIT,
    M_DUE_CURE,
    M_NONE,
    M_OTHER_CHANNEL,
    M_PARTIAL_DEBIT,
    M_PARTIAL_OTHER,
    M_PREEMPT,
    M_RETRY_CURE,
    M_RETURNED,
    M_ROLL,
    OTHER_CHANNEL_P,
    PARTIAL,
    R_BLOCKED,
    R_CLOSED,
    R_FUNDS,
    R_INACTIVE,
    R_TECH,
    REJECTED,
    SUCCESS,
    sigmoid,
)
from cobranza.simulate.state import Month, World

RETURN_P = 0.01  # share of funds-driven debits later returned (with `reversals`)
TRANSFER_P = np.array([0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0])  # DIGITAL or PSE
DIGITAL_CHANNELS = (2, 3)


def _results(f, req, partial_ok, rejected):
    ok = f >= req
    some = np.floor(np.minimum(f, req - 1))
    part = ~ok & partial_ok & (f >= 0.05 * req) & (some >= 1)
    res = np.where(ok, SUCCESS, np.where(part, PARTIAL, REJECTED))
    deb = np.where(ok, req, np.where(part, some, 0.0))
    return np.where(rejected, REJECTED, res), np.where(rejected, 0.0, deb)


def share_funds(account, day, sec, f, req, partial_ok, rejected):
    """Attempts on one account the same day take its funds in turn (earliest second first).

    `f` is each attempt's draw of the money available; a group (account, day) uses its first
    attempt's draw, and each later attempt sees what the earlier ones left. Returns (res, deb).
    """
    k = len(account)
    key = account * 64 + day
    order = np.lexsort((sec, key))
    ks = key[order]
    first = np.r_[True, ks[1:] != ks[:-1]] if k else np.zeros(0, bool)
    gid = np.cumsum(first) - 1
    start = np.flatnonzero(first)
    rank = np.arange(k) - start[gid]
    remaining = f[order][first].copy()  # one draw of the account's funds per group
    res = np.empty(k, np.int64)
    deb = np.empty(k)
    for r in range(int(rank.max()) + 1 if k else 0):
        sel = rank == r
        pos = order[sel]
        g = gid[sel]
        res_r, deb_r = _results(remaining[g], req[pos], partial_ok[pos], rejected[pos])
        res[pos], deb[pos] = res_r, deb_r
        remaining[g] -= deb_r
    return res, deb


def funds_attempt(w: World, mo: Month, idx, day, req):
    """Debit attempts driven by the funds available: (res, deb, reason, sec)."""
    rng, k = w.rng, len(idx)
    sec = rng.integers(4 * 3600, 7 * 3600, k)
    f = w.a.funds(rng, w.o.ocl[idx], mo.m, day)
    tech = rng.random(k) < np.where(w.md.cur_own[idx], 0.012, 0.06)
    blocked = rng.random(k) < 0.003
    partial_ok = w.md.cur_partial[idx]
    if w.cfg.has("shared_funds"):
        account = w.o.ocl[idx] * 2 + w.md.cur_own[idx]  # the client's own account, or the other
        res, deb = share_funds(account, day, sec, f, req, partial_ok, tech | blocked)
    else:
        res, deb = _results(f, req, partial_ok, tech | blocked)
    reason = np.where(res == REJECTED, R_FUNDS, -1)
    blocked_reason = np.where(rng.random(k) < 0.3, R_CLOSED, R_BLOCKED)
    reason = np.where(blocked, blocked_reason, np.where(tech, R_TECH, reason))
    return res, deb, reason, sec


def record_attempt(w: World, mo: Month, idx, day, req, res, deb, reason, sec=None, returned=None):
    """Debit attempts and, when money was taken, their RECURRING_DEBIT payments (same second).

    On or after the day its mandate stops, an attempt is REJECTED with MANDATE_INACTIVE when the
    mandate was suspended, and does not happen when it was cancelled.
    """
    if len(idx) == 0:
        return
    rng, m = w.rng, mo.m
    live = day < mo.end_day[idx]
    keep = live | (mo.stop_status[idx] == 1)
    if not keep.all():
        idx, day, req, res, deb, reason, live = (
            x[keep] for x in (idx, day, req, res, deb, reason, live)
        )
        sec = None if sec is None else sec[keep]
        returned = None if returned is None else returned[keep]
    res = np.where(live, res, REJECTED)
    deb = np.where(live, deb, 0.0)
    reason = np.where(live, reason, R_INACTIVE)
    if sec is None:
        sec = rng.integers(4 * 3600, 7 * 3600, len(idx))
    w.att.add(
        obl=idx, mand=w.md.cur_mand[idx], m=np.int64(m), day=day, sec=sec,
        req=req, deb=deb, res=res, reason=reason,
    )  # fmt: skip
    got = deb > 0
    back = got & (returned if returned is not None else False)
    rev_day = np.where(back, np.minimum(day + rng.integers(1, 5, len(idx)), mo.last_day), 0)
    w.pay.add(
        obl=idx[got], m=np.int64(m), day=day[got], sec=sec[got], amount=deb[got],
        channel=np.int64(DEBIT), rev_day=rev_day[got],
        rev_sec=rng.integers(22 * 3600 + 1800, 23 * 3600 + 1800, int(got.sum())),
    )  # fmt: skip
    np.add.at(mo.paid_m, idx, np.where(back, 0.0, deb))
    np.add.at(w.att_cnt[:, m], idx, 1.0)
    np.add.at(w.succ_cnt[:, m], idx, (res == SUCCESS).astype(float))
    np.maximum.at(mo.last_day_evt, idx, day)


def attempt_with_funds(w: World, mo: Month, idx, day, req) -> None:
    """Funds-driven attempts; a stopped mandate's attempt never reaches the account."""
    live = day < mo.end_day[idx]
    res, deb, reason, sec = funds_attempt(w, mo, idx[live], day[live], req[live])
    returned = None
    if w.cfg.has("reversals"):
        returned = w.rng.random(len(res)) < RETURN_P
    record_attempt(w, mo, idx[live], day[live], req[live], res, deb, reason, sec, returned)
    dead = ~live
    n = int(dead.sum())
    record_attempt(
        w, mo, idx[dead], day[dead], req[dead], np.full(n, REJECTED), np.zeros(n),
        np.full(n, R_INACTIVE),
    )  # fmt: skip


def forced_reject(w: World, mo: Month, idx, day, req, reason) -> None:
    record_attempt(w, mo, idx, day, req, np.full(len(idx), REJECTED), np.zeros(len(idx)), reason)


def record_payment(w: World, mo: Month, idx, day, amount, channel_p=OTHER_CHANNEL_P) -> None:
    """Payments through a channel other than the debit."""
    if len(idx) == 0:
        return
    rng, k = w.rng, len(idx)
    ch = rng.choice(len(CHANNELS), k, p=channel_p)
    w.pay.add(
        obl=idx, m=np.int64(mo.m), day=day, sec=rng.integers(7 * 3600, 22 * 3600, k),
        amount=amount, channel=ch, rev_day=np.int64(0), rev_sec=np.int64(0),
    )  # fmt: skip
    np.add.at(mo.paid_m, idx, amount)
    np.add.at(w.digital_cnt[:, mo.m], idx, np.isin(ch, DIGITAL_CHANNELS).astype(float))
    np.maximum.at(mo.last_day_evt, idx, day)


def before_due(w: World, mo: Month) -> None:
    """Step 1: before the due date (retries of past-due amounts, early other-channel payments)."""
    rng, no, t, mode, ar_prev = w.rng, w.o.no, mo.t, mo.mode, w.ar_prev
    is_oc = (mode == M_OTHER_CHANNEL) | (mode == M_PREEMPT)
    early_fail = (rng.random(no) < 0.3) & mo.rday_ok & (mode != M_NONE) & mo.debit_ok
    early_fail &= (mode != M_RETRY_CURE) & ~is_oc
    i = np.flatnonzero(mode == M_RETRY_CURE)
    record_attempt(
        w, mo, i, mo.rday[i], ar_prev[i], np.full(len(i), SUCCESS), ar_prev[i],
        np.full(len(i), -1),
    )  # fmt: skip
    i = np.flatnonzero(early_fail)
    forced_reject(w, mo, i, mo.rday[i], ar_prev[i], np.full(len(i), R_FUNDS))
    mo.oc_before = is_oc & (mo.pay_day < t)
    i = np.flatnonzero(mo.oc_before & (mode == M_OTHER_CHANNEL))
    record_payment(w, mo, i, mo.pay_day[i], ar_prev[i])
    i = np.flatnonzero(mo.oc_before & (mode == M_PREEMPT))
    record_payment(w, mo, i, mo.pay_day[i], ar_prev[i], TRANSFER_P)


def due_date_attempts(w: World, mo: Month) -> None:
    """Step 2: the due-date attempt."""
    rng, t, mode, ar_prev, owed, paid_m = w.rng, mo.t, mo.mode, w.ar_prev, mo.owed, mo.paid_m
    due_try = mo.debit_ok & (owed - paid_m > 0.5)
    mo.funds_based = due_try & ((mode == M_NONE) | (mode == M_RETRY_CURE) | mo.oc_before)
    i = np.flatnonzero(mo.funds_based)
    attempt_with_funds(w, mo, i, t[i], owed[i] - paid_m[i])
    i = np.flatnonzero(mode == M_DUE_CURE)
    part = w.md.cur_partial[i] & (mo.A[i] > 0) & (rng.random(len(i)) < 0.3)
    deb = np.where(part, ar_prev[i] + np.floor(rng.random(len(i)) * mo.A[i]), owed[i])
    record_attempt(
        w, mo, i, t[i], owed[i], np.where(part, PARTIAL, SUCCESS), deb, np.full(len(i), -1)
    )
    i = np.flatnonzero(mode == M_PARTIAL_DEBIT)
    frac = np.maximum(np.floor(ar_prev[i] * rng.uniform(0.15, 0.85, len(i))), 1.0)
    record_attempt(w, mo, i, t[i], owed[i], np.full(len(i), PARTIAL), frac, np.full(len(i), -1))
    i = np.flatnonzero(mode == M_RETURNED)
    record_attempt(
        w, mo, i, t[i], owed[i], np.full(len(i), SUCCESS), owed[i], np.full(len(i), -1),
        returned=np.ones(len(i), bool),
    )  # fmt: skip
    is_oc = (mode == M_OTHER_CHANNEL) | (mode == M_PREEMPT)
    forced = (is_oc & ~mo.oc_before) | (mode == M_PARTIAL_OTHER) | (mode == M_ROLL)
    i = np.flatnonzero(forced & mo.debit_ok)
    reason = np.where(~w.md.cur_own[i] & (rng.random(len(i)) < 0.25), R_TECH, R_FUNDS)
    forced_reject(w, mo, i, t[i], owed[i], reason)


def retries(w: World, mo: Month) -> None:
    """Step 3: retries after the due date, on business days of the same month."""
    mode, owed, paid_m = mo.mode, mo.owed, mo.paid_m
    retry_pool = (mo.funds_based | (mode == M_DUE_CURE)) & (owed - paid_m > 0.5)
    for k, gap in enumerate((5, 10)):
        day = w.cal.next_business[np.minimum(mo.t + gap, 40), mo.m]
        ok_day = day <= mo.last_day
        i = np.flatnonzero(retry_pool & ok_day & (owed - paid_m > 0.5))
        attempt_with_funds(w, mo, i, day[i], owed[i] - paid_m[i])
        if k == 0:
            i = np.flatnonzero((mode == M_ROLL) & ok_day & mo.debit_ok)
            forced_reject(w, mo, i, day[i], owed[i], np.full(len(i), R_FUNDS))


def other_channels(w: World, mo: Month) -> None:
    """Step 4: payments through other channels."""
    rng, no, t, mode, ar_prev, o = w.rng, w.o.no, mo.t, mo.mode, w.ar_prev, w.o
    is_oc = (mode == M_OTHER_CHANNEL) | (mode == M_PREEMPT)
    i = np.flatnonzero(is_oc & ~mo.oc_before)
    d = np.maximum(mo.pay_day[i], t[i])
    amt = np.where(rng.random(len(i)) < 0.7, mo.owed[i], ar_prev[i])
    transfer = mode[i] == M_PREEMPT
    record_payment(w, mo, i[~transfer], d[~transfer], amt[~transfer])
    record_payment(w, mo, i[transfer], d[transfer], amt[transfer], TRANSFER_P)
    i = np.flatnonzero(mode == M_PARTIAL_OTHER)
    frac = np.maximum(np.floor(ar_prev[i] * rng.uniform(0.15, 0.85, len(i))), 1.0)
    record_payment(w, mo, i, mo.pay_day[i], frac)
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
