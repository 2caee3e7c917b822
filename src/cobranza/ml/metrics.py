"""Evaluation metrics of a probability of self-cure against the realized label.

Pure numpy functions so that each one can be checked by hand on tiny arrays. Conventions:
- the positive class is `self_cure_debit = 1`; a higher score means more likely to self-cure;
- ECE uses equal-width probability bins (default 10), weighted by the share of rows in each bin;
- PSI bins the scores by the deciles of the reference (train) scores and floors empty bins at
  1e-4 so that the logarithm stays finite;
- deciles for lift and capture are taken on the rows sorted by score descending (stable sort, so
  ties keep the input order and the result is deterministic), decile 1 holding the highest scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

EPS = 1e-15
PSI_FLOOR = 1e-4


def _arrays(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if len(y) != len(p):
        raise ValueError(f"y and p differ in length ({len(y)} != {len(p)})")
    return y, p


def auc(y, p) -> float:
    y, p = _arrays(y, p)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p))


def ks(y, p) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score distributions of both classes."""
    y, p = _arrays(y, p)
    pos, neg = y == 1, y == 0
    if not pos.any() or not neg.any():
        return float("nan")
    thresholds = np.unique(p)
    cdf_pos = np.searchsorted(np.sort(p[pos]), thresholds, side="right") / pos.sum()
    cdf_neg = np.searchsorted(np.sort(p[neg]), thresholds, side="right") / neg.sum()
    return float(np.max(np.abs(cdf_pos - cdf_neg)))


def brier(y, p) -> float:
    y, p = _arrays(y, p)
    return float(np.mean((p - y) ** 2))


def log_loss(y, p) -> float:
    y, p = _arrays(y, p)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration_bins(y, p, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Per equal-width bin: row count, mean predicted probability and observed rate."""
    y, p = _arrays(y, p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "count": count,
            "mean_p": np.where(count > 0, sum_p / count, np.nan),
            "rate": np.where(count > 0, sum_y / count, np.nan),
        }


def ece(y, p, n_bins: int = 10) -> float:
    """Expected calibration error: sum over bins of share_of_rows * |observed - predicted|."""
    bins = calibration_bins(y, p, n_bins)
    count = bins["count"]
    used = count > 0
    weights = count[used] / count.sum()
    return float(np.sum(weights * np.abs(bins["rate"][used] - bins["mean_p"][used])))


def ece_noise(
    p, n_bins: int = 10, draws: int = 200, quantile: float = 0.95, seed: int = 0
) -> float:
    """ECE that a perfectly calibrated model would still show on this sample (its `quantile`).

    Labels are drawn from the probabilities themselves (`draws` times, seeded), so the value is
    the sampling noise of ECE at this size: on ~800 rows it is about 0.04, on 100k about 0.004.
    """
    p = np.asarray(p, dtype=np.float64).ravel()
    if len(p) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    values = [ece((rng.random(len(p)) < p).astype(np.float64), p, n_bins) for _ in range(draws)]
    return float(np.quantile(values, quantile))


def psi(expected, actual, n_bins: int = 10) -> float:
    """Population stability index of `actual` scores against the `expected` (reference) ones."""
    expected = np.asarray(expected, dtype=np.float64).ravel()
    actual = np.asarray(actual, dtype=np.float64).ravel()
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, n_bins + 1))[1:-1])
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1)
    e = np.maximum(e / e.sum(), PSI_FLOOR)
    a = np.maximum(a / a.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def deciles(y, p, n_groups: int = 10) -> list[dict[str, Any]]:
    """Lift and capture by score decile (decile 1 = highest probability of self-cure)."""
    y, p = _arrays(y, p)
    order = np.argsort(-p, kind="stable")
    total_pos = y.sum()
    overall = total_pos / len(y) if len(y) else float("nan")
    out, cum_pos, cum_n = [], 0.0, 0
    for i, chunk in enumerate(np.array_split(order, n_groups), start=1):
        n = len(chunk)
        pos = float(y[chunk].sum())
        cum_pos += pos
        cum_n += n
        rate = pos / n if n else float("nan")
        out.append(
            {
                "decile": i,
                "rows": n,
                "positives": int(pos),
                "min_score": float(p[chunk].min()) if n else float("nan"),
                "rate": rate,
                "lift": rate / overall if overall else float("nan"),
                "cum_capture": cum_pos / total_pos if total_pos else float("nan"),
                "cum_lift": (cum_pos / cum_n) / overall if overall and cum_n else float("nan"),
            }
        )
    return out


def evaluate(y, p) -> dict[str, float]:
    """The headline metrics of one part (train, test, oot)."""
    y, p = _arrays(y, p)
    value = auc(y, p)
    table = deciles(y, p)
    both = len(np.unique(y)) == 2
    return {
        "rows": float(len(y)),
        "target_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_p": float(p.mean()) if len(p) else float("nan"),
        "auc": value,
        "gini": 2 * value - 1,
        "ks": ks(y, p),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": brier(y, p),
        "log_loss": log_loss(y, p),
        "ece": ece(y, p),
        "lift_top_decile": table[0]["lift"],
        "capture_top_decile": table[0]["cum_capture"],
        "capture_top_3_deciles": table[2]["cum_capture"],
    }
