"""The fitting steps of a training: the candidate models, and the policy's figures on test.

`fit` runs the optional Optuna search, the causal candidates (`ml.causal`: the self-cure model
without management, naive beside it, and the roll with and without management, chosen out of
time on the randomized rows) and the logistic baseline, and warns when the randomized rows do not
identify the effect of management; `fit_decision_policy` the policy (with that effect's
identification and interval) and its expected figures on the test part once the models are
frozen.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from cobranza.config import Settings
from cobranza.decision.estimates import estimate
from cobranza.decision.loss import expected_cost
from cobranza.decision.policy import ASSIGN, Policy, decide
from cobranza.ml import causal
from cobranza.ml.data import Dataset, TrainingDataError
from cobranza.ml.model import NUM_THREADS, BaselineModel, Fitted
from cobranza.ml.tuning import tune

log = logging.getLogger(__name__)


def fit(
    dataset: Dataset,
    seed: int,
    tune_trials: int | None = None,
    lap: Callable[[str], None] = lambda _step: None,
    info: Callable[[str], None] = lambda _msg: None,
) -> Fitted:
    """LightGBM (its parameters tuned first when `tune_trials`) and the baseline, both calibrated
    on valid; `lap(step)` after each."""
    tuning: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    if tune_trials:
        info(f"tuning LightGBM: {tune_trials} Optuna trials (TPE, seed {seed})")
        params, tuning = tune(dataset, tune_trials, seed)
        lap("tune")
    X_train, y_train = dataset.X("train"), dataset.y("train")
    X_valid, y_valid = dataset.X("valid"), dataset.y("valid")
    try:
        candidates = causal.fit_candidates(dataset, params, seed, NUM_THREADS)
    except causal.CausalDataError as exc:
        raise TrainingDataError(str(exc)) from None
    lap("fit_lightgbm")
    baseline = BaselineModel(dataset.features, dataset.categorical, seed=seed).fit(
        X_train, y_train, X_valid, y_valid
    )
    lap("fit_baseline")
    chosen = causal.evaluate_candidates(dataset, candidates)
    n_control = int(causal.control_rows(dataset.arm("train")).sum())
    if n_control < causal.FEW_CONTROL_ROWS:
        info(
            f"only {n_control} unmanaged training rows (arms HOLDOUT and RULE): the effect of "
            "management is estimated but imprecise; a larger holdout makes it sharper"
        )
    info(
        f"self-cure without management: {chosen.self_cure_method}; roll with and without "
        f"management: {chosen.roll_method} (out of time, {chosen.randomized_rows:,} randomized rows)"
    )
    warning = effect_warning(candidates["roll"][chosen.roll_method])
    if warning:
        log.warning("warning: %s", warning)
    return Fitted(
        candidates["self_cure"][chosen.self_cure_method],
        baseline,
        tuning,
        naive=candidates["self_cure"]["naive"],
        roll=candidates["roll"][chosen.roll_method],
        causal=chosen,
    )


def effect_of(roll: Any) -> dict[str, Any]:
    """The roll model's effect of management as the policy records it: identified or not, and
    its 95% interval on the log-odds (`ml.causal.Effect`)."""
    low, high = getattr(roll, "effect_interval_", (None, None))
    return {
        "effect_identified": bool(getattr(roll, "effect_identified_", True)),
        "effect_low": low,
        "effect_high": high,
    }


def effect_warning(roll: Any) -> str | None:
    """One line when the effect of management is not identified (every eligible obligation is
    then assigned, see decision.policy), else None."""
    effect = effect_of(roll)
    if effect["effect_identified"]:
        return None
    low, high = effect["effect_low"], effect["effect_high"]
    shown = (
        f"95% interval of its log-odds effect on the roll {low:+.3f} to {high:+.3f}"
        if low is not None and high is not None and np.isfinite([low, high]).all()
        else "no randomized rows with both arms and both outcomes to estimate it"
    )
    return (
        f"the randomized holdout does not show that management lowers the roll ({shown}): this "
        "model's policy assigns every eligible obligation (EFFECT_NOT_IDENTIFIED) and the gate "
        "will not promote it over a champion whose effect is identified; a larger holdout "
        "(experiment.holdout_share) identifies it"
    )


def fit_decision_policy(settings: Settings, dataset: Dataset, fitted: Fitted) -> Policy:
    """The policy of the configured costs with its expected figures on the test part (the
    models frozen): expected cost per obligation under the policy and under "assign everyone",
    and the share it leaves to the debit (see decision.policy)."""
    rows = dataset.rows("test")
    costs = settings.costs
    eligible = np.ones(len(rows), dtype=bool)
    est = estimate(fitted.roll, dataset.X("test"), rows, eligible, costs)
    rule = Policy.of(costs, **effect_of(fitted.roll))
    assign = decide(est.expected_benefit, eligible, dataclasses.replace(rule, capacity=None))
    assign = assign == ASSIGN
    cost = expected_cost(assign, est.p_roll_no_action, est.p_roll_action, est.roll_loss, costs)
    everyone = expected_cost(
        eligible, est.p_roll_no_action, est.p_roll_action, est.roll_loss, costs
    )
    return Policy.of(
        costs,
        **effect_of(fitted.roll),
        expected_cost_per_obligation=float(cost.mean()),
        baseline_cost_per_obligation=float(everyone.mean()),
        no_assign_share=float((~assign).mean()),
        n_fit=len(rows),
    )
