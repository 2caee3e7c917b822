"""The causal models: what happens to an obligation without management, and what management changes.

History holds almost only managed obligations; the randomized holdout (arm HOLDOUT) and the legacy
rule (arm RULE, decided on observed features) show the rest. Two estimates come from it:

- **self-cure without management** (the seed's probability, now the decision's counterfactual):
  candidates are the naive model (every row, treatment ignored: it estimates self-cure *under the
  bank's policy*) and an S-learner (the treatment `managed` as one more feature, predicted with
  `managed = 0`). The one with the lower out-of-time log loss on the randomized control rows
  (arm HOLDOUT) is kept; the naive one is always kept beside it for comparison.
- **roll to 31+ days with and without management**: an S-learner whose trees may only lower the
  roll when `managed` goes from 0 to 1 (a monotone constraint: a call never makes a client roll),
  or a T-learner (one model per arm). The one with the lower out-of-time log loss on the
  randomized rows, each predicted in the arm it was actually in, is kept. Both estimate
  p_roll_no_action(x) and p_roll_action(x); their difference is the effect of management (uplift).
  Both carry the pooled log-odds effect of management on the roll with its 95% interval and
  whether it is identified (`Effect`: the interval's upper bound below 0), which the policy takes
  as data: an effect that is not identified assigns every eligible obligation.

Why not causalml or econml: both fit and predict through their own estimators, so the serving
path (the online path tables, the calibrated, monotone LightGBM, the reason codes) would need a
second model format; an S- or T-learner on the project's own LightGBM is a few lines. The
uplift evaluation (Qini curve, predicted against observed effect by decile) is written here for
the same reason; scikit-uplift, which has one, is unmaintained since 2022.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from cobranza.ml.data import client_fraction
from cobranza.ml.model import SelfCureModel
from cobranza.transforms.schema import ARM, ROLL_31_PLUS, TARGET

MANAGED = "managed"  # the treatment feature: 1 when the obligation was assigned to collections
CONTROL_ARMS = ("HOLDOUT", "RULE")
RANDOMIZED_CONTROL = "HOLDOUT"
ROLL_PARAMS = {"num_leaves": 8, "min_data_in_leaf": 100, "lambda_l2": 10.0}


def _with_treatment(X: pd.DataFrame, value: float | np.ndarray) -> pd.DataFrame:
    return X.assign(**{MANAGED: value})


def crossfit_raw(
    make_model, dataset: Any, outcome: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, raw): every row before the out-of-time months (train, valid and test parts) with
    its naive log-odds from a model that never saw its client: two folds by client, each model
    fitted on the other fold's train and test rows and early-stopped on that fold's valid rows.
    In-sample scores would have learnt part of the treatment's effect on the control rows and
    shrink `log_odds_effect`; pooling the three parts uses every randomized row there is."""
    frame = dataset.frame
    before = np.asarray(dataset.part) != "oot"
    rows = np.flatnonzero(before)
    X = frame.iloc[rows][dataset.features]
    y = frame.iloc[rows][outcome].fillna(0).to_numpy(dtype=np.int64)
    part = np.asarray(dataset.part)[rows]
    fold = client_fraction(frame.iloc[rows]["client_key"], seed, "crossfit") < 0.5
    raw = np.zeros(len(rows))
    for side in (True, False):
        fit_rows = (fold != side) & (part != "valid")
        stop_rows = (fold != side) & (part == "valid")
        if len(np.unique(y[fit_rows])) < 2 or len(np.unique(y[stop_rows])) < 2:
            continue
        model = make_model().fit(X[fit_rows], y[fit_rows], X[stop_rows], y[stop_rows])
        raw[fold == side] = model.raw_score(X[fold == side])
    return rows, raw


def pooled_effect(make_model, dataset: Any, outcome: str, seed: int) -> Effect:
    """`log_odds_effect` on the randomized rows before the out-of-time months, with cross-fitted
    naive log-odds (`crossfit_raw`)."""
    rows, raw = crossfit_raw(make_model, dataset, outcome, seed)
    frame = dataset.frame.iloc[rows]
    arms = (
        frame[ARM].fillna("ASSIGNED").astype(str).to_numpy(dtype=object)
        if ARM in frame
        else np.full(len(rows), "ASSIGNED", dtype=object)
    )
    managed = arms == "ASSIGNED"
    y = frame[outcome].fillna(0).to_numpy(dtype=np.int64)
    return log_odds_effect(raw, managed, y, randomized_rows(arms, frame["cut_date"].to_numpy()))


Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


@dataclass(frozen=True)
class Effect:
    """A log-odds effect of management with its standard error (inf when not estimable).

    Identified when the upper bound of its 95% interval is below 0: management significantly
    lowers the outcome's odds. One definition for every roll model: the S- and the T-learner
    are identified by the same randomized rows, so the same pooled estimate decides for both.
    """

    estimate: float
    se: float

    @property
    def interval(self) -> tuple[float, float]:
        half = Z95 * self.se
        return self.estimate - half, self.estimate + half

    @property
    def identified(self) -> bool:
        return bool(np.isfinite(self.se) and self.interval[1] < 0)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval
        finite = bool(np.isfinite(self.se))
        return {
            "log_odds_effect": self.estimate,
            "se": self.se if finite else None,
            "low": low if finite else None,
            "high": high if finite else None,
            "identified": self.identified,
        }


NOT_ESTIMATED = Effect(0.0, float("inf"))


def log_odds_effect(raw_naive: np.ndarray, managed, y, rows) -> Effect:
    """The effect of management on the log-odds of the outcome, from the given (randomized) rows:
    the coefficient of `managed` in a logistic regression of y on managed and the naive model's
    log-odds (which adjusts for what the features say and sharpens the estimate), with its
    standard error. `NOT_ESTIMATED` (0, infinite error) when the rows do not hold both arms and
    both outcomes.

    The standard error comes from the observed information of that regression: with the design
    D = [1, managed, naive log-odds] and the fitted p, Cov = (D' W D)^-1, W = diag(p (1 - p)).
    Closed form, deterministic and instant, exact for the likelihood the estimate maximizes;
    a bootstrap would cost a refit per resample for the same answer at these sizes. The naive
    log-odds are cross-fitted (`crossfit_raw`), so treating them as a fixed regressor is fair.

    Trees alone find no split on a treatment held by 1% of the rows (few hundred control rows
    against tens of thousands managed): the S-learner would then say management changes nothing.
    This effect enters its trees as an offset (`SelfCureModel.fit(offset=...)`), and the trees
    refine it where the data allow."""
    r = np.asarray(rows, dtype=bool)
    m = np.asarray(managed, dtype=np.float64)[r]
    yy = np.asarray(y)[r]
    if len(np.unique(m)) < 2 or len(np.unique(yy)) < 2:
        return NOT_ESTIMATED
    naive = np.asarray(raw_naive, dtype=np.float64)[r]
    # a constant naive log-odds says nothing the intercept does not: left out, or the
    # information matrix would be singular
    design = np.column_stack([m, naive]) if np.ptp(naive) > 0 else m[:, None]
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(design, yy)
    p = fit.predict_proba(design)[:, 1]
    full = np.column_stack([np.ones(len(m)), design])
    information = full.T @ (full * (p * (1 - p))[:, None])
    try:
        variance = float(np.linalg.inv(information)[1, 1])
    except np.linalg.LinAlgError:
        variance = float("inf")
    se = float(np.sqrt(variance)) if np.isfinite(variance) and variance > 0 else float("inf")
    return Effect(float(fit.coef_[0][0]), se)


class RollModel:
    """p_roll_no_action and p_roll_action per row: an S-learner (monotone in `managed`) or a
    T-learner, both on the project's LightGBM with Platt calibration (strictly monotone, so an
    S-learner's two predictions never collapse into one calibration step)."""

    def __init__(
        self,
        features: list[str],
        categorical: list[str],
        method: str = "s_learner",
        seed: int = 42,
        num_threads: int = 1,
    ):
        self.features = features
        self.categorical = categorical
        self.method = method
        self.seed = seed
        self.num_threads = num_threads

    def _model(self, treatment: str | None) -> SelfCureModel:
        n = len(self.features)
        params = dict(ROLL_PARAMS)
        if treatment:
            params["monotone_constraints"] = [0] * n + [-1]
            params["monotone_constraints_method"] = "advanced"
        return SelfCureModel(
            self.features,
            self.categorical,
            params=params,
            calibration="platt",
            seed=self.seed,
            num_threads=self.num_threads,
            treatment=treatment,
        )

    def fit(
        self, X, managed, y, X_valid, managed_valid, y_valid, effect: Effect = NOT_ESTIMATED
    ) -> RollModel:
        """`effect`: the pooled log-odds effect of management on the roll with its standard
        error (`pooled_effect`). The S-learner enters it as an offset its trees refine, clipped
        at 0 (management never makes a roll more likely); both learners carry its 95% interval
        (`effect_interval_`) and whether it shows management lowers the roll
        (`effect_identified_`, see `Effect`), which the policy takes as data."""
        m, mv = np.asarray(managed, dtype=bool), np.asarray(managed_valid, dtype=bool)
        y, y_valid = np.asarray(y), np.asarray(y_valid)
        self.effect_interval_ = tuple(float(v) for v in effect.interval)
        self.effect_identified_ = effect.identified
        if self.method == "s_learner":
            self.effect_ = min(0.0, float(effect.estimate))
            self.single_ = self._model(MANAGED).fit(
                _with_treatment(X, m.astype(float)),
                y,
                _with_treatment(X_valid, mv.astype(float)),
                y_valid,
                offset=self.effect_,
            )
        elif self.method == "t_learner":
            self.action_ = self._model(None).fit(X[m], y[m], X_valid[mv], y_valid[mv])
            self.no_action_ = self._model(None).fit(X[~m], y[~m], X_valid[~mv], y_valid[~mv])
        else:
            raise ValueError(f"unknown roll model method {self.method!r}")
        self.feature_names_ = list(self.features)
        return self

    def predict_outcomes(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(p_roll_no_action, p_roll_action) per row."""
        if self.method == "s_learner":
            p0 = self.single_.predict_proba(_with_treatment(X, 0.0))[:, 1]
            p1 = self.single_.predict_proba(_with_treatment(X, 1.0))[:, 1]
            return p0, np.minimum(p1, p0)
        return self.no_action_.predict_proba(X)[:, 1], self.action_.predict_proba(X)[:, 1]

    def predict_observed(self, X: pd.DataFrame, managed) -> np.ndarray:
        """The roll probability in the arm each row was actually in."""
        p0, p1 = self.predict_outcomes(X)
        return np.where(np.asarray(managed, dtype=bool), p1, p0)


# ---- out-of-time evaluation on the randomized rows ----------------------------------------------
def _safe_log_loss(y: np.ndarray, p: np.ndarray) -> float | None:
    if len(y) == 0 or len(np.unique(y)) < 2:
        return None
    return float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1]))


def _safe_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(roc_auc_score(y, p)) if len(y) and len(np.unique(y)) == 2 else None


def control_fit(y: np.ndarray, candidates: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Log loss and AUC of each candidate's no-management probability on control rows."""
    return {
        name: {"rows": len(y), "log_loss": _safe_log_loss(y, p), "auc": _safe_auc(y, p)}
        for name, p in candidates.items()
    }


def choose(scores: dict[str, dict[str, Any]], default: str) -> str:
    """The candidate with the lowest log loss; `default` when none could be scored."""
    scored = {k: v["log_loss"] for k, v in scores.items() if v.get("log_loss") is not None}
    return min(scored, key=lambda k: (scored[k], k != default)) if scored else default


def qini(tau: np.ndarray, treated: np.ndarray, y: np.ndarray, points: int = 20) -> dict[str, Any]:
    """Qini curve of a predicted roll reduction `tau` on randomized rows (y = rolled).

    Rows sorted by tau, largest first; at each share k of the rows, the rolls prevented so far:
    Q(k) = rolls_control(k) x n_treated(k) / n_control(k) - rolls_treated(k). A random ordering
    gives the straight line from 0 to Q(1); the Qini coefficient is the area between the curve and
    that line, divided by the number of rows (the higher, the better the model ranks the effect).
    """
    order = np.argsort(-np.asarray(tau, dtype=np.float64), kind="stable")
    t = np.asarray(treated, dtype=bool)[order]
    yy = np.asarray(y, dtype=np.float64)[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    r_t, r_c = np.cumsum(yy * t), np.cumsum(yy * ~t)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(n_c > 0, r_c * n_t / np.maximum(n_c, 1), 0.0) - r_t
    n = len(q)
    if n == 0:
        return {"share": [], "prevented": [], "qini_coefficient": None}
    share = np.arange(1, n + 1) / n
    random_line = share * q[-1]
    coefficient = float(np.trapezoid(q - random_line, share) / n)
    idx = np.unique(np.linspace(0, n - 1, points).astype(int))
    return {
        "share": [round(float(share[i]), 4) for i in idx],
        "prevented": [round(float(q[i]), 3) for i in idx],
        "qini_coefficient": round(coefficient, 6),
    }


def effect_by_decile(
    tau: np.ndarray, treated: np.ndarray, y: np.ndarray, bins: int = 10
) -> list[dict[str, Any]]:
    """Predicted against observed effect on the roll rate, by decile of predicted effect."""
    tau = np.asarray(tau, dtype=np.float64)
    t = np.asarray(treated, dtype=bool)
    yy = np.asarray(y, dtype=np.float64)
    if len(tau) < bins:
        return []
    rank = np.argsort(np.argsort(-tau, kind="stable"), kind="stable")
    decile = rank * bins // len(tau)
    out = []
    for d in range(bins):
        rows = decile == d
        ctrl, trt = rows & ~t, rows & t
        observed = float(yy[ctrl].mean() - yy[trt].mean()) if ctrl.any() and trt.any() else None
        out.append(
            {
                "decile": d + 1,
                "rows": int(rows.sum()),
                "control_rows": int(ctrl.sum()),
                "predicted_effect": round(float(tau[rows].mean()), 4),
                "observed_effect": None if observed is None else round(observed, 4),
            }
        )
    return out


@dataclass
class CausalEvaluation:
    """How each candidate did out of time on the randomized rows, and which one was kept."""

    self_cure: dict[str, dict[str, Any]]
    self_cure_method: str
    roll: dict[str, dict[str, Any]]
    roll_method: str
    qini: dict[str, Any]
    deciles: list[dict[str, Any]]
    mean_predicted_effect: float | None
    observed_effect: float | None
    randomized_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "self_cure": {"method": self.self_cure_method, "candidates": self.self_cure},
            "roll": {"method": self.roll_method, "candidates": self.roll},
            "qini": self.qini,
            "effect_by_decile": self.deciles,
            "mean_predicted_effect": self.mean_predicted_effect,
            "observed_effect": self.observed_effect,
            "randomized_rows": self.randomized_rows,
        }


# ---- fitting and choosing -----------------------------------------------------------------------
# Below this many unmanaged training rows there is no estimate at all (training refuses); below
# FEW_CONTROL_ROWS the effect is estimated but imprecise, and training says so.
MIN_CONTROL_ROWS = 10
FEW_CONTROL_ROWS = 300


class CausalDataError(ValueError):
    """History shows too few unmanaged obligations to estimate what management changes."""


def control_rows(arms: np.ndarray) -> np.ndarray:
    return np.isin(np.asarray(arms, dtype=object), CONTROL_ARMS)


def randomized_rows(arms: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Rows of the cuts where the randomized holdout exists, in arm ASSIGNED or HOLDOUT: there
    the arm is a coin flip, so comparing arms compares like with like."""
    arms = np.asarray(arms, dtype=object)
    cuts = np.asarray(cuts)
    holdout_cuts = np.unique(cuts[arms == RANDOMIZED_CONTROL])
    return np.isin(cuts, holdout_cuts) & np.isin(arms, ("ASSIGNED", RANDOMIZED_CONTROL))


def fit_candidates(
    dataset: Any, params: dict[str, Any], seed: int, num_threads: int
) -> dict[str, Any]:
    """Every candidate model on the train part (early stopping and calibration on valid)."""
    arms = dataset.arm("train")
    n_control = int(control_rows(arms).sum())
    if n_control < MIN_CONTROL_ROWS:
        raise CausalDataError(
            f"the training rows hold {n_control} unmanaged obligations (arms HOLDOUT or RULE of "
            f"collection_assignments), fewer than {MIN_CONTROL_ROWS}: what happens without "
            "management cannot be estimated; send contract version 2 extracts with the "
            "randomized holdout"
        )
    X, Xv = dataset.X("train"), dataset.X("valid")
    m, mv = dataset.managed("train"), dataset.managed("valid")
    y, yv = dataset.y("train"), dataset.y("valid")
    common = {"params": params, "seed": seed, "num_threads": num_threads}
    naive = SelfCureModel(dataset.features, dataset.categorical, **common).fit(X, y, Xv, yv)
    roll, rollv = dataset.roll("train"), dataset.roll("valid")

    def naive_cure() -> SelfCureModel:
        return SelfCureModel(dataset.features, dataset.categorical, **common)

    def naive_roll() -> SelfCureModel:
        return RollModel(
            dataset.features, dataset.categorical, "t_learner", seed, num_threads
        )._model(None)

    effect = pooled_effect(naive_cure, dataset, TARGET, seed).estimate
    s_learner = SelfCureModel(
        dataset.features, dataset.categorical, treatment=MANAGED, **common
    ).fit(_with_treatment(X, m), y, _with_treatment(Xv, mv), yv, offset=effect)
    roll_effect = pooled_effect(naive_roll, dataset, ROLL_31_PLUS, seed)
    rolls = {
        "s_learner": RollModel(
            dataset.features, dataset.categorical, "s_learner", seed, num_threads
        ).fit(X, m, roll, Xv, mv, rollv, effect=roll_effect)
    }
    control_valid = mv == 0
    if control_valid.sum() >= MIN_CONTROL_ROWS and len(np.unique(rollv[control_valid])) == 2:
        rolls["t_learner"] = RollModel(
            dataset.features, dataset.categorical, "t_learner", seed, num_threads
        ).fit(X, m, roll, Xv, mv, rollv, effect=roll_effect)
    return {"self_cure": {"naive": naive, "s_learner": s_learner}, "roll": rolls}


def evaluate_candidates(dataset: Any, candidates: dict[str, Any]) -> CausalEvaluation:
    """Each candidate out of time on the randomized rows; the best of each kind chosen."""
    rows = dataset.rows("oot")
    X = dataset.X("oot")
    arms = dataset.arm("oot")
    control = arms == RANDOMIZED_CONTROL
    y = dataset.y("oot")
    self_cure = control_fit(
        y[control],
        {k: v.predict_proba(X[control])[:, 1] for k, v in candidates["self_cure"].items()},
    )
    randomized = randomized_rows(arms, rows["cut_date"].to_numpy())
    managed = dataset.managed("oot")[randomized]
    rolled = dataset.roll("oot")[randomized]
    Xr = X[randomized]
    roll_scores = {}
    for name, model in candidates["roll"].items():
        p = model.predict_observed(Xr, managed)
        roll_scores[name] = {
            "rows": int(randomized.sum()),
            "log_loss": _safe_log_loss(rolled, p),
            "auc": _safe_auc(rolled, p),
        }
    roll_method = choose(roll_scores, "s_learner")
    p0, p1 = candidates["roll"][roll_method].predict_outcomes(Xr)
    tau = p0 - p1
    treated = managed.astype(bool)
    observed = (
        float(rolled[~treated].mean() - rolled[treated].mean())
        if treated.any() and (~treated).any()
        else None
    )
    return CausalEvaluation(
        self_cure=self_cure,
        self_cure_method=choose(self_cure, "s_learner"),
        roll=roll_scores,
        roll_method=roll_method,
        qini=qini(tau, treated, rolled),
        deciles=effect_by_decile(tau, treated, rolled),
        mean_predicted_effect=round(float(tau.mean()), 4) if len(tau) else None,
        observed_effect=None if observed is None else round(observed, 4),
        randomized_rows=int(randomized.sum()),
    )


def recode(
    codes: np.ndarray, features: list[str], source: dict[str, list[str]], model: SelfCureModel
) -> np.ndarray:
    """Codes made with the `source` category lists, as `model`'s own encoder would make them
    (a T-learner's models learn their lists on their own arm's rows)."""
    target = model.encoder_.categories_
    if target == source:
        return codes
    out = codes.copy()
    for j, name in enumerate(features):
        if name not in target or target[name] == source.get(name):
            continue
        index = {v: i for i, v in enumerate(target[name])}
        mapping = np.array([index.get(v, np.nan) for v in source.get(name, [])], dtype=np.float64)
        col = codes[:, j]
        known = ~np.isnan(col)
        mapped = np.full(len(col), np.nan)
        mapped[known] = mapping[col[known].astype(np.int64)] if len(mapping) else np.nan
        out[:, j] = mapped
    return out


def predict_codes(
    roll: RollModel, codes: np.ndarray, categories: dict[str, list[str]]
) -> tuple[np.ndarray, np.ndarray]:
    """(p_roll_no_action, p_roll_action) from an encoded matrix of the features made with the
    `categories` lists (the online path's), equal to `predict_outcomes` on the same rows."""

    def proba(model: SelfCureModel, matrix: np.ndarray) -> np.ndarray:
        raw = model.booster_.predict(
            matrix, num_iteration=model.best_iteration_, raw_score=True, num_threads=1
        )
        if getattr(model, "offset_", 0.0):
            raw = raw + model.offset_ * matrix[:, -1]
        return np.asarray(model.calibrator_.transform(raw), dtype=np.float64)

    features = roll.feature_names_
    if roll.method == "s_learner":
        n = len(codes)
        own = recode(codes, features, categories, roll.single_)
        p0 = proba(roll.single_, np.column_stack([own, np.zeros(n)]))
        p1 = proba(roll.single_, np.column_stack([own, np.ones(n)]))
        return p0, np.minimum(p1, p0)
    return (
        proba(roll.no_action_, recode(codes, features, categories, roll.no_action_)),
        proba(roll.action_, recode(codes, features, categories, roll.action_)),
    )
