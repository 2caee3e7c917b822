"""Reason wording per language: one module per language, so a new language is one new file.

Each module (named by its language code) defines:
- `REASONS`: feature name -> (reason template, words for a null value or None); a template's
  `{value}` is the row's value, with the same format specs in every language;
- `VALUES`: feature -> {category code: words} where a sentence would otherwise carry a code;
- `LABELLED`: feature -> the kind of `cobranza.labels` whose words its codes read in (products,
  segments: the words the dashboard, the CSV and BI show), for the languages labels has;
- `THOUSANDS_SEPARATOR`, `DECIMAL_SEPARATOR`: how numbers are written;
- `NO_ACTIVE_MANDATE`: the text of the rule reason of an obligation without an active mandate;
- `MANAGEMENT_PAYS`, `MANAGEMENT_DOES_NOT_PAY`, `CAPACITY_LIMITED`: the decision's own reason
  (formats `{p_no}`, `{p_act}`, `{loss}`, `{value}`, `{action}`, `{p_sc}`, `{net}`).
- `CONTROL_GROUP`: the reason of a row of the experiment's holdout (not to contact).
- `EFFECT_NOT_IDENTIFIED` (formats `{low}`, `{high}`: the interval of the change in the odds of
  rolling) and `EFFECT_NOT_ESTIMATED`: the reason of an obligation assigned as today because
  the randomized holdout does not show what management changes.

The feature registry (`cobranza.transforms.registry`) holds meaning, type, group and window; the
words live here. Every language must word every feature (a test checks it).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

from cobranza import labels

DEFAULT = "en"


@functools.cache
def languages() -> tuple[str, ...]:
    """The language codes there is a module for, the default first."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return (DEFAULT, *(code for code in found if code != DEFAULT))


def load(language: str) -> ModuleType:
    """The wording module of a language; ValueError for a language without one."""
    if language not in languages():
        raise ValueError(
            f"unknown reason language {language!r}; use one of {', '.join(languages())}"
        )
    return importlib.import_module(f"{__name__}.{language}")


@functools.cache
def category_words(language: str) -> dict[str, dict[str, str]]:
    """Feature -> {category code: words} in a language: its `VALUES`, and for its `LABELLED`
    features the words of `cobranza.labels` (the same everywhere a person reads a code)."""
    module = load(language)
    words = {feature: dict(codes) for feature, codes in module.VALUES.items()}
    kinds = labels.labels(language) if language in labels.LANGUAGES else {}
    for feature, kind in getattr(module, "LABELLED", {}).items():
        words.setdefault(feature, {}).update(kinds.get(kind, {}))
    return words
