"""Optuna search: seeded TPE on validation AUC, reproducible, within the declared space."""

import pytest

from cobranza.ml.data import load_dataset
from cobranza.ml.tuning import study_params, tune
from tests.ml.conftest import make_lake


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, gold_frame):
    lake, _ = make_lake(tmp_path_factory.mktemp("ml-tune"), gold_frame)
    return load_dataset(lake, 3, 0.25, 42)


def test_tuning_is_seeded_and_scores_on_validation(dataset):
    best_a, history_a = tune(dataset, trials=4, seed=5)
    best_b, history_b = tune(dataset, trials=4, seed=5)
    assert best_a == best_b
    assert history_a == history_b
    assert len(history_a) == 4
    assert set(best_a) == set(study_params())
    # the first trial is the default configuration, so tuning never starts below it
    assert history_a[0]["num_leaves"] == 4
    best_auc = max(h["valid_auc"] for h in history_a)
    assert 0.6 < best_auc < 1
    assert all(h["best_iteration"] >= 1 for h in history_a)
    assert 4 <= best_a["num_leaves"] <= 64
