"""What every part of the simulator's story shares: index constants, tables of the story's
probabilities, the append-only event columns and the Arrow helpers that spell identifiers.

Payments only happen on days 3..30 of a month and due days are 3..27, so a cut's 30-day horizon
never sees the next month's payments and an installment is never due on a cut date.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HORIZON_DAYS = 30
WRITE_OFF_DPD = 150

# Index constants into the contract's value tuples.
MASS, AFFLUENT, PREMIUM, SME = range(4)
SALARIED, INDEPENDENT, PENSIONER, OTHER_EMP = range(4)
LOAN, CARD, VEHICLE, MORTGAGE, MICRO = range(5)
SUCCESS, PARTIAL, REJECTED = range(3)
R_FUNDS, R_BLOCKED, R_CLOSED, R_INACTIVE, R_TECH = range(5)
DEBIT = 0  # CHANNELS[0] == RECURRING_DEBIT
# Payroll calendars: 0 biweekly on 15 and 30, 1 monthly at month end, 2 pension on the 20th, 3 irregular.
PAY_BIWEEKLY, PAY_MONTHLY, PAY_PENSION, PAY_IRREGULAR = range(4)
# Outcome modes of an early-delinquent row over its horizon (debit cures: 1-2).
(
    M_NONE, M_RETRY_CURE, M_DUE_CURE, M_OTHER_CHANNEL, M_PARTIAL_DEBIT, M_PARTIAL_OTHER, M_ROLL,
    M_PREEMPT, M_RETURNED,
) = range(9)  # fmt: skip
MODE_NAMES = (
    "",
    "debit_retry_cure",
    "debit_due_cure",
    "other_channel",
    "partial_debit",
    "partial_other",
    "roll",
    "preempt_transfer",
    "returned_debit",
)
# Latent client types of an early-delinquent row (truth.py).
T_NONE, T_WAITS, T_FORGOT, T_DISTRESS = range(4)
TYPE_NAMES = ("", "waits_for_payroll", "forgot", "distress")

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


def id_array(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Identifiers such as C00000123: a prefix and a zero-padded number, never personal data."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def choice_str(values: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), pa.array(np.asarray(idx, np.int64)))


def dates(d: np.ndarray) -> pa.Array:
    return pa.array(d.astype("datetime64[D]"), pa.date32())


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class Events:
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
