"""Obligations (the five products, their installments and due days) and their debit mandates.

`Mandates` keeps every mandate a chunk ever creates (append-only) and, per obligation, the one
that currently runs: the month loop reads the current mandate to debit, stops and replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cobranza.simulate.common import CARD, LOAN, MANDATE_P, MICRO, MORTGAGE, PRODUCT_P, VEHICLE
from cobranza.simulate.config import Calendar
from cobranza.simulate.population import Clients


@dataclass
class Obligations:
    """One chunk's obligations (arrays of length no)."""

    no: int
    ocl: np.ndarray  # the client (chunk-local index) of each obligation
    prod: np.ndarray
    term: np.ndarray
    amount: np.ndarray
    rate: np.ndarray
    r_m: np.ndarray
    util: np.ndarray
    inst: np.ndarray
    revolving: np.ndarray
    oj: np.ndarray  # origination month, window-relative (negative: before the window)
    orig_date: np.ndarray
    first_inst: np.ndarray
    last_inst: np.ndarray
    due_day: np.ndarray
    maturity: np.ndarray
    ho: np.ndarray  # the client's latent health
    latent_f: np.ndarray  # the client's latent term of P(forgot) (truth.PF)
    util_path: np.ndarray  # (no, M) card utilization each month (cards; constant otherwise)
    inst_path: np.ndarray  # (no, M) installment each month (card minimums move with utilization)


CARD_MIN_SHARE, CARD_MIN_FLOOR = 0.07, 20_000.0  # card minimum: 7% of the balance used


def card_minimum(amount: np.ndarray, util: np.ndarray) -> np.ndarray:
    return np.maximum(
        np.round(np.maximum(amount * util * CARD_MIN_SHARE, CARD_MIN_FLOOR), -2), 10_000.0
    )


def utilization_paths(
    rng: np.random.Generator, util: np.ndarray, months: int, moving: bool
) -> np.ndarray:
    """Card utilization month by month: a random walk within 5-95% of the limit."""
    if not moving:
        return np.repeat(util[:, None], months, axis=1)
    steps = rng.normal(0.0, 0.06, (len(util), months))
    steps[:, 0] = 0.0
    path = np.empty((len(util), months))
    level = util.copy()
    for m in range(months):
        level = np.clip(level + steps[:, m], 0.05, 0.95)
        path[:, m] = level
    return path


def draw_obligations(
    rng: np.random.Generator, cal: Calendar, c: Clients, card_minimums: bool = True
) -> Obligations:
    M = cal.n
    k_obl = 1 + np.minimum(rng.poisson(0.45, c.n), 3)
    ocl = np.repeat(np.arange(c.n), k_obl)
    no = len(ocl)
    u = rng.random(no)
    prod = (u[:, None] > np.cumsum(PRODUCT_P[c.seg[ocl]], axis=1)).sum(axis=1)
    prod = np.minimum(prod, 4)
    inc_o = c.income[ocl]
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
    inst = np.where(prod == CARD, card_minimum(amount, util), np.round(annuity, -2))
    inst = np.maximum(inst, 10_000.0)
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
    util_path = utilization_paths(rng, util, M, card_minimums)
    inst_path = np.where(
        revolving[:, None], card_minimum(amount[:, None], util_path), inst[:, None]
    )
    inst = np.where(revolving, inst_path[:, -1], inst)  # obligations.csv: the latest
    return Obligations(
        no, ocl, prod, term, amount, rate, r_m, util, inst, revolving, oj, orig_date,
        first_inst, last_inst, due_day, maturity, c.h[ocl], c.latent_f[ocl], util_path, inst_path,
    )  # fmt: skip


@dataclass
class Mandates:
    """Every mandate of the chunk (append-only lists) and the current one of each obligation."""

    base_month: np.datetime64
    cur_mand: np.ndarray  # local mandate index, -1 when none runs
    cur_s: np.ndarray  # window-relative month the current mandate started
    cur_own: np.ndarray
    cur_partial: np.ndarray
    had_mand: np.ndarray
    obl: list[np.ndarray] = field(default_factory=list)
    start: list[np.ndarray] = field(default_factory=list)
    own: list[np.ndarray] = field(default_factory=list)
    partial: list[np.ndarray] = field(default_factory=list)
    count: int = 0
    ends: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {"idx": [], "date": [], "status": []}
    )

    @classmethod
    def empty(cls, cal: Calendar, no: int) -> Mandates:
        return cls(
            base_month=cal.month_start[0].astype("datetime64[M]"),
            cur_mand=np.full(no, -1),
            cur_s=np.zeros(no, np.int64),
            cur_own=np.zeros(no, bool),
            cur_partial=np.zeros(no, bool),
            had_mand=np.zeros(no, bool),
        )

    def attach(
        self, rng: np.random.Generator, own_account: np.ndarray, idx: np.ndarray, start: np.ndarray
    ) -> None:
        """New mandates for obligations `idx` starting on `start`; they become the current ones."""
        own = own_account & (rng.random(len(idx)) < 0.88)
        self.obl.append(idx)
        self.start.append(start.astype("datetime64[D]"))
        self.own.append(own)
        self.partial.append(rng.random(len(idx)) < 0.3)
        local = self.count + np.arange(len(idx))
        self.count += len(idx)
        self.cur_mand[idx] = local
        self.cur_s[idx] = (start.astype("datetime64[M]") - self.base_month).astype(np.int64)
        self.cur_own[idx] = self.own[-1]
        self.cur_partial[idx] = self.partial[-1]

    def end(self, local: np.ndarray, day: np.ndarray, status: np.ndarray) -> None:
        """Record that mandates `local` stopped on `day` (status 1 SUSPENDED, 2 CANCELLED)."""
        self.ends["idx"].append(local)
        self.ends["date"].append(day)
        self.ends["status"].append(status)


def first_mandates(rng: np.random.Generator, cal: Calendar, c: Clients, o: Obligations) -> Mandates:
    """Most obligations get a mandate shortly after origination."""
    mandates = Mandates.empty(cal, o.no)
    m_start0 = o.orig_date + rng.integers(0, 16, o.no).astype("timedelta64[D]")
    has0 = (rng.random(o.no) < MANDATE_P[o.prod]) & (m_start0 <= cal.cut[-1])
    idx0 = np.flatnonzero(has0)
    mandates.attach(rng, c.own_account[o.ocl[idx0]], idx0, m_start0[idx0])
    return mandates
