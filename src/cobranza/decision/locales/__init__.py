"""Reason wording per language: one module per language, so a new language is one new file.

Each module (named by its language code) defines:
- `REASONS`: feature name -> (reason template, words for a null value or None); a template's
  `{value}` is the row's value, with the same format specs in every language;
- `VALUES`: feature -> {category code: words} where a sentence would otherwise carry a code;
- `THOUSANDS_SEPARATOR`, `DECIMAL_SEPARATOR`: how numbers are written;
- `NO_ACTIVE_MANDATE`, `COST_RULE`: the texts of the two rule reasons (`COST_RULE` formats
  `{loss}` and `{action}`);
- `CONTROL_GROUP`: the reason of a row of the experiment's holdout (not to contact).

The feature registry (`cobranza.transforms.registry`) holds meaning, type, group and window; the
words live here. Every language must word every feature (a test checks it).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

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
