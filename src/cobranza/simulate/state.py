"""The state one chunk's month loop works on: `World` (the whole window) and `Month` (one month).

`World` holds the chunk's people, obligations and mandates, the running ledger (installments,
payments to date, arrears and days past due at the last cut) and the append-only events every
table is assembled from. `Month` holds what the steps of one month share: the installment due,
the outcome mode drawn for each early-delinquent row, mandate stops, money paid so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cobranza.simulate.common import Events
from cobranza.simulate.config import SCENARIO_MONTHS, Calendar, SimulationConfig
from cobranza.simulate.population import Accounts, Clients
from cobranza.simulate.portfolio import Mandates, Obligations

TRUTH_COLUMNS = (
    "obl", "m", "elig", "p", "y", "mode", "arm", "treated", "cure_any", "roll", "recovered",
    "ctype", "exposure", "pw", "pf", "pa", "pm", "pq", "hz",
)  # fmt: skip


@dataclass
class World:
    """One chunk's state over the whole window."""

    rng: np.random.Generator
    cfg: SimulationConfig
    cal: Calendar
    c: Clients
    a: Accounts
    o: Obligations
    md: Mandates
    obl_base: int  # global number of the chunk's first obligation (identifiers O000000123)
    due_day_m: np.ndarray = field(init=False)  # (no, M) due day in each month (business day)
    inst_amt: np.ndarray = field(init=False)  # (no, M) amount due in each window month
    paid_cum: np.ndarray = field(init=False)  # payments to date, reversed ones excluded
    ar_prev: np.ndarray = field(init=False)  # amount past due at the previous cut
    dpd_prev: np.ndarray = field(init=False)  # days past due at the previous cut
    bal_prev: np.ndarray = field(init=False)  # outstanding balance at the previous cut
    alive: np.ndarray = field(init=False)
    status: np.ndarray = field(init=False)  # 0 ACTIVE 1 CLOSED 2 WRITTEN_OFF
    closed: np.ndarray = field(init=False)
    att_cnt: np.ndarray = field(init=False)  # (no, M) debit attempts per month
    succ_cnt: np.ndarray = field(init=False)  # (no, M) successful debit attempts per month
    digital_cnt: np.ndarray = field(init=False)  # (no, M) DIGITAL or PSE payments per month
    early: np.ndarray = field(init=False)  # (no, M) early delinquency at each cut
    had_cut_prev: np.ndarray = field(init=False)
    att: Events = field(init=False)
    pay: Events = field(init=False)
    cuts: Events = field(init=False)
    acts: Events = field(init=False)
    truth: Events = field(init=False)

    def __post_init__(self) -> None:
        no, M = self.o.no, self.cal.n
        self.due_day_m = self.cal.due[self.o.due_day, :]
        self.inst_amt = np.zeros((no, M))
        self.paid_cum = np.zeros(no)
        self.ar_prev = np.zeros(no)
        self.dpd_prev = np.zeros(no, np.int64)
        self.bal_prev = np.zeros(no)
        self.alive = np.ones(no, bool)
        self.status = np.zeros(no, np.int64)
        self.closed = np.full(no, np.datetime64("NaT"), "datetime64[D]")
        self.att_cnt = np.zeros((no, M))
        self.succ_cnt = np.zeros((no, M))
        self.digital_cnt = np.zeros((no, M))
        self.early = np.zeros((no, M), bool)
        self.had_cut_prev = np.zeros(no, bool)
        self.att = Events("obl", "mand", "m", "day", "sec", "req", "deb", "res", "reason")
        self.pay = Events("obl", "m", "day", "sec", "amount", "channel", "rev_day", "rev_sec")
        self.cuts = Events("obl", "m", "dpd", "apd", "bal")
        self.acts = Events("obl", "date", "sec", "type", "outcome", "cost")
        self.truth = Events(*TRUTH_COLUMNS)

    def in_scenario(self, m: int) -> bool:
        """Month m is inside the scenario's months (the last SCENARIO_MONTHS of the window)."""
        return m >= self.cal.n - SCENARIO_MONTHS


@dataclass
class Month:
    """What the steps of one month share (arrays over the chunk's obligations)."""

    m: int
    last_day: int  # last day of the month a payment can happen on
    t: np.ndarray  # this month's due date (day of month, moved to a business day)
    active: np.ndarray
    A: np.ndarray  # amount due this month (installment plus fees)
    covering: np.ndarray  # a mandate covers the previous cut
    mode: np.ndarray = field(init=False)  # outcome mode of the row at the previous cut
    pay_day: np.ndarray = field(init=False)  # drawn other-channel payment day of a mode
    paid_m: np.ndarray = field(init=False)  # paid this month, reversed payments excluded
    last_day_evt: np.ndarray = field(init=False)
    stop: np.ndarray = field(init=False)
    stop_status: np.ndarray = field(init=False)  # 1 SUSPENDED, 2 CANCELLED
    migrate: np.ndarray = field(init=False)  # stopped to move to another bank
    end_day: np.ndarray = field(init=False)  # day the mandate stops (99: runs all month)
    hazard: np.ndarray = field(init=False)  # the stop hazard each row faced
    debit_ok: np.ndarray = field(init=False)
    owed: np.ndarray = field(init=False)
    oc_before: np.ndarray = field(init=False)
    rday: np.ndarray = field(init=False)  # business day of a retry before the due date
    rday_ok: np.ndarray = field(init=False)  # such a retry fits before the due date
    funds_based: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        no = len(self.active)
        self.mode = np.zeros(no, np.int64)
        self.pay_day = np.zeros(no, np.int64)
        self.paid_m = np.zeros(no)
        self.last_day_evt = np.zeros(no, np.int64)
