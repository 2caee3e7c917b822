"""Drift of features and scores between a reference window and the current population.

Pure functions on pandas frames; PSI is the same one training reports (`ml.metrics.psi`), so a
number read in the model report and in monitoring means the same thing. Beside PSI, a second
reading that does not depend on the binning alone: the two-sample Kolmogorov-Smirnov statistic
(and its p-value) on the known values of a numeric feature, and the Jensen-Shannon distance
(base 2, 0 = same shares, 1 = disjoint) over the PSI's own bins for every feature, categorical
ones included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cobranza.ml.metrics import PSI_FLOOR, psi

WARN_PSI = 0.10
ALERT_PSI = 0.25
# Below this many rows on either side PSI measures sampling noise, not drift: with 10 bins its
# expected value under no drift is about 9 * (1/n_ref + 1/n_cur), 0.18 at 100 rows a side.
MIN_ROWS = 100
# The reference window is sampled down to this many rows (PSI needs no more)
REFERENCE_SAMPLE = 100_000


def status(value: float | None) -> str:
    """The usual credit-risk reading of PSI: < 0.10 stable, < 0.25 watch, else shifted."""
    if value is None or np.isnan(value):
        return "NO_DATA"
    return "OK" if value < WARN_PSI else "WARN" if value < ALERT_PSI else "ALERT"


def categorical_psi(expected: pd.Series, actual: pd.Series) -> float:
    """PSI over category shares; a category unseen in the reference counts with the floor share."""
    e = expected.astype("string").fillna("<null>").value_counts(normalize=True)
    a = actual.astype("string").fillna("<null>").value_counts(normalize=True)
    cats = e.index.union(a.index)
    e = np.maximum(e.reindex(cats, fill_value=0.0).to_numpy(), PSI_FLOOR)
    a = np.maximum(a.reindex(cats, fill_value=0.0).to_numpy(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(expected: pd.Series, actual: pd.Series, n_bins: int = 10) -> float:
    """PSI on the reference deciles of the known values plus one bin of missing values, every
    share taken over all rows (as `ml.metrics.psi` when nothing is missing)."""
    e = pd.to_numeric(expected, errors="coerce").to_numpy(dtype=np.float64)
    a = pd.to_numeric(actual, errors="coerce").to_numpy(dtype=np.float64)
    e_nan, a_nan = np.isnan(e), np.isnan(a)
    if (~e_nan).sum() == 0 or (~a_nan).sum() == 0:
        return categorical_psi(pd.Series(e_nan), pd.Series(a_nan))
    if not e_nan.any() and not a_nan.any():
        return psi(e, a, n_bins)
    known = e[~e_nan]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, n_bins + 1))[1:-1])
    nb = len(edges) + 1

    def shares(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        counts = np.bincount(
            np.searchsorted(edges, values[~missing], side="right"), minlength=nb
        ).astype(np.float64)
        return np.maximum(np.r_[counts, missing.sum()] / len(values), PSI_FLOOR)

    pe, pa = shares(e, e_nan), shares(a, a_nan)
    return float(np.sum((pa - pe) * np.log(pa / pe)))


def category_shares(
    expected: pd.Series, actual: pd.Series
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Categories (missing as "<null>") and their shares on each side, largest reference first."""
    e = expected.astype("string").fillna("<null>").value_counts(normalize=True)
    a = actual.astype("string").fillna("<null>").value_counts(normalize=True)
    cats = list(e.index) + [c for c in a.index if c not in e.index]
    return (
        cats,
        e.reindex(cats, fill_value=0.0).to_numpy(),
        a.reindex(cats, fill_value=0.0).to_numpy(),
    )


def numeric_shares(
    expected: pd.Series, actual: pd.Series, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PSI's bins (reference deciles of the known values, then one bin of missing values):
    inner edges and each side's shares over all rows."""
    e = pd.to_numeric(expected, errors="coerce").to_numpy(dtype=np.float64)
    a = pd.to_numeric(actual, errors="coerce").to_numpy(dtype=np.float64)
    known = e[~np.isnan(e)]
    edges = (
        np.unique(np.quantile(known, np.linspace(0, 1, n_bins + 1))[1:-1])
        if len(known)
        else np.array([])
    )
    nb = len(edges) + 1

    def shares(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        counts = np.bincount(
            np.searchsorted(edges, values[~missing], side="right"), minlength=nb
        ).astype(np.float64)
        return np.r_[counts, missing.sum()] / max(len(values), 1)

    return edges, shares(e), shares(a)


def js_distance(expected: pd.Series, actual: pd.Series, categorical: bool) -> float | None:
    """Jensen-Shannon distance (base 2) between the two sides' shares, over the PSI's bins."""
    from scipy.spatial.distance import jensenshannon

    if len(expected) == 0 or len(actual) == 0:
        return None
    if categorical:
        _, pe, pa = category_shares(expected, actual)
    else:
        _, pe, pa = numeric_shares(expected, actual)
    return float(jensenshannon(pe, pa, base=2))


def ks_test(expected: pd.Series, actual: pd.Series) -> tuple[float | None, float | None]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value on the known values."""
    from scipy.stats import ks_2samp

    e = pd.to_numeric(expected, errors="coerce").dropna().to_numpy(dtype=np.float64)
    a = pd.to_numeric(actual, errors="coerce").dropna().to_numpy(dtype=np.float64)
    if len(e) == 0 or len(a) == 0:
        return None, None
    result = ks_2samp(e, a)
    return float(result.statistic), float(result.pvalue)


def second_test(expected: pd.Series, actual: pd.Series, categorical: bool) -> dict[str, Any]:
    """`ks`, `ks_pvalue` (numeric features; null for categorical ones) and `js` of one feature."""
    ks, p = (None, None) if categorical else ks_test(expected, actual)
    js = js_distance(expected, actual, categorical)
    return {
        "ks": None if ks is None else round(ks, 6),
        "ks_pvalue": None if p is None else float(f"{p:.6g}"),
        "js": None if js is None else round(js, 6),
    }


def feature_drift(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], categorical: list[str]
) -> list[dict[str, Any]]:
    """PSI and status per feature (largest PSI first), with the second test's readings
    (`second_test`) when there are enough rows to judge."""
    rows = []
    cats = set(categorical)
    if min(len(reference), len(current)) < MIN_ROWS:  # nothing judged, no test computed
        return [{"feature": name, "psi": None, "status": "INSUFFICIENT_DATA"} for name in features]
    for name in features:
        fn = categorical_psi if name in cats else numeric_psi
        value = fn(reference[name], current[name])
        rows.append(
            {
                "feature": name,
                "psi": round(value, 6),
                "status": status(value),
                **second_test(reference[name], current[name], name in cats),
            }
        )
    return sorted(rows, key=lambda r: -r["psi"])


def enough_rows(*samples: object) -> bool:
    return min(len(s) for s in samples) >= MIN_ROWS
