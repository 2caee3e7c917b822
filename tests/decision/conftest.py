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


CHALLENGER_SHARE = 0.3


@pytest.fixture(scope="session")
def challenger_lake(tmp_path_factory):
    """A champion and a challenger registered on one small gold table, and one scoring run.

    The challenger is a real training the gate refuses (another seed, so another model; a PSI
    limit no model meets), which is how a challenger gets its alias. A larger challenger share
    than the default gives the arm enough rows on one cut.
    """
    from cobranza.decision.scoring import score
    from cobranza.ml.registry import load_challenger, load_champion
    from cobranza.ml.training import train

    root = tmp_path_factory.mktemp("challenger")
    gold = make_gold(clients=600, months=12, seed=11)
    # the experiment report reads the any-channel cure too: here the debit's cures only
    gold["cure_any"] = gold["self_cure_debit"]
    lake = Lake(root / "lake").ensure()
    publish_gold(lake, gold)
    common = dict(
        lake=root / "lake",
        pseudonym_key="decision-challenger-tests-key-5f2a9c7e41b8d036",
        experiment={"holdout_share": 0.1, "challenger_share": CHALLENGER_SHARE},
    )
    settings = load_settings(**common, gate={"max_ece": 0.2})
    first = train(settings)
    refused = train(load_settings(**common, seed=5, gate={"max_ece": 0.2, "max_psi": 0.0}))
    assert first.alias == "champion" and refused.alias == "challenger"
    return {
        "root": root,
        "lake": lake,
        "gold": gold,
        "settings": settings,
        "champion": load_champion(settings),
        "challenger": load_challenger(settings),
        "scored": score(settings),
    }
