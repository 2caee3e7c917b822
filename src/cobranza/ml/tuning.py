"""`cobranza train --tune N`: seeded Optuna TPE trials over LightGBM's parameters.

Sequential and seeded (TPE sampler seed, LightGBM's deterministic mode on one thread), so the same
data and seed give the same best parameters; the first trial is the default parameters, so tuning
never ends worse than not tuning on validation AUC.
"""

from __future__ import annotations

from typing import Any

import optuna

from cobranza.ml import metrics as M
from cobranza.ml.data import Dataset
from cobranza.ml.model import DEFAULT_LGBM_PARAMS, NUM_THREADS, SelfCureModel


def tune(dataset: Dataset, trials: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Optuna TPE (seeded, sequential) over LightGBM parameters; objective = validation AUC."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X_train, y_train = dataset.X("train"), dataset.y("train")
    X_valid, y_valid = dataset.X("valid"), dataset.y("valid")

    def objective(trial: optuna.Trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 500, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
        }
        model = SelfCureModel(
            dataset.features,
            dataset.categorical,
            params=params,
            early_stopping_rounds=50,
            seed=seed,
            num_threads=NUM_THREADS,
        ).fit(X_train, y_train, X_valid, y_valid)
        trial.set_user_attr("best_iteration", model.best_iteration_)
        return M.auc(y_valid, model.raw_score(X_valid))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: DEFAULT_LGBM_PARAMS[k] for k in study_params()})
    study.optimize(objective, n_trials=trials, n_jobs=1, show_progress_bar=False)
    history = [
        {"trial": t.number, "valid_auc": t.value, **t.params, **t.user_attrs} for t in study.trials
    ]
    return dict(study.best_params), history


def study_params() -> tuple[str, ...]:
    return (
        "learning_rate",
        "num_leaves",
        "min_data_in_leaf",
        "feature_fraction",
        "bagging_fraction",
        "lambda_l2",
    )
