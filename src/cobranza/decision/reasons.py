"""Reason codes: the top three features behind each decision, from the model's own contributions.

The contributions are the per-row, per-feature log-odds terms of the champion's own trees
(`cobranza.decision.attribution`: the exact decomposition along each row's decision path by default,
TreeSHAP on request), not a surrogate. Direction follows the decision: a NO_ASSIGN row shows its
strongest positive contributions (why it should self-cure through the debit), an ASSIGN row its
strongest negative ones (why it should not). A feature pushing against the decision is never shown
as its reason: such slots stay empty. Everything is batch numpy (argpartition over the matrix,
texts formatted once per distinct (feature, value)), no Python loop over rows.

Codes are the feature names upper-cased (`debit_success_rate_3m` -> `DEBIT_SUCCESS_RATE_3M`); texts
come from the plain-words templates of the reason language's locale (`cobranza.decision.locales`,
one module per language), with "<feature> = <value>" when a feature has no template; a null reads
as what it means there (e.g. "no fully successful debit in 12 months").
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd

from cobranza.decision import locales

N_REASONS = 3
SIGNIFICANT_DIGITS = 3
LANGUAGES = locales.languages()
NO_ACTIVE_MANDATE = "NO_ACTIVE_MANDATE"
NO_ACTIVE_MANDATE_TEXTS = {lang: locales.load(lang).NO_ACTIVE_MANDATE for lang in LANGUAGES}
NO_ACTIVE_MANDATE_TEXT = NO_ACTIVE_MANDATE_TEXTS[locales.DEFAULT]
# The decision's own reason (decision.policy): which probabilities and costs decided the row.
MANAGEMENT_PAYS = "MANAGEMENT_PAYS"
MANAGEMENT_DOES_NOT_PAY = "MANAGEMENT_DOES_NOT_PAY"
CAPACITY_LIMITED = "CAPACITY_LIMITED"
# The randomized holdout does not show what management changes: assigned as today.
EFFECT_NOT_IDENTIFIED = "EFFECT_NOT_IDENTIFIED"
DECISION_CODES = (MANAGEMENT_PAYS, MANAGEMENT_DOES_NOT_PAY, CAPACITY_LIMITED, EFFECT_NOT_IDENTIFIED)
# A row of the experiment's randomized holdout: NO_ASSIGN as a control group, not to contact.
CONTROL_GROUP = "CONTROL_GROUP"
CONTROL_GROUP_TEXTS = {lang: locales.load(lang).CONTROL_GROUP for lang in LANGUAGES}


def decision_reason(
    assign: bool,
    limited: bool,
    p_self_cure: float,
    p_roll_no_action: float,
    p_roll_action: float,
    roll_loss: float,
    collection_action: float,
    language: str = "en",
    *,
    policy: Any = None,
) -> tuple[str, str]:
    """(code, text) of an eligible row's decision: the roll risks with and without management,
    the roll's loss, what managing prevents in pesos against the action, the self-cure. Under a
    `policy` (`decision.policy.Policy`) whose effect of management is not identified, an ASSIGN
    row's reason is that: the holdout does not show what management changes, with the interval."""
    _check_language(language)
    loc = locales.load(language)
    if policy is not None and not policy.effect_identified and assign and not limited:
        return EFFECT_NOT_IDENTIFIED, effect_not_identified_text(policy, language)
    value = (p_roll_no_action - p_roll_action) * roll_loss
    code = CAPACITY_LIMITED if limited else MANAGEMENT_PAYS if assign else MANAGEMENT_DOES_NOT_PAY
    template = getattr(loc, code)
    fields = {
        "p_no": _localized(float(p_roll_no_action), language),
        "p_act": _localized(float(p_roll_action), language),
        "loss": _localized(round(float(roll_loss)), language),
        "value": _localized(round(float(value)), language),
        "action": _localized(round(float(collection_action)), language),
        "net": _localized(round(float(value - collection_action)), language),
        "p_sc": _localized(float(p_self_cure), language),
    }
    return code, template.format(**fields)


def effect_not_identified_text(policy: Any, language: str = "en") -> str:
    """The words of EFFECT_NOT_IDENTIFIED: the interval of management's effect as a change in
    the odds of rolling (exp(log-odds) - 1), or that there was nothing to estimate it from."""
    loc = locales.load(_check_language(language))
    low, high = policy.effect_low, policy.effect_high
    if low is None or high is None:
        return loc.EFFECT_NOT_ESTIMATED

    def change(log_odds: float) -> float:
        return _localized(math.expm1(min(float(log_odds), 50.0)), language)

    return loc.EFFECT_NOT_IDENTIFIED.format(low=change(low), high=change(high))


def prepend_rule_reason(
    reasons: dict[str, np.ndarray], rows: np.ndarray, code: str, texts: np.ndarray
) -> None:
    """Make a rule the first reason of `rows`, the model's first two reasons second and third."""
    if not rows.any():
        return
    for i in range(N_REASONS, 1, -1):
        for part in ("code", "text", "contribution"):
            reasons[f"reason_{i}_{part}"][rows] = reasons[f"reason_{i - 1}_{part}"][rows]
    reasons["reason_1_code"][rows] = code
    reasons["reason_1_text"][rows] = texts
    reasons["reason_1_contribution"][rows] = np.nan


def reason_code(feature: str) -> str:
    return feature.upper()


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unknown reason language {language!r}; use one of {', '.join(LANGUAGES)}")
    return language


def feature_templates(language: str = "en") -> dict[str, str]:
    """Plain-words template per feature name, from the language's locale."""
    _check_language(language)
    return {name: reason for name, (reason, _) in locales.load(language).REASONS.items()}


@functools.cache
def _missing_texts(language: str) -> dict[str, str]:
    return {
        name: missing for name, (_, missing) in locales.load(language).REASONS.items() if missing
    }


@functools.cache
def _number_types(language: str) -> tuple[type, type] | None:
    """float and int types that format with the language's separators, or None for Python's."""
    loc = locales.load(language)
    if (loc.THOUSANDS_SEPARATOR, loc.DECIMAL_SEPARATOR) == (",", "."):
        return None
    table = str.maketrans({",": loc.THOUSANDS_SEPARATOR, ".": loc.DECIMAL_SEPARATOR})

    class _Float(float):
        def __format__(self, spec: str) -> str:
            return format(float(self), spec).translate(table)

    class _Int(int):
        def __format__(self, spec: str) -> str:
            return format(int(self), spec).translate(table)

    return _Float, _Int


def _localized(value: int | float, language: str) -> int | float:
    """A number that formats in the language's way (Spanish: 1.390.000 and 1,5)."""
    types = _number_types(language)
    if types is None:
        return value
    return types[1](value) if isinstance(value, int) else types[0](value)


def top_reasons(
    contributions: np.ndarray, no_assign: np.ndarray, k: int = N_REASONS
) -> tuple[np.ndarray, np.ndarray]:
    """Feature index (-1 = none) and contribution of the k strongest reasons per row, strongest first.

    `contributions` is rows x features (log-odds, without the bias term).
    """
    c = np.asarray(contributions)
    if c.dtype.kind != "f":
        c = c.astype(np.float64)  # float32 stays float32: half the memory traffic
    n, f = c.shape
    no_assign = np.asarray(no_assign, dtype=bool).reshape(n, 1)
    signed = np.where(no_assign, c, -c)  # larger = supports the decision more
    signed = np.nan_to_num(signed, nan=-np.inf)
    k_eff = min(k, f)
    if k_eff < f:
        part = np.argpartition(-signed, k_eff - 1, axis=1)[:, :k_eff]
    else:
        part = np.broadcast_to(np.arange(f), (n, f)).copy()
    part_vals = np.take_along_axis(signed, part, axis=1)
    order = np.argsort(-part_vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    strength = np.take_along_axis(part_vals, order, axis=1)
    contrib = np.take_along_axis(c, idx, axis=1)
    supports = strength > 0
    idx = np.where(supports, idx, -1)
    contrib = np.where(supports, contrib, np.nan).astype(np.float64)
    if k_eff < k:
        pad = k - k_eff
        idx = np.hstack([idx, np.full((n, pad), -1)])
        contrib = np.hstack([contrib, np.full((n, pad), np.nan)])
    return idx, contrib


def display_value(value: Any) -> Any:
    """A value as a reason text shows it: bools as bools, whole numbers as ints."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isfinite(v) and v.is_integer() and abs(v) < 1e15:
            return int(v)
        return v
    if isinstance(value, np.integer):
        return int(value)
    return value


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def format_reason(feature: str, value: Any, template: str | None, language: str = "en") -> str:
    """One reason text: the template filled with the value, or "<feature> = <value>"; for a null,
    the registry's words for what the null means, or "<feature>: no data"."""
    if _missing(value):
        return _missing_texts(_check_language(language)).get(feature) or f"{feature}: no data"
    v = display_value(value)
    if isinstance(v, str):
        v = locales.category_words(language).get(feature, {}).get(v, v)
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        v = _localized(v, language)
    if template:
        try:
            return template.format(v, value=v, **{feature: v})
        except (KeyError, ValueError, IndexError, TypeError, AttributeError):
            pass
    if isinstance(v, float):
        return f"{feature} = {v:.4g}"
    return f"{feature} = {v}"


def significant(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """Fractional values rounded to a few significant digits: plain words need no more, and few
    distinct values means few texts to format (a million ratios become a few thousand).

    Whole numbers stay as they are, value by value: a count or an amount in pesos reads the same
    whether or not other rows of the batch made its column float (a null turns int64 to float64),
    so a reason text never depends on which rows were scored with it.
    """
    if values.dtype.kind != "f":
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.floor(np.log10(np.abs(values)))
        scale = np.where(np.isfinite(exponent), 10.0 ** (exponent - (digits - 1)), 1.0)
        rounded = np.round(values / scale) * scale
    return np.where(values == np.trunc(values), values, rounded)


def reason_columns(
    idx: np.ndarray,
    contrib: np.ndarray,
    features: pd.DataFrame,
    feature_names: list[str],
    templates: dict[str, str] | None = None,
    language: str = "en",
) -> dict[str, np.ndarray]:
    """reason_i_code / reason_i_text / reason_i_contribution arrays (object, object, float)."""
    templates = feature_templates(language) if templates is None else templates
    n, k = idx.shape
    codes_by_feature = np.array([reason_code(f) for f in feature_names] + [None], dtype=object)
    out: dict[str, np.ndarray] = {}
    for r in range(k):
        col = idx[:, r]
        code = codes_by_feature[col]  # -1 picks the trailing None
        text = np.full(n, None, dtype=object)
        for j in np.unique(col[col >= 0]):
            rows = np.flatnonzero(col == j)
            name = feature_names[j]
            values = significant(features[name].to_numpy()[rows])
            codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
            formatted = np.array(
                [format_reason(name, u, templates.get(name), language) for u in uniques]
                + [format_reason(name, None, None, language)],
                dtype=object,
            )
            text[rows] = formatted[codes]  # -1 (missing) picks the "no data" text
        out[f"reason_{r + 1}_code"] = code
        out[f"reason_{r + 1}_text"] = text
        out[f"reason_{r + 1}_contribution"] = contrib[:, r].astype(np.float64)
    return out
