"""The month loop: for each window month, the amount due, mandate stops, the outcomes of the rows
early-delinquent at the previous cut, the month's money (`debits.py`), the month-end cut and the
mandates that start or stop after it.

Every early-delinquent row at a cut draws its type and outcome mode (`outcomes.py`), and the
month's debits and payments are generated so that the contract's outcomes computed from the
files (self_cure_debit, cured through any channel, roll to 31+, amount recovered) reproduce the
drawn ones exactly.
"""

from __future__ import annotations

import numpy as np

from cobranza.simulate import debits
from cobranza.simulate.common import WRITE_OFF_DPD
from cobranza.simulate.config import FIRST_PAY_DAY, LAST_PAY_DAY
from cobranza.simulate.outcomes import draw_outcomes, last_cut_truth, record_truth
from cobranza.simulate.state import Month, World

LATE_FEE_SHARE, LATE_FEE_MIN = 0.04, 5_000.0  # of the installment, pesos
DEFAULT_INTEREST = 1.5  # default interest: this times the contractual monthly rate, on arrears


def fees(w: World, m: int, has_inst: np.ndarray) -> np.ndarray:
    """Late fee and default interest on the previous cut's arrears, added to this installment."""
    if not w.cfg.has("fees"):
        return np.zeros(w.o.no)
    world = w.cfg.world
    fee_f, int_f = (world.fee_factor, world.interest_factor) if w.in_scenario(m) else (1.0, 1.0)
    late = has_inst & (w.ar_prev > 0.5)
    fee = np.maximum(np.round(LATE_FEE_SHARE * w.o.inst_path[:, m], -2), LATE_FEE_MIN) * fee_f
    interest = np.round(w.ar_prev * w.o.r_m * DEFAULT_INTEREST * int_f, -2)
    return np.where(late, fee + interest, 0.0)


def stop_hazard(w: World, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Monthly hazard that the current mandate stops, and the part that is a bank migration."""
    world = w.cfg.world
    base = 0.005 + 0.02 * (w.dpd_prev > 60) + 0.004 * (w.o.ho < -1.0)
    inside = w.in_scenario(m)
    factor = world.stop_hazard_factor if inside else 1.0
    migration = world.migration_hazard * w.md.cur_own if inside else np.zeros(w.o.no)
    return base * factor + migration, migration


def early_now(w: World) -> np.ndarray:
    return w.had_cut_prev & (w.dpd_prev >= 1) & (w.dpd_prev <= 30)


def stop_mandates(w: World, mo: Month) -> None:
    """Mandates stopping this month (an early-delinquent row's: on or before its due date)."""
    rng, no, m = w.rng, w.o.no, mo.m
    hz, migration = stop_hazard(w, m)
    early = early_now(w)
    cand = mo.active & mo.covering
    if not w.cfg.has("mandate_stops"):
        cand &= ~early
    mo.hazard = np.where(cand, hz, 0.0)
    u = rng.random(no)
    mo.stop = cand & (u < hz)
    mo.migrate = mo.stop & (u < migration)
    day = np.where(early, rng.integers(FIRST_PAY_DAY, mo.t + 1), rng.integers(3, 29, no))
    mo.end_day = np.where(mo.stop, day, 99)
    mo.stop_status = np.where(mo.stop, np.where(mo.migrate | (rng.random(no) >= 0.35), 2, 1), 0)
    ist = np.flatnonzero(mo.stop)
    end = w.cal.month_start[m] + (mo.end_day[ist] - 1).astype("timedelta64[D]")
    # A suspension in the last month has no end date yet: the extract says SUSPENDED only.
    if m == w.cal.n - 1:
        end = np.where(mo.stop_status[ist] == 1, np.datetime64("NaT"), end)
    w.md.end(w.md.cur_mand[ist], end, mo.stop_status[ist])
    mo.debit_ok = mo.active & mo.covering


def draw_retry_day(w: World, mo: Month) -> None:
    """The business day a retry of the arrears would take before the due date."""
    raw = w.rng.integers(FIRST_PAY_DAY, np.maximum(mo.t, FIRST_PAY_DAY + 1))
    mo.rday = w.cal.next_business[raw, mo.m]
    mo.rday_ok = (mo.t >= 5) & (mo.rday < mo.t)


def month_end_cut(w: World, mo: Month) -> np.ndarray:
    """The cut at month end: FIFO allocation of payments to installments; returns `gone`."""
    o, cal, m, no = w.o, w.cal, mo.m, w.o.no
    w.paid_cum += mo.paid_m
    cum = np.cumsum(w.inst_amt[:, : m + 1], axis=1)
    ar = cum[:, -1] - w.paid_cum
    unpaid = cum > w.paid_cum[:, None] + 0.5
    k_old = unpaid.argmax(axis=1)
    has_ar = ar > 0.5
    due_dates = cal.month_start[k_old] + (w.due_day_m[np.arange(no), k_old] - 1).astype(
        "timedelta64[D]"
    )
    dpd = np.where(has_ar, (cal.cut[m] - due_dates).astype(np.int64), 0)
    ar = np.where(has_ar, ar, 0.0)
    closing = mo.active & ~o.revolving & (m >= o.last_inst) & ~has_ar
    close_day = np.where(mo.last_day_evt > 0, mo.last_day_evt, mo.t)
    w.closed[closing] = cal.month_start[m] + (close_day[closing] - 1).astype("timedelta64[D]")
    w.status[closing] = 1
    w_off = mo.active & ~closing & (dpd > WRITE_OFF_DPD) & (m < cal.n - 1)
    w.closed[w_off] = cal.cut[m] + 1
    w.status[w_off] = 2
    cut_rows = mo.active & ~closing
    remaining_n = np.maximum(o.last_inst - m, 0)
    pv = np.where(
        o.revolving,
        o.amount * o.util_path[:, m],
        o.inst * (1.0 - (1.0 + o.r_m) ** -remaining_n) / np.maximum(o.r_m, 1e-9),
    )
    bal = np.round(pv, -2) + ar
    ic = np.flatnonzero(cut_rows)
    w.cuts.add(obl=ic, m=np.int64(m), dpd=dpd[ic], apd=ar[ic], bal=bal[ic])
    w.early[:, m] = cut_rows & (dpd >= 1) & (dpd <= 30)
    gone = closing | w_off
    # A mandate stops the day after its obligation is paid off or written off.
    md = w.md
    ig = np.flatnonzero(gone & (md.cur_mand >= 0) & ~mo.stop & (w.closed + 1 <= cal.cut[-1]))
    md.end(md.cur_mand[ig], w.closed[ig] + 1, np.full(len(ig), 2))
    w.alive &= ~gone
    w.had_cut_prev = cut_rows
    w.ar_prev, w.dpd_prev, w.bal_prev = ar, dpd, bal
    return gone


def mandate_changes(w: World, mo: Month, gone: np.ndarray) -> None:
    """Mandate changes take effect after the month; a migration's new mandate is at another bank."""
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
    imig = np.flatnonzero(mo.migrate & w.alive)
    if len(imig):
        day = np.minimum(mo.end_day[imig] + rng.integers(0, 3, len(imig)), 28)
        start = w.cal.month_start[m] + (day - 1).astype("timedelta64[D]")
        md.attach(rng, np.zeros(len(imig), bool), imig, start)


def run_month(w: World, m: int) -> None:
    o, cal = w.o, w.cal
    active = w.alive & (o.oj <= m)
    has_inst = active & (o.first_inst <= m) & (m <= o.last_inst)
    A = np.where(has_inst, o.inst_path[:, m] + fees(w, m, has_inst), 0.0)
    w.inst_amt[:, m] = A
    covering = (w.md.cur_mand >= 0) & (w.md.cur_s < m)
    t = w.due_day_m[:, m]
    mo = Month(m, min(LAST_PAY_DAY, int(cal.length[m])), t, active, A, covering)
    stop_mandates(w, mo)
    mo.owed = w.ar_prev + A
    draw_retry_day(w, mo)
    drawn = draw_outcomes(w, mo) if m >= 1 else None
    debits.before_due(w, mo)
    debits.due_date_attempts(w, mo)
    debits.retries(w, mo)
    debits.other_channels(w, mo)
    gone = month_end_cut(w, mo)
    if drawn is not None:
        record_truth(w, mo, drawn)
    mandate_changes(w, mo, gone)


def run_months(w: World) -> None:
    for m in range(w.cal.n):
        run_month(w, m)
    M = w.cal.n
    covering = (w.md.cur_mand >= 0) & (w.md.cur_s < M)
    hazard, _ = stop_hazard(w, M)
    last_cut_truth(w, covering, np.where(w.alive, hazard, 0.0))
