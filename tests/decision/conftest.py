"""A trained champion on a small gold table in a tmp lake (real MLflow store), scored twice.

Uses the gold-shaped generator of the ML tests (known truth, a few features), so that the decision
layer is checked on a real calibrated LightGBM champion without the whole ETL; the full chain from
a simulated extract runs in test_end_to_end.py.
"""

from __future__ import annotations

import pytest

from cobranza.config import load_settings
from cobranza.lake import Lake
from tests.ml.gold import make_gold, publish_gold


@pytest.fixture(scope="session")
def decision_lake(tmp_path_factory):
    from cobranza.decision.business_impact import impact
    from cobranza.decision.scoring import score
    from cobranza.ml.registry import load_champion
    from cobranza.ml.training import train

    root = tmp_path_factory.mktemp("decision")
    gold = make_gold(clients=600, months=12, seed=11)
    lake = Lake(root / "lake").ensure()
    truth = root / "truth" / "p_true.csv"
    publish_gold(lake, gold, truth)
    settings = load_settings(lake=root / "lake", truth_path=truth, gate={"max_ece": 0.2})
    trained = train(settings)
    first = score(settings)
    second = score(settings)
    return {
        "root": root,
        "lake": lake,
        "gold": gold,
        "settings": settings,
        "trained": trained,
        "first": first,
        "second": second,
        "impact": impact(settings),
        "champion": load_champion(settings),
    }
