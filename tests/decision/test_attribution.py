"""The path attribution is exact on a hand-checkable tree and adds up to the log-odds."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from cobranza.decision.attribution import (
    AttributionError,
    PathTable,
    probability_and_contributions,
)


def stump_and_forest():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = (X[:, 1] + 0.3 * rng.normal(size=2000) > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 20}
    stump = lgb.train({**params, "num_leaves": 2}, lgb.Dataset(X, y), num_boost_round=1)
    forest = lgb.train({**params, "num_leaves": 8}, lgb.Dataset(X, y), num_boost_round=30)
    return X, stump, forest


def test_stump_credits_its_split_feature_with_the_leaf_minus_the_root():
    X, stump, _ = stump_and_forest()
    tree = stump.dump_model()["tree_info"][0]["tree_structure"]
    assert tree["split_feature"] == 1
    root = tree["internal_value"]
    left, right = tree["left_child"]["leaf_value"], tree["right_child"]["leaf_value"]
    table = PathTable(stump, None)
    contrib, raw = table.contributions(stump, X[:200])
    goes_left = X[:200, 1] <= tree["threshold"]
    expected = np.where(goes_left, left - root, right - root)
    np.testing.assert_allclose(contrib[:, 1], expected, rtol=1e-6)  # float32 credits
    assert (contrib[:, [0, 2]] == 0).all()
    assert table.bias == pytest.approx(root)
    np.testing.assert_allclose(raw, stump.predict(X[:200], raw_score=True))


def test_forest_contributions_add_up_and_agree_with_treeshap_on_the_main_feature():
    X, _, forest = stump_and_forest()
    table = PathTable(forest, None)
    contrib, raw = table.contributions(forest, X)
    np.testing.assert_allclose(raw, forest.predict(X, raw_score=True), atol=1e-10)
    np.testing.assert_allclose(contrib.sum(axis=1) + table.bias, raw, atol=1e-4)
    shap = forest.predict(X, pred_contrib=True)[:, :-1]
    # one informative feature: both methods put it first on nearly every row (not on rows where
    # x1 is near its split and contributes little)
    assert (np.abs(contrib).argmax(axis=1) == 1).mean() > 0.95
    assert (np.abs(shap).argmax(axis=1) == 1).mean() > 0.95
    assert (np.abs(contrib).argmax(axis=1) == np.abs(shap).argmax(axis=1)).mean() > 0.95
    assert np.corrcoef(contrib[:, 1], shap[:, 1])[0, 1] > 0.95


def test_unknown_method_and_model_without_contributions_are_clear_errors():
    import pandas as pd

    class NoContributions:
        def predict_proba(self, X):
            return np.full((len(X), 2), 0.5)

    X = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(AttributionError, match="unknown contribution method"):
        probability_and_contributions(NoContributions(), X, ["a"], "magic")
    with pytest.raises(AttributionError, match="no contributions"):
        probability_and_contributions(NoContributions(), X, ["a"], "path")
