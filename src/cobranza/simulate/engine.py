"""The generative story of one chunk of clients, month by month, vectorized with NumPy.

Clients have income, employment, a latent financial health `h` and a payroll calendar; their
deposit accounts' balances follow that story. Obligations of the five products fall due monthly;
recurring-debit mandates (OWN bank, or OTHER bank through ACH) try to debit them on the due date
and retry after. At each month-end cut an obligation 1-30 days past due with a mandate covering
the cut draws its outcome over the next 30 days from an explicit `p_true` (mostly a function of
what the extract shows up to the cut, plus a modest latent term), and the month's debits and
payments are then generated so that the contract's target computed from the files reproduces
the drawn outcome exactly. Payments only happen on days 3..30 of a month and due days are
3..27, so a cut's 30-day horizon never sees the next month's payments and an installment is
never due on a cut date.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cobranza.contract import (
    ACTION_OUTCOMES,
    ACTION_TYPES,
    ATTEMPT_RESULTS,
    CHANNELS,
    EMPLOYMENT_TYPES,
    PRODUCTS,
    REJECT_REASONS,
    SEGMENTS,
)
from cobranza.simulate.config import DRIFT_MONTHS, Calendar, SimulationConfig
from cobranza.simulate.people import personal_columns

HORIZON_DAYS = 30
WRITE_OFF_DPD = 150
FIRST_PAY_DAY, LAST_PAY_DAY = 3, 30

# Index constants into the contract's value tuples.
MASS, AFFLUENT, PREMIUM, SME = range(4)
SALARIED, INDEPENDENT, PENSIONER, OTHER_EMP = range(4)
LOAN, CARD, VEHICLE, MORTGAGE, MICRO = range(5)
SUCCESS, PARTIAL, REJECTED = range(3)
R_FUNDS, R_BLOCKED, R_CLOSED, R_INACTIVE, R_TECH = range(
    5
)  # R_INACTIVE: never (no attempt outside a mandate)
DEBIT = 0  # CHANNELS[0] == RECURRING_DEBIT
# Payroll calendars: 0 biweekly on 15 and 30, 1 monthly at month end, 2 pension on the 20th, 3 irregular.
PAY_BIWEEKLY, PAY_MONTHLY, PAY_PENSION, PAY_IRREGULAR = range(4)
# Outcome modes of a labeled row (y=1: 1-2, y=0: 3-6).
M_NONE, M_RETRY_CURE, M_DUE_CURE, M_OTHER_CHANNEL, M_PARTIAL_DEBIT, M_PARTIAL_OTHER, M_ROLL = range(
    7
)
MODE_NAMES = (
    "",
    "debit_retry_cure",
    "debit_due_cure",
    "other_channel",
    "partial_debit",
    "partial_other",
    "roll",
)

PRODUCT_P = np.array(
    [
        [0.38, 0.38, 0.06, 0.04, 0.14],
        [0.30, 0.40, 0.14, 0.14, 0.02],
        [0.20, 0.40, 0.20, 0.20, 0.00],
        [0.25, 0.25, 0.08, 0.02, 0.40],
    ]
)
MANDATE_P = np.array([0.90, 0.80, 0.90, 0.92, 0.75])
OTHER_CHANNEL_P = np.array([0.0, 0.12, 0.26, 0.25, 0.16, 0.05, 0.06, 0.10])
ACTION_P = np.array([0.30, 0.35, 0.10, 0.15, 0.06, 0.04])
ACTION_COST = np.array([3200.0, 120.0, 40.0, 250.0, 4500.0, 38000.0])

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


def id_array(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Identifiers such as C00000123: a prefix and a zero-padded number, never personal data."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _choice_str(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), pa.array(np.asarray(idx, np.int64)))


def _dates(d: np.ndarray) -> pa.Array:
    return pa.array(d.astype("datetime64[D]"), pa.date32())


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class IdCounters:
    """Running identifier counters across chunks (chunks run in order, so ids are deterministic)."""

    client: int = 0
    obligation: int = 0
    mandate: int = 0
    payment: int = 0
    attempt: int = 0
    action: int = 0


@dataclass
class ChunkResult:
    tables: dict[str, pa.Table]
    truth: pa.Table  # cut_date, obligation_id, eligible, labeled, p_true, outcome, mode
    stats: dict = field(default_factory=dict)


class _Events:
    """Append-only columns of one kind of event, concatenated once at the end of the chunk."""

    def __init__(self, *names: str) -> None:
        self.cols: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def add(self, **values: np.ndarray) -> None:
        n = len(next(iter(values.values())))
        if n == 0:
            return
        for k, v in values.items():
            self.cols[k].append(np.broadcast_to(v, (n,)).copy())

    def get(self, name: str, dtype) -> np.ndarray:
        parts = self.cols[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def simulate_chunk(
    cfg: SimulationConfig, cal: Calendar, chunk: int, n: int, ids: IdCounters
) -> ChunkResult:
    """Generate every table of one chunk of `n` clients; advances the id counters in `ids`."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, chunk]))
    M = cal.n
    as_of = cal.cut[-1]

    # ---------------------------------------------------------------- clients
    seg = rng.choice(4, n, p=[0.64, 0.20, 0.06, 0.10])
    emp = np.where(
        seg == SME,
        rng.choice(4, n, p=[0.10, 0.80, 0.0, 0.10]),
        rng.choice(4, n, p=[0.58, 0.24, 0.12, 0.06]),
    )
    income = np.array([2.3e6, 6.5e6, 18e6, 9e6])[seg] * rng.lognormal(0.0, 0.45, n)
    income = np.where(emp == PENSIONER, income * 0.8, income)
    income = np.maximum(np.round(income, -3), 1_000_000.0)
    h = rng.normal(0.0, 1.0, n)  # latent financial health, never written
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
    if cfg.drift:
        shock = rng.random(n) < np.where(emp == INDEPENDENT, 0.55, 0.4)

    # ------------------------------------------------- deposit account, month by month
    moy = cal.month_of_year[None, :]
    bonus = np.where(
        (emp == SALARIED)[:, None] & ((moy == 6) | (moy == 12)),
        0.5,
        np.where((emp == PENSIONER)[:, None] & ((moy == 6) | (moy == 11)), 1.0, 0.0),
    )
    irregular = (pay_kind == PAY_IRREGULAR)[:, None]
    pay_noise = np.where(
        irregular,
        rng.lognormal(-0.05, 0.45, (n, M)) * (rng.random((n, M)) > 0.1),
        rng.lognormal(0.0, 0.03, (n, M)),
    )
    payroll = income[:, None] * (1.0 + bonus) * pay_noise
    in_drift = np.zeros(M, bool)
    if cfg.drift:
        in_drift[-DRIFT_MONTHS:] = True
    shocked = shock[:, None] & in_drift[None, :]
    payroll = np.where(shocked, payroll * 0.55, payroll)
    payroll = np.round(payroll, -3)
    buffer = income * 0.6 * np.exp(0.8 * h) * rng.lognormal(0.0, 0.25, n)
    end_bal = buffer[:, None] * rng.lognormal(0.0, 0.35, (n, M)) + 0.25 * (
        payroll - income[:, None]
    )
    end_bal = np.where(shocked, end_bal * 0.45, end_bal)
    overdraft = (checking & (h < -1.0))[:, None] & (rng.random((n, M)) < 0.3)
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
    min_bal = np.minimum(prev_end, end_bal) - dip
    avg_bal = 0.5 * (prev_end + end_bal) + 0.2 * payroll - 0.5 * dip
    inflow = payroll + other_in
    pay_count = np.select(
        [pay_kind == PAY_BIWEEKLY, pay_kind == PAY_IRREGULAR],
        [2, rng.integers(1, 4, n)],
        1,
    )[:, None] * (payroll > 0)
    n_inflows = pay_count + 1 + rng.poisson(1.5, (n, M))
    irregular_days = rng.integers(0, 30, (n, M))

    def days_since_payroll(cl: np.ndarray, m: int, day: np.ndarray) -> np.ndarray:
        kind = pay_kind[cl]
        return np.select(
            [kind == PAY_BIWEEKLY, kind == PAY_MONTHLY, kind == PAY_PENSION],
            [
                np.where(day >= 15, day - 15, day),
                day,
                np.where(day >= 20, day - 20, day + 10),
            ],
            irregular_days[cl, m],
        )

    def funds(cl: np.ndarray, m: int, day: np.ndarray) -> np.ndarray:
        """Money available in the debited account on `day` (hidden; balances show it noisily)."""
        ds = days_since_payroll(cl, m, day)
        base = np.maximum(min_bal[cl, m], 0) * 0.45 + np.maximum(avg_bal[cl, m], 0) * 0.15
        fresh = payroll[cl, m] * 0.8 * np.exp(-ds / 7.0)
        return (base + fresh) * rng.lognormal(0.0, 0.6, len(cl))

    # ------------------------------------------------------------ obligations
    k_obl = 1 + np.minimum(rng.poisson(0.45, n), 3)
    ocl = np.repeat(np.arange(n), k_obl)
    no = len(ocl)
    u = rng.random(no)
    prod = (u[:, None] > np.cumsum(PRODUCT_P[seg[ocl]], axis=1)).sum(axis=1)
    prod = np.minimum(prod, 4)
    inc_o = income[ocl]
    term = np.select(
        [prod == LOAN, prod == VEHICLE, prod == MORTGAGE, prod == MICRO],
        [
            rng.choice([12, 24, 36, 48, 60], no),
            rng.choice([36, 48, 60, 72], no),
            rng.choice([120, 180, 240], no),
            rng.choice([6, 12, 18, 24], no),
        ],
        0,
    )
    mult = np.select(
        [prod == LOAN, prod == CARD, prod == VEHICLE, prod == MORTGAGE],
        [
            rng.uniform(1.5, 8, no),
            rng.uniform(0.8, 3, no),
            rng.uniform(5, 15, no),
            rng.uniform(12, 35, no),
        ],
        rng.uniform(1, 4, no),
    )
    amount = np.round(inc_o * mult, -5)
    rate = np.round(
        np.select(
            [prod == LOAN, prod == CARD, prod == VEHICLE, prod == MORTGAGE],
            [
                rng.uniform(16, 28, no),
                rng.uniform(24, 33, no),
                rng.uniform(11, 17, no),
                rng.uniform(9, 13, no),
            ],
            rng.uniform(30, 48, no),
        ),
        2,
    )
    r_m = rate / 1200.0
    annuity = amount * r_m / (1.0 - (1.0 + r_m) ** -np.maximum(term, 1))
    util = rng.uniform(0.2, 0.9, no)
    inst = np.where(prod == CARD, np.maximum(amount * util * 0.07, 20_000.0), annuity)
    inst = np.maximum(np.round(inst, -2), 10_000.0)
    revolving = prod == CARD
    in_window = rng.random(no) < 0.15
    age = np.where(revolving, rng.integers(0, 96, no), (rng.random(no) * term).astype(np.int64))
    oj = np.where(in_window, rng.integers(0, M - 1, no), -1 - age)
    orig_day = rng.integers(1, 29, no)
    orig_date = cal.month_start_of(oj) + (orig_day - 1).astype("timedelta64[D]")
    first_inst = oj + 1
    last_inst = np.where(revolving, 10**6, oj + term)
    due_day = np.where(
        rng.random(no) < 0.55, rng.choice([5, 10, 15, 20, 25], no), rng.integers(3, 28, no)
    )
    maturity = cal.month_start_of(np.where(revolving, 0, last_inst)) + (due_day - 1).astype(
        "timedelta64[D]"
    )
    # Affordability as the bank sees it: installment / declared income (neutral if not declared).
    afford = np.where(declared_missing[ocl], 0.15, inst / declared[ocl])
    ho = h[ocl]
    due_mat = cal.month_start[None, :] + (due_day - 1)[:, None].astype("timedelta64[D]")

    # --------------------------------------------------------------- mandates
    mand_obl: list[np.ndarray] = []
    mand_start: list[np.ndarray] = []
    mand_own: list[np.ndarray] = []
    mand_partial: list[np.ndarray] = []
    mand_count = 0
    ends: dict[str, list[np.ndarray]] = {"idx": [], "date": [], "status": []}

    def new_mandates(idx: np.ndarray, start: np.ndarray) -> np.ndarray:
        nonlocal mand_count
        own = own_account[ocl[idx]] & (rng.random(len(idx)) < 0.88)
        mand_obl.append(idx)
        mand_start.append(start.astype("datetime64[D]"))
        mand_own.append(own)
        mand_partial.append(rng.random(len(idx)) < 0.3)
        local = mand_count + np.arange(len(idx))
        mand_count += len(idx)
        return local

    base_month = cal.month_start[0].astype("datetime64[M]")
    cur_mand = np.full(no, -1)
    cur_s = np.zeros(no, np.int64)
    cur_own = np.zeros(no, bool)
    cur_partial = np.zeros(no, bool)
    had_mand = np.zeros(no, bool)

    def attach(idx: np.ndarray, start: np.ndarray) -> None:
        local = new_mandates(idx, start)
        cur_mand[idx] = local
        cur_s[idx] = (start.astype("datetime64[M]") - base_month).astype(np.int64)
        cur_own[idx] = mand_own[-1]
        cur_partial[idx] = mand_partial[-1]

    m_start0 = orig_date + rng.integers(0, 16, no).astype("timedelta64[D]")
    has0 = (rng.random(no) < MANDATE_P[prod]) & (m_start0 <= cal.cut[-1])
    idx0 = np.flatnonzero(has0)
    attach(idx0, m_start0[idx0])

    # ------------------------------------------------------------ month loop
    inst_amt = np.zeros((no, M))
    paid_cum = np.zeros(no)
    ar_prev = np.zeros(no)
    dpd_prev = np.zeros(no, np.int64)
    alive = np.ones(no, bool)
    status = np.zeros(no, np.int64)  # 0 ACTIVE 1 CLOSED 2 WRITTEN_OFF
    closed = np.full(no, np.datetime64("NaT"), "datetime64[D]")
    att_cnt = np.zeros((no, M))
    succ_cnt = np.zeros((no, M))
    early = np.zeros((no, M), bool)
    had_cut_prev = np.zeros(no, bool)

    att = _Events("obl", "mand", "m", "day", "sec", "req", "deb", "res", "reason")
    pay = _Events("obl", "m", "day", "sec", "amount", "channel")
    cuts = _Events("obl", "m", "dpd", "apd", "bal")
    acts = _Events("obl", "date", "sec", "type", "outcome", "cost")
    truth = _Events("obl", "m", "elig", "p", "y", "mode")

    def p_true(idx: np.ndarray, c: int) -> np.ndarray:
        """The explicit probability of self-cure through the debit for rows at cut c."""
        lo = max(0, c - 5)
        n_att = att_cnt[idx, lo : c + 1].sum(axis=1)
        n_ok = succ_cnt[idx, lo : c + 1].sum(axis=1)
        rate_ok = (n_ok + 1.0) / (n_att + 2.0)
        cl = ocl[idx]
        own = cur_own[idx]
        # The debited account over the last 3 complete months (the cut's month included).
        lo3 = max(0, c - 2)
        bal_3m = avg_bal[cl, lo3 : c + 1].mean(axis=1)
        inflow_3m = inflow[cl, lo3 : c + 1].mean(axis=1)
        cover = np.clip(np.log(np.maximum(bal_3m, 1.0) / inst[idx]), -3.0, 3.0)
        # Inflow against the declared income (no signal when the income is not declared).
        inflow_ratio = np.where(
            declared_missing[cl], 0.0, np.clip(inflow_3m / declared[cl], 0.0, 2.0) - 1.0
        )
        # Payday as the bank knows it from the employment type: salaried 15th/30th, pension 20th.
        t = due_day[idx]
        ds = np.select(
            [emp[cl] == SALARIED, emp[cl] == PENSIONER],
            [np.where(t >= 15, t - 15, t), np.where(t >= 20, t - 20, t + 10)],
            99,
        )
        good_timing = ds <= 6
        eps = early[idx, max(0, c - 12) : c].sum(axis=1)
        z = (
            PT["intercept"]
            + PT["debit_success_rate"] * (rate_ok - 0.6)
            + np.where(
                own,
                PT["balance_cover"] * cover + PT["inflow_ratio"] * inflow_ratio,
                PT["other_bank"],
            )
            + PT["payroll_before_due"] * good_timing
            + PT["irregular_income"] * (pay_kind[cl] == PAY_IRREGULAR)
            + PT["past_episodes"] * eps
            + PT["affordability"] * (afford[idx] - 0.15)
            + PT["days_past_due"] * (dpd_prev[idx] - 10)
            + PT_SEGMENT[seg[cl]]
            + PT_PRODUCT[prod[idx]]
            + PT["latent_health"] * ho[idx]
        )
        return _sigmoid(z)

    def funds_attempt(idx, m, day, req):
        """Result of a debit attempt driven by the funds available (SUCCESS/PARTIAL/REJECTED)."""
        k = len(idx)
        f = funds(ocl[idx], m, day)
        tech = rng.random(k) < np.where(cur_own[idx], 0.012, 0.06)
        blocked = rng.random(k) < 0.003
        ok = f >= req
        some = np.floor(np.minimum(f, req - 1))
        part = ~ok & cur_partial[idx] & (f >= 0.05 * req) & (some >= 1)
        res = np.where(ok, SUCCESS, np.where(part, PARTIAL, REJECTED))
        deb = np.where(ok, req, np.where(part, some, 0.0))
        reason = np.where(res == REJECTED, R_FUNDS, -1)
        blocked_reason = np.where(rng.random(k) < 0.3, R_CLOSED, R_BLOCKED)
        reason = np.where(blocked, blocked_reason, np.where(tech, R_TECH, reason))
        res = np.where(tech | blocked, REJECTED, res)
        deb = np.where(tech | blocked, 0.0, deb)
        return res, deb, reason

    def record_attempt(idx, m, day, req, res, deb, reason, paid_m, last_day_evt):
        if len(idx) == 0:
            return
        sec = rng.integers(4 * 3600, 7 * 3600, len(idx))
        att.add(
            obl=idx, mand=cur_mand[idx], m=np.int64(m), day=day, sec=sec,
            req=req, deb=deb, res=res, reason=reason,
        )  # fmt: skip
        got = deb > 0
        pay.add(
            obl=idx[got], m=np.int64(m), day=day[got], sec=sec[got],
            amount=deb[got], channel=np.int64(DEBIT),
        )  # fmt: skip
        np.add.at(paid_m, idx, deb)
        np.add.at(att_cnt[:, m], idx, 1.0)
        np.add.at(succ_cnt[:, m], idx, (res == SUCCESS).astype(float))
        np.maximum.at(last_day_evt, idx, day)

    def record_payment(idx, m, day, amount, paid_m, last_day_evt):
        if len(idx) == 0:
            return
        ch = rng.choice(len(CHANNELS), len(idx), p=OTHER_CHANNEL_P)
        pay.add(
            obl=idx, m=np.int64(m), day=day, sec=rng.integers(7 * 3600, 22 * 3600, len(idx)),
            amount=amount, channel=ch,
        )  # fmt: skip
        np.add.at(paid_m, idx, amount)
        np.maximum.at(last_day_evt, idx, day)

    for m in range(M):
        last_day = min(LAST_PAY_DAY, int(cal.length[m]))
        active = alive & (oj <= m)
        has_inst = active & (first_inst <= m) & (m <= last_inst)
        A = np.where(has_inst, inst, 0.0)
        inst_amt[:, m] = A
        t = due_day
        covering = (cur_mand >= 0) & (cur_s < m)
        mode = np.zeros(no, np.int64)
        if m >= 1:
            ep = had_cut_prev & (dpd_prev >= 1) & (dpd_prev <= 30)
            elig = ep & covering
            ie = np.flatnonzero(elig)
            p = p_true(ie, m - 1)
            y = rng.random(len(ie)) < p
            u = rng.random(len(ie))
            can_retry = t[ie] >= 5
            m1 = np.where(can_retry & (u < 0.4), M_RETRY_CURE, M_DUE_CURE)
            m0 = np.select(
                [u < 0.35, u < 0.6],
                [M_OTHER_CHANNEL, np.where(cur_partial[ie], M_PARTIAL_DEBIT, M_PARTIAL_OTHER)],
                M_ROLL,
            )
            mode[ie] = np.where(y, m1, m0)
            truth.add(obl=ie, m=np.int64(m - 1), elig=True, p=p, y=y, mode=mode[ie])
            ii = np.flatnonzero(ep & ~covering)
            truth.add(
                obl=ii, m=np.int64(m - 1), elig=False, p=np.nan, y=False, mode=np.int64(M_NONE)
            )
            # The bank's current policy: every early-delinquent obligation gets collection actions.
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
            acts.add(
                obl=ia, date=cal.cut[m - 1] + rng.integers(1, 13, len(ia)).astype("timedelta64[D]"),
                sec=rng.integers(8 * 3600, 19 * 3600, len(ia)), type=a_type, outcome=a_out,
                cost=cost,
            )  # fmt: skip

        # Mandates stopping this month, never inside a labeled horizon (that would be unobservable).
        cand = active & covering & (mode == M_NONE)
        hz = 0.005 + 0.02 * (dpd_prev > 60) + 0.004 * (ho < -1.0)
        stop = cand & (rng.random(no) < hz)
        end_day = np.where(stop, rng.integers(3, 29, no), 99)
        ist = np.flatnonzero(stop)
        ends["idx"].append(cur_mand[ist])
        ends["date"].append(cal.month_start[m] + (end_day[ist] - 1).astype("timedelta64[D]"))
        ends["status"].append(np.where(rng.random(len(ist)) < 0.35, 1, 2))
        debit_ok = active & covering

        owed = ar_prev + A
        paid_m = np.zeros(no)
        last_day_evt = np.zeros(no, np.int64)

        # Step 1: before the due date (retries of past-due amounts, early other-channel payments).
        pday = rng.integers(FIRST_PAY_DAY, last_day + 1, no)
        rday = np.where(t >= 5, rng.integers(FIRST_PAY_DAY, np.maximum(t, 4)), 0)
        early_fail = (rng.random(no) < 0.3) & (t >= 5) & (mode != M_NONE) & (mode != M_RETRY_CURE)
        early_fail &= mode != M_OTHER_CHANNEL
        i = np.flatnonzero(mode == M_RETRY_CURE)
        record_attempt(
            i, m, rday[i], ar_prev[i], np.full(len(i), SUCCESS), ar_prev[i],
            np.full(len(i), -1), paid_m, last_day_evt,
        )  # fmt: skip
        i = np.flatnonzero(early_fail)
        record_attempt(
            i, m, rday[i], ar_prev[i], np.full(len(i), REJECTED), np.zeros(len(i)),
            np.full(len(i), R_FUNDS), paid_m, last_day_evt,
        )  # fmt: skip
        oc_before = (mode == M_OTHER_CHANNEL) & (pday < t)
        i = np.flatnonzero(oc_before)
        record_payment(i, m, pday[i], ar_prev[i], paid_m, last_day_evt)

        # Step 2: the due-date attempt.
        due_try = debit_ok & (t < end_day) & (owed - paid_m > 0.5)
        funds_based = due_try & ((mode == M_NONE) | (mode == M_RETRY_CURE) | oc_before)
        i = np.flatnonzero(funds_based)
        res, deb, reason = funds_attempt(i, m, t[i], owed[i] - paid_m[i])
        record_attempt(i, m, t[i], owed[i] - paid_m[i], res, deb, reason, paid_m, last_day_evt)
        i = np.flatnonzero(mode == M_DUE_CURE)
        part = cur_partial[i] & (A[i] > 0) & (rng.random(len(i)) < 0.3)
        deb = np.where(part, ar_prev[i] + np.floor(rng.random(len(i)) * A[i]), owed[i])
        record_attempt(
            i, m, t[i], owed[i], np.where(part, PARTIAL, SUCCESS), deb,
            np.full(len(i), -1), paid_m, last_day_evt,
        )  # fmt: skip
        i = np.flatnonzero(mode == M_PARTIAL_DEBIT)
        frac = np.maximum(np.floor(ar_prev[i] * rng.uniform(0.15, 0.85, len(i))), 1.0)
        record_attempt(
            i, m, t[i], owed[i], np.full(len(i), PARTIAL), frac, np.full(len(i), -1),
            paid_m, last_day_evt,
        )  # fmt: skip
        forced_rej = ((mode == M_OTHER_CHANNEL) & ~oc_before) | (mode == M_PARTIAL_OTHER)
        forced_rej |= mode == M_ROLL
        i = np.flatnonzero(forced_rej)
        reason = np.where(~cur_own[i] & (rng.random(len(i)) < 0.25), R_TECH, R_FUNDS)
        record_attempt(
            i, m, t[i], owed[i], np.full(len(i), REJECTED), np.zeros(len(i)), reason,
            paid_m, last_day_evt,
        )  # fmt: skip

        # Step 3: retries after the due date.
        retry_pool = (funds_based | (mode == M_DUE_CURE)) & (owed - paid_m > 0.5)
        for k, gap in enumerate((5, 10)):
            day = t + gap
            ok_day = (day <= last_day) & (day < end_day)
            i = np.flatnonzero(retry_pool & ok_day & (owed - paid_m > 0.5))
            res, deb, reason = funds_attempt(i, m, day[i], owed[i] - paid_m[i])
            record_attempt(
                i, m, day[i], owed[i] - paid_m[i], res, deb, reason, paid_m, last_day_evt
            )
            if k == 0:
                i = np.flatnonzero((mode == M_ROLL) & ok_day & debit_ok)
                record_attempt(
                    i, m, day[i], owed[i], np.full(len(i), REJECTED), np.zeros(len(i)),
                    np.full(len(i), R_FUNDS), paid_m, last_day_evt,
                )  # fmt: skip

        # Step 4: payments through other channels.
        i = np.flatnonzero((mode == M_OTHER_CHANNEL) & ~oc_before)
        d = np.maximum(pday[i], t[i])
        amt = np.where(rng.random(len(i)) < 0.7, owed[i], ar_prev[i])
        record_payment(i, m, d, amt, paid_m, last_day_evt)
        i = np.flatnonzero(mode == M_PARTIAL_OTHER)
        frac = np.maximum(np.floor(ar_prev[i] * rng.uniform(0.15, 0.85, len(i))), 1.0)
        record_payment(i, m, pday[i], frac, paid_m, last_day_evt)
        rem = owed - paid_m
        normal = active & (mode == M_NONE) & (rem > 0.5)
        current = ar_prev < 0.5
        q_full = np.where(
            current,
            np.where(debit_ok, _sigmoid(0.2 + 1.0 * ho), _sigmoid(2.8 + 1.0 * ho)),
            _sigmoid(-0.3 + 0.8 * ho - 0.01 * dpd_prev),
        )
        uu = rng.random(no)
        full = normal & (uu < q_full)
        partial = normal & ~full & ~current & (uu < q_full + 0.2)
        lo = np.where(
            debit_ok, np.minimum(np.maximum(last_day_evt, t) + 1, last_day), np.maximum(t - 4, 3)
        )
        lo = np.where(current & ~debit_ok, lo, np.maximum(lo, t))
        hi = np.where(debit_ok, last_day, np.minimum(t + 3, last_day))
        day = lo + np.floor(rng.random(no) * (hi - lo + 1)).astype(np.int64)
        i = np.flatnonzero(full)
        record_payment(i, m, day[i], rem[i], paid_m, last_day_evt)
        i = np.flatnonzero(partial)
        amt = np.maximum(np.floor(rem[i] * rng.uniform(0.2, 0.7, len(i))), 1.0)
        record_payment(i, m, day[i], amt, paid_m, last_day_evt)

        # The cut at month end: FIFO allocation of payments to installments.
        paid_cum += paid_m
        cum = np.cumsum(inst_amt[:, : m + 1], axis=1)
        ar = cum[:, -1] - paid_cum
        unpaid = cum > paid_cum[:, None] + 0.5
        k_old = unpaid.argmax(axis=1)
        has_ar = ar > 0.5
        dpd = np.where(has_ar, (cal.cut[m] - due_mat[np.arange(no), k_old]).astype(np.int64), 0)
        ar = np.where(has_ar, ar, 0.0)
        closing = active & ~revolving & (m >= last_inst) & ~has_ar
        close_day = np.where(last_day_evt > 0, last_day_evt, t)
        closed[closing] = cal.month_start[m] + (close_day[closing] - 1).astype("timedelta64[D]")
        status[closing] = 1
        w_off = active & ~closing & (dpd > WRITE_OFF_DPD) & (m < M - 1)
        closed[w_off] = cal.cut[m] + 1
        status[w_off] = 2
        cut_rows = active & ~closing
        remaining_n = np.maximum(last_inst - m, 0)
        pv = np.where(
            revolving,
            amount * util,
            inst * (1.0 - (1.0 + r_m) ** -remaining_n) / np.maximum(r_m, 1e-9),
        )
        ic = np.flatnonzero(cut_rows)
        cuts.add(obl=ic, m=np.int64(m), dpd=dpd[ic], apd=ar[ic], bal=np.round(pv[ic], -2) + ar[ic])
        early[:, m] = cut_rows & (dpd >= 1) & (dpd <= 30)
        gone = closing | w_off
        # A mandate stops the day after its obligation is paid off or written off.
        ig = np.flatnonzero(gone & (cur_mand >= 0) & ~stop & (closed + 1 <= as_of))
        ends["idx"].append(cur_mand[ig])
        ends["date"].append(closed[ig] + 1)
        ends["status"].append(np.full(len(ig), 2))
        alive &= ~gone
        had_cut_prev = cut_rows
        ar_prev, dpd_prev = ar, dpd

        # Mandate changes take effect after the month.
        cur_mand[stop] = -1
        had_mand |= stop
        cur_mand[gone] = -1
        cand_new = alive & (oj <= m) & (cur_mand < 0) & ~stop
        start_new = cand_new & (rng.random(no) < np.where(had_mand, 0.12, 0.008))
        isn = np.flatnonzero(start_new)
        if len(isn):
            attach(isn, cal.month_start[m] + rng.integers(0, 28, len(isn)).astype("timedelta64[D]"))

    # p_true at the last cut: the scoring population (no outcome drawn).
    ep = had_cut_prev & (dpd_prev >= 1) & (dpd_prev <= 30)
    covering = (cur_mand >= 0) & (cur_s < M)
    ie = np.flatnonzero(ep & covering)
    truth.add(
        obl=ie, m=np.int64(M - 1), elig=True, p=p_true(ie, M - 1), y=False, mode=np.int64(M_NONE)
    )
    ii = np.flatnonzero(ep & ~covering)
    truth.add(obl=ii, m=np.int64(M - 1), elig=False, p=np.nan, y=False, mode=np.int64(M_NONE))

    # ------------------------------------------------------------- assemble
    c_ids = ids.client + np.arange(n)
    o_ids = ids.obligation + np.arange(no)
    client_id = id_array("C", c_ids, 8)
    obligation_id = id_array("O", o_ids, 9)
    earliest = np.full(n, np.datetime64("2100-01-01"), "datetime64[D]")
    np.minimum.at(earliest, ocl, orig_date)
    customer_since = earliest - rng.integers(0, 3 * 365, n).astype("timedelta64[D]")
    pers = personal_columns(rng, gender, seg == SME)
    tables: dict[str, pa.Table] = {}
    tables["clients"] = pa.table(
        {
            "client_id": client_id,
            "document_type": pa.array(pers["document_type"], pa.string()),
            "document_number": pa.array(pers["document_number"], pa.string()),
            "full_name": pa.array(pers["full_name"], pa.string()),
            "birth_date": _dates(birth),
            "gender": pa.array(gender, pa.string()),
            "city": pa.array(pers["city"], pa.string()),
            "region": pa.array(pers["region"], pa.string()),
            "segment": _choice_str(SEGMENTS, seg),
            "employment_type": _choice_str(EMPLOYMENT_TYPES, emp),
            "monthly_income": pa.array(declared, mask=declared_missing),
            "customer_since": _dates(customer_since),
            "email": pa.array(pers["email"], pa.string()),
            "phone": pa.array(pers["phone"], pa.string()),
        }
    )
    obl_status = np.array(["ACTIVE", "CLOSED", "WRITTEN_OFF"], dtype=object)[status]
    tables["obligations"] = pa.table(
        {
            "obligation_id": obligation_id,
            "client_id": pc.take(client_id, pa.array(ocl)),
            "product": _choice_str(PRODUCTS, prod),
            "origination_date": _dates(orig_date),
            "maturity_date": pa.array(
                maturity.astype("datetime64[D]"), pa.date32(), mask=revolving
            ),
            "original_amount": pa.array(amount),
            "annual_rate": pa.array(rate),
            "term_months": pa.array(term, pa.int64(), mask=revolving),
            "installment_amount": pa.array(inst),
            "due_day": pa.array(due_day, pa.int64()),
            "status": pa.array(obl_status, pa.string()),
            "closed_date": pa.array(closed, pa.date32(), mask=np.isnat(closed)),
        }
    )

    # Mandates: one row each, end_date/status from the recorded stops.
    m_obl = np.concatenate(mand_obl) if mand_obl else np.zeros(0, np.int64)
    m_start = np.concatenate(mand_start) if mand_start else np.zeros(0, "datetime64[D]")
    m_own = np.concatenate(mand_own) if mand_own else np.zeros(0, bool)
    m_part = np.concatenate(mand_partial) if mand_partial else np.zeros(0, bool)
    m_end = np.full(len(m_obl), np.datetime64("NaT"), "datetime64[D]")
    m_status = np.zeros(len(m_obl), np.int64)
    for key in ("idx", "date", "status"):
        ends[key] = [np.asarray(x) for x in ends[key]]
    e_idx = np.concatenate(ends["idx"]).astype(np.int64) if ends["idx"] else np.zeros(0, np.int64)
    e_date = np.concatenate(ends["date"]).astype("datetime64[D]") if ends["idx"] else m_end[:0]
    e_stat = np.concatenate(ends["status"]).astype(np.int64) if ends["idx"] else m_status[:0]
    m_end[e_idx] = e_date
    m_status[e_idx] = e_stat
    m_end = np.where(~np.isnat(m_end) & (m_end <= m_start), m_start + 1, m_end)
    mand_gid = ids.mandate + np.arange(len(m_obl))
    m_cl = c_ids[ocl[m_obl]]
    # The client's own deposit account (A…) or their account in another bank (B…).
    account_id = pc.if_else(pa.array(m_own), id_array("A", m_cl, 9), id_array("B", m_cl, 9))
    m_checking = np.where(m_own, checking[ocl[m_obl]], rng.random(len(m_obl)) < 0.25)
    order = np.lexsort((mand_gid, m_obl))
    mand_rank = np.empty(len(order), np.int64)
    mand_rank[order] = np.arange(len(order))
    mand_gid = ids.mandate + mand_rank  # mandate ids follow obligation order
    tables["debit_mandates"] = pa.table(
        {
            "mandate_id": id_array("M", mand_gid, 9),
            "obligation_id": pc.take(obligation_id, pa.array(m_obl)),
            "account_id": account_id,
            "account_type": pa.array(np.where(m_checking, "CHECKING", "SAVINGS"), pa.string()),
            "account_bank": pa.array(np.where(m_own, "OWN", "OTHER"), pa.string()),
            "start_date": _dates(m_start),
            "end_date": pa.array(m_end, pa.date32(), mask=np.isnat(m_end)),
            "status": _choice_str(("ACTIVE", "SUSPENDED", "CANCELLED"), m_status),
            "debit_mode": pa.array(np.where(m_part, "PARTIAL_ALLOWED", "FULL"), pa.string()),
        }
    ).take(pa.array(order))

    # Installments (window months only; numbered from origination).
    io, im = np.nonzero(inst_amt > 0)
    tables["installments"] = pa.table(
        {
            "obligation_id": pc.take(obligation_id, pa.array(io)),
            "installment_no": pa.array(im - oj[io], pa.int64()),
            "due_date": _dates(due_mat[io, im]),
            "amount_due": pa.array(inst_amt[io, im]),
        }
    )

    # Payments and debit attempts, in time order.
    a_obl = att.get("obl", np.int64)
    a_ts = cal.month_start[att.get("m", np.int64)].astype("datetime64[s]") + (
        (att.get("day", np.int64) - 1) * 86400 + att.get("sec", np.int64)
    ).astype("timedelta64[s]")
    a_order = np.lexsort((a_obl, a_ts))
    a_res = att.get("res", np.int64)
    a_reason = att.get("reason", np.int64)
    tables["debit_attempts"] = pa.table(
        {
            "attempt_id": id_array("DA", ids.attempt + np.arange(len(a_obl)), 10),
            "mandate_id": pc.take(
                id_array("M", ids.mandate + mand_rank, 9),
                pa.array(att.get("mand", np.int64)[a_order]),
            )
            if len(a_obl)
            else pa.array([], pa.string()),
            "attempt_ts": pa.array(a_ts[a_order], pa.timestamp("s")),
            "amount_requested": pa.array(att.get("req", float)[a_order]),
            "amount_debited": pa.array(att.get("deb", float)[a_order]),
            "result": _choice_str(ATTEMPT_RESULTS, a_res[a_order]),
            "reject_reason": pa.array(
                np.array(REJECT_REASONS, dtype=object)[np.maximum(a_reason[a_order], 0)],
                pa.string(),
                mask=a_reason[a_order] < 0,
            ),
        }
    )
    p_obl = pay.get("obl", np.int64)
    p_ts = cal.month_start[pay.get("m", np.int64)].astype("datetime64[s]") + (
        (pay.get("day", np.int64) - 1) * 86400 + pay.get("sec", np.int64)
    ).astype("timedelta64[s]")
    p_order = np.lexsort((p_obl, p_ts))
    tables["payments"] = pa.table(
        {
            "payment_id": id_array("P", ids.payment + np.arange(len(p_obl)), 10),
            "obligation_id": pc.take(obligation_id, pa.array(p_obl[p_order])),
            "payment_ts": pa.array(p_ts[p_order], pa.timestamp("s")),
            "amount": pa.array(pay.get("amount", float)[p_order]),
            "channel": _choice_str(CHANNELS, pay.get("channel", np.int64)[p_order]),
        }
    )

    # Monthly summary of the clients' own (debitable) accounts.
    since_m = (customer_since.astype("datetime64[M]") - base_month).astype(np.int64)
    ac, am = np.nonzero(own_account[:, None] & (np.arange(M)[None, :] >= since_m[:, None]))
    tables["account_monthly"] = pa.table(
        {
            "account_id": id_array("A", c_ids[ac], 9),
            "month": _dates(cal.month_start[am]),
            "avg_balance": pa.array(np.round(avg_bal[ac, am], 2)),
            "min_balance": pa.array(np.round(min_bal[ac, am], 2)),
            "end_balance": pa.array(np.round(end_bal[ac, am], 2)),
            "inflow_total": pa.array(np.round(inflow[ac, am], 2)),
            "payroll_inflow": pa.array(np.round(payroll[ac, am], 2)),
            "n_inflows": pa.array(n_inflows[ac, am], pa.int64()),
            "outflow_total": pa.array(np.round(outflow[ac, am], 2)),
        }
    )

    c_obl = cuts.get("obl", np.int64)
    c_m = cuts.get("m", np.int64)
    c_order = np.lexsort((c_obl, c_m))
    tables["portfolio_cuts"] = pa.table(
        {
            "cut_date": _dates(cal.cut[c_m[c_order]]),
            "obligation_id": pc.take(obligation_id, pa.array(c_obl[c_order])),
            "days_past_due": pa.array(cuts.get("dpd", np.int64)[c_order], pa.int64()),
            "amount_past_due": pa.array(cuts.get("apd", float)[c_order]),
            "outstanding_balance": pa.array(cuts.get("bal", float)[c_order]),
        }
    )

    x_obl = acts.get("obl", np.int64)
    x_ts = acts.get("date", "datetime64[D]").astype("datetime64[s]") + acts.get(
        "sec", np.int64
    ).astype("timedelta64[s]")
    x_order = np.lexsort((x_obl, x_ts))
    tables["collection_actions"] = pa.table(
        {
            "action_id": id_array("CA", ids.action + np.arange(len(x_obl)), 10),
            "obligation_id": pc.take(obligation_id, pa.array(x_obl[x_order])),
            "action_ts": pa.array(x_ts[x_order], pa.timestamp("s")),
            "action_type": _choice_str(ACTION_TYPES, acts.get("type", np.int64)[x_order]),
            "outcome": _choice_str(ACTION_OUTCOMES, acts.get("outcome", np.int64)[x_order]),
            "cost": pa.array(acts.get("cost", float)[x_order]),
        }
    )

    t_obl = truth.get("obl", np.int64)
    t_m = truth.get("m", np.int64)
    t_cut = cal.cut[t_m]
    labeled = (t_cut + HORIZON_DAYS <= as_of) & (t_m < M - 1)
    t_order = np.lexsort((t_obl, t_m))
    y = truth.get("y", bool)
    truth_table = pa.table(
        {
            "cut_date": _dates(t_cut[t_order]),
            "obligation_id": pc.take(obligation_id, pa.array(t_obl[t_order])),
            "eligible": pa.array(truth.get("elig", bool)[t_order]),
            "labeled": pa.array(labeled[t_order]),
            "p_true": pa.array(truth.get("p", float)[t_order]),
            "outcome": pa.array(y[t_order].astype(np.int64), mask=~labeled[t_order]),
            "mode": _choice_str(MODE_NAMES, truth.get("mode", np.int64)[t_order]),
        }
    )

    ids.client += n
    ids.obligation += no
    ids.mandate += len(m_obl)
    ids.attempt += len(a_obl)
    ids.payment += len(p_obl)
    ids.action += len(x_obl)
    return ChunkResult(tables, truth_table)
