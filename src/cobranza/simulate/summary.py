"""The figures a simulate run reports about its world, accumulated chunk by chunk.

- the self-cure rate and the oracle AUC over labeled eligible rows (the scored population);
- the holdout's share of the early-delinquent rows in the holdout window;
- the true effect of management on the roll to 31+ (p_roll_action - p_roll_no_action) over every
  early-delinquency row: its mean and its standard deviation across rows;
- realized roll rates by arm in the labeled history beside the rate the truth implies for those
  same rows (mean p_roll under the treatment received) and the 95% interval of a realized rate
  around it (the outcomes are independent Bernoulli draws: variance sum p (1 - p) / n^2).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pyarrow as pa

from cobranza.contract import ARMS


def oracle_auc(p: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC of scores `p` against binary outcomes `y` (rank formula, ties averaged)."""
    y = np.asarray(y, bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ps = np.asarray(p)[order]
    ranks = np.empty(len(p))
    # average ranks over ties
    _, first, counts = np.unique(ps, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _np(table: pa.Table, name: str, fill=None) -> np.ndarray:
    col = table.column(name)
    if fill is not None:
        col = col.fill_null(fill)
    return col.to_numpy(zero_copy_only=False)


class Summary:
    """Accumulates one run's truth, chunk by chunk (memory: two arrays of the labeled rows)."""

    def __init__(self, holdout_window: tuple) -> None:
        self.window = holdout_window  # (first, last) cut dates of the holdout, numpy dates
        self.p_lab: list[np.ndarray] = []
        self.y_lab: list[np.ndarray] = []
        self.n_early = 0
        self.n_eligible = 0
        self.effect = [0, 0.0, 0.0]  # n, sum, sum of squares
        self.window_arms: dict[str, int] = defaultdict(int)
        # (scope, arm) -> [rows, realized rolls, sum p_roll, sum p (1 - p)]
        self.rolls: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0.0])

    def add(self, outcomes: pa.Table, potential: pa.Table) -> None:
        elig = _np(outcomes, "eligible")
        labeled = _np(outcomes, "labeled")
        sel = labeled & elig
        self.n_early += int(labeled.sum())
        self.n_eligible += int(sel.sum())
        self.p_lab.append(_np(outcomes, "p_true")[sel])
        self.y_lab.append(_np(outcomes, "outcome", 0)[sel].astype(bool))
        eff = _np(potential, "p_roll_action") - _np(potential, "p_roll_no_action")
        self.effect[0] += len(eff)
        self.effect[1] += float(eff.sum())
        self.effect[2] += float((eff**2).sum())
        arm = _np(outcomes, "arm", "")
        cut = _np(outcomes, "cut_date").astype("datetime64[D]")
        in_window = (cut >= self.window[0]) & (cut <= self.window[1])
        for a in ARMS:
            self.window_arms[a] += int((in_window & (arm == a)).sum())
        treated = _np(outcomes, "treated", False).astype(bool)
        p_roll = np.where(
            treated, _np(potential, "p_roll_action"), _np(potential, "p_roll_no_action")
        )
        roll = _np(outcomes, "roll_31_plus", 0)
        for scope, mask in (("history", labeled), ("holdout_window", labeled & in_window)):
            for a in ARMS:
                s = mask & (arm == a)
                acc = self.rolls[(scope, a)]
                acc[0] += int(s.sum())
                acc[1] += int(roll[s].sum())
                acc[2] += float(p_roll[s].sum())
                acc[3] += float((p_roll[s] * (1 - p_roll[s])).sum())

    def _roll_rates(self) -> dict:
        out: dict[str, dict] = {}
        for (scope, arm), (n, rolled, sp, var) in sorted(self.rolls.items()):
            if n == 0:
                continue
            implied = sp / n
            half = 1.96 * math.sqrt(var) / n
            out.setdefault(scope, {})[arm] = {
                "rows": n,
                "realized": round(rolled / n, 4),
                "implied": round(implied, 4),
                "interval_95": [
                    round(max(implied - half, 0.0), 4),
                    round(min(implied + half, 1.0), 4),
                ],
            }
        return out

    def result(self) -> dict:
        p = np.concatenate(self.p_lab) if self.p_lab else np.zeros(0)
        y = np.concatenate(self.y_lab) if self.y_lab else np.zeros(0, bool)
        n, s, ss = self.effect
        mean = s / n if n else None
        sd = math.sqrt(max(ss / n - mean**2, 0.0)) if n else None
        in_window = sum(self.window_arms.values())
        return {
            "labeled_early_delinquent": self.n_early,
            "labeled_eligible": self.n_eligible,
            "self_cure_rate": round(float(y.mean()), 4) if len(y) else None,
            "self_cure_rate_all_early": round(float(y.sum()) / self.n_early, 4)
            if self.n_early
            else None,
            "mean_p_true": round(float(p.mean()), 4) if len(p) else None,
            "oracle_auc": round(oracle_auc(p, y), 4) if len(y) else None,
            "holdout_window_rows": in_window,
            "holdout_share": round(self.window_arms["HOLDOUT"] / in_window, 4)
            if in_window
            else None,
            "effect_on_roll_mean": round(mean, 4) if mean is not None else None,
            "effect_on_roll_sd": round(sd, 4) if sd is not None else None,
            "roll_rates": self._roll_rates(),
        }
