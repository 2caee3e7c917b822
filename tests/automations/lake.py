"""A small trained and scored lake for the consumption tests (BI views, n8n templates).

Gold is the ML tests' known-truth generator (12 monthly cuts, the last unlabeled); a real LightGBM
champion is trained into the lake's MLflow store, then three scoring runs are published: the
2025-10-31 cut (labeled: its outcomes are known), the latest cut, and the latest cut again (a
re-scored cut that supersedes the previous run), then the business impact.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from cobranza.config import load_settings
from cobranza.lake import Lake
from tests.ml.gold import make_gold, publish_gold

PAST_CUT = date(2025, 10, 31)


def build_scored_lake(root: Path) -> dict[str, Any]:
    from cobranza.decision.business_impact import impact
    from cobranza.decision.scoring import score
    from cobranza.ml.training import train

    gold = make_gold(clients=500, months=12, seed=23)
    lake = Lake(root / "lake").ensure()
    truth = root / "truth" / "p_true.csv"
    publish_gold(lake, gold, truth)
    settings = load_settings(lake=root / "lake", truth_path=truth, gate={"max_ece": 0.5})
    trained = train(settings)
    past = score(settings, as_of=PAST_CUT)
    superseded = score(settings)
    latest = score(settings)
    return {
        "lake": lake,
        "settings": settings,
        "gold": gold,
        "trained": trained,
        "past": past,
        "superseded": superseded,
        "latest": latest,
        "impact": impact(settings),
    }
