"""What happens to each early-delinquent row over its horizon: the bank's arm, the collection
actions, the latent type and the outcome mode the month then plays out exactly (`truth.py` has the
probabilities), and the row's truth once the next cut is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cobranza.contract import ACTION_TYPES
from cobranza.simulate.assignment import ASSIGNED, arms
from cobranza.simulate.common import (
    ACTION_COST,
    ACTION_P,
    M_DUE_CURE,
    M_OTHER_CHANNEL,
    M_PARTIAL_DEBIT,
    M_PARTIAL_OTHER,
    M_PREEMPT,
    M_RETRY_CURE,
    M_RETURNED,
    M_ROLL,
    T_DISTRESS,
    T_FORGOT,
    T_WAITS,
)
from cobranza.simulate.config import FIRST_PAY_DAY
from cobranza.simulate.state import Month, World
from cobranza.simulate.truth import causal_rows

STRIKE_CUT_FROM_END = 3  # collections_strike: the cut this many months before the latest


@dataclass
class Drawn:
    """The early-delinquent rows at one cut and what was drawn for them."""

    idx: np.ndarray
    cut: int
    ar: np.ndarray  # amount past due at the cut
    eligible: np.ndarray
    p: np.ndarray  # p_true: P(self_cure_debit) under the treatment received (eligible rows)
    y: np.ndarray
    mode: np.ndarray
    arm: np.ndarray
    treated: np.ndarray
    cure_any: np.ndarray
    ctype: np.ndarray
    exposure: np.ndarray
    pw: np.ndarray
    pf: np.ndarray
    pa: np.ndarray
    pm: np.ndarray
    pq: np.ndarray
    hz: np.ndarray


def strike_cut(w: World) -> int | None:
    return w.cal.n - 1 - STRIKE_CUT_FROM_END if w.cfg.world.strike else None


def collection_actions(w: World, c: int, ia: np.ndarray) -> np.ndarray:
    """1-5 actions within 12 days after cut c for each of rows `ia`; returns the days from the
    cut to each row's first action."""
    rng = w.rng
    first = rng.integers(1, 13, len(ia))
    k_act = 1 + np.minimum(rng.poisson(1.0, len(ia)), 4)
    row = np.repeat(np.arange(len(ia)), k_act)
    lead = np.r_[True, row[1:] != row[:-1]] if len(row) else np.zeros(0, bool)
    offset = np.where(lead, first[row], rng.integers(first[row], 13))
    a_type = rng.choice(len(ACTION_TYPES), len(row), p=ACTION_P)
    personal = (a_type == 0) | (a_type == 5)
    a_out = np.where(
        personal,
        rng.choice(5, len(row), p=[0.35, 0.25, 0.3, 0.05, 0.05]),
        rng.choice(5, len(row), p=[0.75, 0.0, 0.2, 0.05, 0.0]),
    )
    cost = np.round(ACTION_COST[a_type] * rng.uniform(0.9, 1.1, len(row)), 0)
    w.acts.add(
        obl=ia[row], date=w.cal.cut[c] + offset.astype("timedelta64[D]"),
        sec=rng.integers(8 * 3600, 19 * 3600, len(row)), type=a_type, outcome=a_out, cost=cost,
    )  # fmt: skip
    return first


def _modes(w: World, mo: Month, ie, y, pre, pays, debit_possible, u_path, u_non) -> np.ndarray:
    """The mode that plays each row's outcome out (see docs/simulator.md)."""
    retry = mo.rday_ok[ie] & (u_path < 0.4)
    partial_debit = debit_possible & w.md.cur_partial[ie]
    returned = debit_possible & w.cfg.has("reversals") & (u_non >= 0.4) & (u_non < 0.48)
    non_cure = np.where(
        u_non < 0.4,
        np.where(partial_debit, M_PARTIAL_DEBIT, M_PARTIAL_OTHER),
        np.where(returned, M_RETURNED, M_ROLL),
    )
    return np.select(
        [y, pre, pays],
        [np.where(retry, M_RETRY_CURE, M_DUE_CURE), M_PREEMPT, M_OTHER_CHANNEL],
        non_cure,
    )


def draw_outcomes(w: World, mo: Month) -> Drawn:
    """Arm, actions, type and mode of every early-delinquent row at the previous cut."""
    rng, cfg, m = w.rng, w.cfg, mo.m
    c = m - 1
    ie = np.flatnonzero(w.had_cut_prev & (w.dpd_prev >= 1) & (w.dpd_prev <= 30))
    k = len(ie)
    cov = mo.covering[ie]
    hz = np.where(cov, mo.hazard[ie], 0.0)
    cr = causal_rows(w, ie, c, cov, hz)
    stopped = mo.stop[ie]
    arm = arms(cfg, w.cal, c, w.obl_base + ie, w.dpd_prev[ie], cov)
    treated = (arm == ASSIGNED) | (rng.random(k) < cfg.contamination)
    if c == strike_cut(w):
        treated[:] = False
    uw, uf, ue, uo, u_path, u_non = rng.random((6, k))
    waits = cov & ~stopped & (uw < cr.p_waits_raw)
    forgot = ~waits & (uf < cr.p_forgot)
    pre = waits & treated & (ue < cr.p_preempt)
    pays = forgot & (uo < np.where(treated, cr.p_pays_managed, cr.p_pays_alone))
    y = waits & ~pre
    debit_possible = cov & ~stopped
    mode = _modes(w, mo, ie, y, pre, pays, debit_possible, u_path, u_non)
    mo.mode[ie] = mode
    # Payment day of a payer: prompted by the first action when managed, any day otherwise.
    first = np.zeros(k, np.int64)
    first[treated] = collection_actions(w, c, ie[treated])
    prompted = np.clip(first + rng.integers(1, 5, k), FIRST_PAY_DAY, mo.last_day)
    alone = rng.integers(FIRST_PAY_DAY, mo.last_day + 1, k)
    mo.pay_day[ie] = np.where(treated & (pays | pre), prompted, alone)
    pw = cr.p_waits
    return Drawn(
        idx=ie, cut=c, ar=w.ar_prev[ie].copy(), eligible=cov,
        p=np.where(cov, pw * (1 - cr.p_preempt * treated), np.nan), y=y, mode=mode, arm=arm,
        treated=treated, cure_any=y | pre | pays,
        ctype=np.select([waits, forgot], [T_WAITS, T_FORGOT], T_DISTRESS),
        exposure=w.bal_prev[ie].copy(), pw=pw, pf=cr.p_forgot, pa=cr.p_pays_alone,
        pm=cr.p_pays_managed, pq=cr.p_preempt, hz=hz,
    )  # fmt: skip


def record_truth(w: World, mo: Month, d: Drawn) -> None:
    """The rows' truth once the month is played: the files must show exactly what was drawn."""
    paid = mo.paid_m[d.idx]
    covered = paid >= d.ar - 0.5
    rolled = w.dpd_prev[d.idx] >= 31
    if not (np.array_equal(covered, d.cure_any) and np.array_equal(rolled, ~d.cure_any)):
        raise RuntimeError("simulate: a drawn outcome was not played out exactly (a defect)")
    w.truth.add(
        obl=d.idx, m=np.int64(d.cut), elig=d.eligible, p=d.p, y=d.y, mode=d.mode, arm=d.arm,
        treated=d.treated, cure_any=d.cure_any, roll=~d.cure_any,
        recovered=np.minimum(paid, d.ar), ctype=d.ctype, exposure=d.exposure, pw=d.pw,
        pf=d.pf, pa=d.pa, pm=d.pm, pq=d.pq, hz=d.hz,
    )  # fmt: skip


def last_cut_truth(w: World, covering: np.ndarray, hazard: np.ndarray) -> None:
    """The latest cut: the scoring population, both potential outcomes, no arm, no outcome."""
    c = w.cal.n - 1
    ie = np.flatnonzero(w.had_cut_prev & (w.dpd_prev >= 1) & (w.dpd_prev <= 30))
    cov = covering[ie]
    hz = np.where(cov, hazard[ie], 0.0)
    cr = causal_rows(w, ie, c, cov, hz)
    k = len(ie)
    w.truth.add(
        obl=ie, m=np.int64(c), elig=cov, p=np.where(cov, cr.p_waits, np.nan),
        y=np.zeros(k, bool), mode=np.int64(0), arm=np.int64(-1), treated=np.zeros(k, bool),
        cure_any=np.zeros(k, bool), roll=np.zeros(k, bool), recovered=np.zeros(k),
        ctype=np.int64(0), exposure=w.bal_prev[ie], pw=cr.p_waits, pf=cr.p_forgot,
        pa=cr.p_pays_alone, pm=cr.p_pays_managed, pq=cr.p_preempt, hz=hz,
    )  # fmt: skip
