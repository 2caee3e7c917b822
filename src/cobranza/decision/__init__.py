"""Decision layer: the cost-based policy, batch scoring with reason codes, and business impact.

`score` and `impact` import their heavy dependencies (LightGBM, MLflow, matplotlib) on call, so
`cobranza.decision.policy` stays light for training and the API. The impact module is named
`business_impact` so that importing it never replaces the `impact` function of this package.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from cobranza.config import Settings


def score(settings: Settings, as_of: date | None = None, ui=None) -> dict[str, Any]:
    """Score the early-delinquency population of a cut with the champion; publish results."""
    from cobranza.decision.scoring import score as _score

    return _score(settings, as_of=as_of, ui=ui)


def impact(settings: Settings, ui=None) -> dict[str, Any]:
    """Business impact of the champion's policy on out-of-time data and the current population."""
    from cobranza.decision.business_impact import impact as _impact

    return _impact(settings, ui=ui)


__all__ = ["impact", "score"]
