"""What the decision needs per row: the roll with and without management, its loss, the benefit.

One function for scoring, online predict, training's policy figures and impact, so that all of
them see the same numbers for the same row (the online-equals-batch tests hold it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cobranza.config import Costs
from cobranza.decision.loss import expected_benefit, roll_loss
from cobranza.errors import CobranzaError
from cobranza.transforms.schema import EXPOSURE


class EstimateError(CobranzaError):
    """The champion has no roll model (trained before the effect-aware decision)."""


@dataclass
class Estimates:
    """Per row; NaN probabilities and benefit where the row is not eligible."""

    p_roll_no_action: np.ndarray
    p_roll_action: np.ndarray
    roll_loss: np.ndarray
    expected_benefit: np.ndarray


def exposure(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(outstanding_balance, product) of each row; a missing column reads as null."""
    n = len(frame)
    balance = (
        pd.to_numeric(frame[EXPOSURE], errors="coerce").to_numpy(dtype=np.float64)
        if EXPOSURE in frame.columns
        else np.full(n, np.nan)
    )
    product = (
        frame["product"].astype(object).to_numpy()
        if "product" in frame.columns
        else np.full(n, None, dtype=object)
    )
    return balance, product


def estimate(
    roll: Any, X: pd.DataFrame | None, frame: pd.DataFrame, eligible: np.ndarray, costs: Costs
) -> Estimates:
    """The roll model's two probabilities on the eligible rows of X (the features of frame's
    rows), each row's roll loss, and the expected benefit of managing it."""
    if roll is None:
        raise EstimateError(
            "the champion has no roll model (what management changes): it was trained before the "
            "effect-aware decision; retrain with `cobranza train`"
        )
    n = len(frame)
    p0, p1 = np.full(n, np.nan), np.full(n, np.nan)
    rows = np.flatnonzero(eligible)
    if len(rows) and X is not None:
        p0[rows], p1[rows] = roll.predict_outcomes(X.iloc[rows])
    balance, product = exposure(frame)
    loss = roll_loss(balance, product, costs)
    return Estimates(p0, p1, loss, expected_benefit(p0, p1, loss, costs))
