"""What bounds the policy's share of the oracle: the form of the estimated effect of management.

Runs on a lake built from the simulator (its truth beside the extract), after `make run`. Fits the
causal candidates as `cobranza train` does (`ml.causal.fit_candidates`, default parameters, no
tuning) and values, out of time, the NO_ASSIGN set of each estimate of the effect of management on
the roll, tau(x) = p_roll_no_action(x) - p_roll_action(x), with the true potential outcomes
(`decision.savings.true_impact`): NO_ASSIGN iff tau x roll_loss < collection_action.

Bounds (they read the truth; not methods):
- `feature_ceiling`: a LightGBM regression of the true tau on the features, fitted on the rows
  before the out-of-time months: about what the best function of these features can do (a
  larger regressor does a little better, see `CEILING`);
- `constant_log_odds_true_p0`: the S-learner's form, tau = p0 - sigmoid(logit p0 + b), with the
  true p0 and the best b of a grid: where a perfect roll model of that form stops;
- `conditional_true`: a constant log-odds effect on the roll of those the debit does not cure,
  tau = s (r0 - sigmoid(logit r0 + b)), s = 1 - p_cure_debit_no_action, r0 = p_roll_no_action / s,
  true, the best b of a grid.

Methods (data only):
- `as_trained`: the roll model training chooses (its OOT log loss on the randomized rows);
- `conditional_estimated`: the conditional form with s from the self-cure S-learner, r0 and r1
  from a roll S-learner fitted on the rows the debit did not cure, its offset b the pooled effect
  on the randomized ones among them (cross-fitted, `ml.causal.pooled_effect`); `_rescaled` has its
  mean before the out-of-time months set to the as-trained model's (the rows the debit did not cure
  are chosen after the treatment: a managed client who pays by transfer before the debit joins
  them without rolling, which inflates b);
- `hurdle_estimated` and `hurdle_true_s`: the conditional form without choosing rows after the
  treatment: p_roll(x, m) = s(x) sigmoid(f(x) + b m) on every row, f a LightGBM with that
  likelihood as its objective (Fisher scoring), b fitted by maximum likelihood on the randomized
  rows before the out-of-time months (with an intercept, over a naive f fitted on the train part:
  in sample there), s from the self-cure S-learner, or the true one (a bound on what learning r
  from outcomes gives);
- `blend`: the mean of `as_trained` and `conditional_estimated_rescaled`;
- `dr_learner`: the doubly robust pseudo-outcome on the randomized rows of the valid and test
  parts (the as-trained roll model never fitted them), regressed on the features (LightGBM, 4
  leaves, at least 2,000 rows a leaf).

What the randomized rows can teach without a form (bounds: they read the truth):
- `pseudo_outcome_true_nuisances`: the same regression of the doubly robust pseudo-outcome, on
  every randomized row before the out-of-time months, with the true p_roll_no_action and
  p_roll_action as its nuisances: its only noise is each row's outcome, the least any per-row
  estimate of the effect has. It reports that noise (`sd_pseudo_outcome`) beside the spread of
  the true effect (`sd_true_effect`), and how closely all those rows pin down the mean effect
  (`mean_effect_half_width_95`);
- `feature_ceiling_randomized_rows`: the ceiling's regressor fitted on the true tau of the same
  rows: the rows are enough when their outcomes carry no noise.

Writes the lake's entry (`--label`) of `benchmarks/results/effect_forms.json`: `make_run`, and
`holdout_30` for a lake whose extract held 30% of the last 12 labeled cuts out (`cobranza simulate
--holdout-share 0.3`, then ingest, etl, train).
Run: `make run`, then `python3 -m uv run python -m benchmarks.bench_effect_forms [--lake lake]
[--label make_run]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit, logit

from cobranza.config import load_settings
from cobranza.decision.estimates import exposure
from cobranza.decision.loss import roll_loss
from cobranza.decision.savings import true_impact
from cobranza.lake import Lake
from cobranza.ml import causal
from cobranza.ml.data import Dataset, attach_potential_outcomes, truth_path
from cobranza.ml.model import SelfCureModel
from cobranza.ml.training import load_split
from cobranza.transforms.schema import ROLL_31_PLUS, TARGET

RESULTS = Path(__file__).parent / "results"
# The ceiling's regressor. It rises with capacity (on the `make run` lake: 0.880 of the oracle with
# 400 trees of 31 leaves, 0.901 with these, 0.908 with 6,000 of 255 leaves at three times the time):
# a lower bound of what the exact expected effect given the features would capture.
CEILING = {"n_estimators": 3000, "learning_rate": 0.02, "num_leaves": 127}
GRID = np.round(np.arange(-3.0, 0.01, 0.1), 2)  # log-odds effects the bounds search
EPS = 1e-4


def capture(tau: np.ndarray, rows: np.ndarray, world: dict) -> float:
    """The share of the oracle's savings of NO_ASSIGN iff tau x roll_loss < action, on `rows`."""
    truth, loss, costs = world["truth"], world["loss"][rows], world["costs"]
    out = true_impact(
        {"policy": tau[rows] * loss < costs.collection_action},
        truth["p_roll_no_action"].to_numpy()[rows],
        truth["p_roll_action"].to_numpy()[rows],
        loss,
        costs,
    )
    return float(out["share_of_oracle_captured"])


def best_on_grid(form, rows: np.ndarray, world: dict) -> dict:
    scores = {float(b): capture(form(b), rows, world) for b in GRID}
    b = max(scores, key=scores.get)
    return {"share_of_oracle_captured": round(scores[b], 4), "log_odds_effect": b}


def with_managed(X: pd.DataFrame, value: float) -> pd.DataFrame:
    return X.assign(**{causal.MANAGED: value})


def categorical_frame(ds: Dataset) -> pd.DataFrame:
    X = ds.frame[ds.features].copy()
    for name in ds.categorical:
        X[name] = X[name].astype("category")
    return X


def all_arms(ds: Dataset) -> np.ndarray:
    """Every row's arm (a row without one was assigned), as `Dataset.arm` gives a part's."""
    return ds.frame["arm"].fillna("ASSIGNED").astype(str).to_numpy(dtype=object)


def conditional_model(ds: Dataset, seed: int, threads: int) -> tuple[causal.RollModel, float]:
    """A roll S-learner on the rows the debit did not cure, with its pooled effect."""
    cured = ds.frame[TARGET].to_numpy(dtype=np.int64) == 1
    sub = Dataset(
        ds.frame.loc[~cured].reset_index(drop=True),
        ds.features,
        ds.categorical,
        ds.part[~cured],
        ds.oot_months,
        gold=ds.gold,
    )

    def naive_roll() -> SelfCureModel:
        return SelfCureModel(
            ds.features,
            ds.categorical,
            params=dict(causal.ROLL_PARAMS),
            calibration="platt",
            seed=seed,
            num_threads=threads,
        )

    effect = causal.pooled_effect(naive_roll, sub, ROLL_31_PLUS, seed)
    roll = causal.RollModel(ds.features, ds.categorical, "s_learner", seed, threads).fit(
        sub.X("train"),
        sub.managed("train"),
        sub.roll("train"),
        sub.X("valid"),
        sub.managed("valid"),
        sub.roll("valid"),
        effect=effect,
    )
    return roll, float(effect.estimate)


class Hurdle:
    """p_roll = s sigmoid(f + offset): a LightGBM of f under that likelihood, s fixed per row."""

    def __init__(self, seed: int, threads: int):
        self.seed, self.threads = seed, threads

    @staticmethod
    def _objective(s: np.ndarray):
        def objective(raw: np.ndarray, data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
            sig = expit(raw)
            p = np.clip(s * sig, 1e-9, 1 - 1e-9)
            y = data.get_label()
            grad = -y * (1 - sig) + (1 - y) * s * sig * (1 - sig) / (1 - p)
            return grad, np.maximum(s * sig * (1 - sig) ** 2 / (1 - p), 1e-9)  # Fisher

        return objective

    @staticmethod
    def _loss(s: np.ndarray):
        def loss(raw: np.ndarray, data: lgb.Dataset) -> tuple[str, float, bool]:
            p = np.clip(s * expit(raw), 1e-9, 1 - 1e-9)
            y = data.get_label()
            return (
                "hurdle_log_loss",
                float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
                False,
            )

        return loss

    def fit(self, X, y, s, offset, X_valid, y_valid, s_valid, offset_valid) -> Hurdle:
        train = lgb.Dataset(X, y, init_score=offset, free_raw_data=False)
        valid = lgb.Dataset(X_valid, y_valid, init_score=offset_valid, reference=train)
        params = {
            **causal.ROLL_PARAMS,
            "learning_rate": 0.05,
            "objective": self._objective(s),
            "seed": self.seed,
            "num_threads": self.threads,
            "verbose": -1,
        }
        self.booster_ = lgb.train(
            params,
            train,
            2000,
            valid_sets=[valid],
            feval=self._loss(s_valid),
            callbacks=[lgb.early_stopping(50, verbose=False)],
        )
        return self

    def raw(self, X) -> np.ndarray:
        return self.booster_.predict(X, raw_score=True)


def hurdle(ds: Dataset, s: np.ndarray, seed: int, threads: int) -> tuple[np.ndarray, float]:
    """tau = s (sigmoid(f) - sigmoid(f + b)) and b, from every labeled row (no row chosen after
    the treatment)."""
    frame = ds.frame
    X = categorical_frame(ds)
    y = frame[ROLL_31_PLUS].fillna(0).to_numpy(dtype=np.float64)
    arms = all_arms(ds)
    managed = (arms == "ASSIGNED").astype(np.float64)
    train, valid = ds.part == "train", ds.part == "valid"

    def fitted(b: float) -> Hurdle:
        return Hurdle(seed, threads).fit(
            X[train], y[train], s[train], b * managed[train],
            X[valid], y[valid], s[valid], b * managed[valid],
        )  # fmt: skip

    naive = fitted(0.0).raw(X)
    rows = causal.randomized_rows(arms, frame["cut_date"].to_numpy()) & (ds.part != "oot")
    best = (np.inf, 0.0)
    for c in np.linspace(-1.0, 1.0, 21):  # an intercept: the naive f learnt managed rows
        for b in GRID:
            p = np.clip(s[rows] * expit(naive[rows] + c + b * managed[rows]), 1e-9, 1 - 1e-9)
            yy = y[rows]
            loss = float(-np.mean(yy * np.log(p) + (1 - yy) * np.log(1 - p)))
            best = min(best, (loss, float(b)))
    b = best[1]
    f = fitted(b).raw(X)
    return s * (expit(f) - expit(f + b)), b


def randomized_arms(ds: Dataset, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(managed, propensity) per row; the propensity on `rows` is their cut's assigned share."""
    frame = ds.frame
    arms = all_arms(ds)
    cuts = frame["cut_date"].to_numpy()
    managed = (arms == "ASSIGNED").astype(np.float64)
    e = np.zeros(len(frame))
    for cut in np.unique(cuts[rows]):
        at = rows & (cuts == cut)
        e[at] = managed[at].mean()
    return managed, np.clip(e, 1e-3, 1 - 1e-3)


def pseudo_outcome(ds: Dataset, rows: np.ndarray, mu0: np.ndarray, mu1: np.ndarray) -> np.ndarray:
    """The doubly robust pseudo-outcome of the roll's effect: unbiased for tau(x) on randomized
    rows whatever mu0 and mu1 are, with the least noise when they are the true ones."""
    managed, e = randomized_arms(ds, rows)
    y = ds.frame[ROLL_31_PLUS].fillna(0).to_numpy(dtype=np.float64)
    return (mu0 - mu1) + (1 - managed) * (y - mu0) / (1 - e) - managed * (y - mu1) / e


def effect_regressor(seed: int) -> lgb.LGBMRegressor:
    """A small, heavily regularised regressor for noisy pseudo-outcomes."""
    return lgb.LGBMRegressor(
        n_estimators=200,
        learning_rate=0.02,
        num_leaves=4,
        min_child_samples=2000,
        reg_lambda=10.0,
        random_state=seed,
        verbose=-1,
    )


def dr_learner(ds: Dataset, mu0: np.ndarray, mu1: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """tau from the doubly robust pseudo-outcome of the randomized valid and test rows, and the
    number of control rows among them."""
    arms = all_arms(ds)
    rows = causal.randomized_rows(arms, ds.frame["cut_date"].to_numpy())
    rows &= np.isin(ds.part, ("valid", "test"))
    psi = pseudo_outcome(ds, rows, mu0, mu1)
    X = categorical_frame(ds)
    tau = effect_regressor(seed).fit(X[rows], psi[rows]).predict(X)
    return tau, int((rows & (arms != "ASSIGNED")).sum())


def true_nuisances(ds: Dataset, truth: pd.DataFrame, world: dict, seed: int) -> dict:
    """What the randomized rows before the out-of-time months can teach of tau(x) without a form:
    the doubly robust pseudo-outcome with the true p_roll_no_action and p_roll_action (its only
    noise is the draw of each row's outcome, the least any per-row estimate has), regressed on
    the features; beside it, the ceiling's regressor fitted on the true tau of the same rows."""
    p0 = truth["p_roll_no_action"].to_numpy()
    p1 = truth["p_roll_action"].to_numpy()
    tau_true = p0 - p1
    frame = ds.frame
    arms = all_arms(ds)
    rows = causal.randomized_rows(arms, frame["cut_date"].to_numpy()) & (ds.part != "oot")
    rows &= frame[ROLL_31_PLUS].notna().to_numpy() & np.isfinite(tau_true)
    known = (ds.part == "oot") & np.isfinite(tau_true)
    psi = pseudo_outcome(ds, rows, np.nan_to_num(p0), np.nan_to_num(p1))
    X = categorical_frame(ds)
    learnt = effect_regressor(seed).fit(X[rows], psi[rows]).predict(X)
    noise_free = lgb.LGBMRegressor(**CEILING, random_state=seed, verbose=-1)
    noise_free = noise_free.fit(X[rows], tau_true[rows]).predict(X)
    n = int(rows.sum())
    sd = float(psi[rows].std())
    return {
        "pseudo_outcome_true_nuisances": {
            **_method(learnt, tau_true, known, world),
            "rows": n,
            "control_rows": int((rows & (arms != "ASSIGNED")).sum()),
            "sd_pseudo_outcome": round(sd, 4),
            "sd_true_effect": round(float(tau_true[rows].std()), 4),
            "mean_true_effect": round(float(tau_true[rows].mean()), 4),
            # the 95% half-width of the mean effect that all these rows together pin down
            "mean_effect_half_width_95": round(causal.Z95 * sd / np.sqrt(n), 4),
        },
        "feature_ceiling_randomized_rows": _method(noise_free, tau_true, known, world),
    }


def run(lake_path: Path, threads: int) -> dict:
    t0 = time.perf_counter()
    settings = load_settings(lake=lake_path)
    lake = Lake(settings.lake)
    ds = load_split(lake, settings, lambda _: None)  # the rows and parts `cobranza train` uses
    truth = attach_potential_outcomes(ds.frame, truth_path(settings, lake))
    if truth is None or truth["p_roll_no_action"].isna().all():
        raise SystemExit(f"{lake_path}: no simulator truth beside the extract; run `make run`")
    balance, product = exposure(ds.frame)
    world = {
        "truth": truth,
        "loss": roll_loss(balance, product, settings.costs),
        "costs": settings.costs,
    }
    oot = ds.part == "oot"
    known = oot & truth["p_roll_no_action"].notna().to_numpy()
    before = ~oot
    seed = settings.seed

    candidates = causal.fit_candidates(ds, {}, seed, threads)
    evaluation = causal.evaluate_candidates(ds, candidates)
    roll = candidates["roll"][evaluation.roll_method]
    X = ds.frame[ds.features]
    mu0, mu1 = roll.predict_outcomes(X)
    tau_trained = mu0 - mu1

    p0 = truth["p_roll_no_action"].to_numpy()
    pc0 = truth["p_cure_debit_no_action"].to_numpy()
    tau_true = p0 - truth["p_roll_action"].to_numpy()
    s_true = 1 - pc0
    r0_true = np.clip(p0 / np.maximum(s_true, EPS), EPS, 1 - EPS)
    p0_true = np.clip(p0, EPS, 1 - EPS)

    Xc = categorical_frame(ds)
    fit_rows = before & np.isfinite(tau_true)
    ceiling = lgb.LGBMRegressor(**CEILING, random_state=seed, verbose=-1).fit(
        Xc[fit_rows], tau_true[fit_rows]
    )

    self_cure = candidates["self_cure"]["s_learner"]
    s_hat = 1 - self_cure.predict_proba(with_managed(X, 0.0))[:, 1]
    conditional, b_conditional = conditional_model(ds, seed, threads)
    r0, r1 = conditional.predict_outcomes(X)
    tau_conditional = s_hat * (r0 - r1)
    scale = tau_trained[before].mean() / tau_conditional[before].mean()
    tau_dr, dr_controls = dr_learner(ds, mu0, mu1, seed)
    tau_hurdle, b_hurdle = hurdle(ds, s_hat, seed, threads)
    s_known = np.where(np.isfinite(s_true), s_true, s_hat)
    tau_hurdle_true_s, b_hurdle_true_s = hurdle(ds, s_known, seed, threads)

    forms = {
        "as_trained": {
            "method": evaluation.roll_method,
            "share_of_oracle_captured": round(capture(tau_trained, known, world), 4),
            "corr_with_true_effect": _corr(tau_trained, tau_true, known),
        },
        "feature_ceiling": _method(ceiling.predict(Xc), tau_true, known, world),
        "constant_log_odds_true_p0": best_on_grid(
            lambda b: p0_true - expit(logit(p0_true) + b), known, world
        ),
        "conditional_true": best_on_grid(
            lambda b: s_true * (r0_true - expit(logit(r0_true) + b)), known, world
        ),
        "conditional_estimated": {
            **_method(tau_conditional, tau_true, known, world),
            "log_odds_effect": round(b_conditional, 4),
        },
        "conditional_estimated_rescaled": {
            **_method(tau_conditional * scale, tau_true, known, world),
            "scale": round(float(scale), 4),
        },
        "hurdle_estimated": {
            **_method(tau_hurdle, tau_true, known, world),
            "log_odds_effect": b_hurdle,
        },
        "hurdle_true_s": {
            **_method(tau_hurdle_true_s, tau_true, known, world),
            "log_odds_effect": b_hurdle_true_s,
        },
        "blend": _method(0.5 * (tau_trained + scale * tau_conditional), tau_true, known, world),
        "dr_learner": {
            **_method(tau_dr, tau_true, known, world),
            "control_rows": dr_controls,
        },
        **true_nuisances(ds, truth, world, seed),
    }
    return {
        "lake": str(lake_path),
        "oot_months": ds.oot_months,
        "oot_rows_with_truth": int(known.sum()),
        "true_mean_effect_oot": round(float(tau_true[known].mean()), 4),
        "forms": forms,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": {"python": platform.python_version()},
    }


def _corr(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> float:
    return round(float(np.corrcoef(a[rows], b[rows])[0, 1]), 4)


def _method(tau: np.ndarray, tau_true: np.ndarray, rows: np.ndarray, world: dict) -> dict:
    return {
        "share_of_oracle_captured": round(capture(tau, rows, world), 4),
        "corr_with_true_effect": _corr(tau, tau_true, rows),
        "mean_effect": round(float(tau[rows].mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=Path("lake"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", default="make_run", help="the lake's entry in effect_forms.json")
    args = parser.parse_args()
    result = run(args.lake, args.threads)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "effect_forms.json"
    entries = json.loads(path.read_text()) if path.exists() else {}
    entries = {k: v for k, v in entries.items() if isinstance(v, dict) and "forms" in v}
    entries[args.label] = result
    path.write_text(json.dumps(entries, indent=2) + "\n")
    print(json.dumps(result["forms"], indent=2))


if __name__ == "__main__":
    main()
