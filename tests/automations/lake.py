"""A small trained and scored lake for the consumption tests (BI views, Power BI, n8n templates).

Gold is the ML tests' known-truth generator (12 monthly cuts, the last unlabeled); a real LightGBM
champion is trained into the lake's MLflow store, then three scoring runs are published: the
2025-10-31 cut (labeled: its outcomes are known), the latest cut, and the latest cut again (a
re-scored cut that supersedes the previous run), then the business impact and a monitoring run.
With `extract`, a simulated extract is ingested first, so the raw zone has its quarantine.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from cobranza.config import load_settings
from cobranza.lake import Lake
from tests.ml.gold import make_gold, publish_gold

PAST_CUT = date(2025, 10, 31)


def build_scored_lake(root: Path, extract: Path | None = None) -> dict[str, Any]:
    from cobranza.decision.business_impact import impact
    from cobranza.decision.scoring import score
    from cobranza.ml.training import train
    from cobranza.monitoring.monitor import monitor

    gold = make_gold(clients=500, months=12, seed=23)
    lake = Lake(root / "lake").ensure()
    truth = root / "truth" / "p_true.csv"
    settings = load_settings(lake=root / "lake", truth_path=truth, gate={"max_ece": 0.5})
    ingested = None
    if extract is not None:
        from cobranza.contract import STANDARD
        from cobranza.ingest import ingest_extract

        ingested = ingest_extract(settings, extract, STANDARD)
    publish_gold(lake, gold, truth)
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
        "monitor": monitor(settings),
        "ingest": ingested,
    }
