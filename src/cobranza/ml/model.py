"""The models: calibrated LightGBM (main candidate) and calibrated logistic regression (baseline).

Both follow scikit-learn conventions (`fit` returns self, learned state ends in `_`) and expose
`predict_proba(X)` with calibrated probabilities of self-cure. Calibration is fitted on the
validation fold (held out by client), because the decisions downstream compare probabilities with
costs. Categorical string features get fixed category lists at fit time; an unseen or missing
category at predict time is treated as missing, the same way in both models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from cobranza.errors import CobranzaError

MISSING = "__missing__"
# Isotonic calibration is a step function; a tiny share of the (monotone) sigmoid of the raw
# score breaks its ties, so calibrated probabilities keep the model's ranking (and AUC).
TIE_BREAK = 1e-6
PROBA_CLIP = 1e-6

# Shallow, strongly regularized trees: on simulated gold at 20k and 60k clients they had the best
# validation AUC among the candidates tried (31 leaves overfit: train AUC 0.93 vs test 0.82).
DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 4,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "max_bin": 255,
}


# Fixed, so that LightGBM's deterministic mode gives the same trees everywhere; one thread because
# OpenMP threads spin-wait and collapse on a shared 2-core machine (measured 0.1 s vs 11 s).
NUM_THREADS = 1

# Up to this many rows, prediction runs on one thread and categories are encoded by dict lookup:
# thread start-up and pandas set-up cost more than the work itself on a handful of rows.
SMALL_BATCH = 256


def predict_threads(n_rows: int) -> dict[str, int]:
    """LightGBM prediction parameters for a batch of n_rows."""
    return {"num_threads": 1} if n_rows <= SMALL_BATCH else {}


def numeric(col: pd.Series) -> pd.Series:
    """float64 with NaN for missing, from int64, nullable Int64/boolean, float or object input."""
    return pd.to_numeric(col, errors="coerce").astype(np.float64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Calibrator(BaseEstimator):
    """Maps a raw score (log-odds) to a probability: isotonic (default) or Platt."""

    def __init__(self, method: str = "isotonic"):
        self.method = method

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            self.isotonic_ = IsotonicRegression(
                y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True
            ).fit(raw, y)
        elif self.method == "platt":
            self.platt_ = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        return self

    def transform(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            p = self.isotonic_.predict(raw) * (1 - TIE_BREAK) + TIE_BREAK * _sigmoid(raw)
        else:
            p = self.platt_.predict_proba(raw.reshape(-1, 1))[:, 1]
        # An affine squeeze (not a clip) into [PROBA_CLIP, 1 - PROBA_CLIP] keeps it strictly
        # monotone: no ties at the ends, finite log loss.
        return PROBA_CLIP + (1 - 2 * PROBA_CLIP) * p


class ModelInputError(CobranzaError):
    """Rows to predict lack a feature column the model needs."""


def model_input(
    frame: pd.DataFrame, features: list[str], needed_by: str = "the model"
) -> pd.DataFrame:
    """The feature columns of `frame` in the model's order, as `FeatureEncoder` takes them;
    `needed_by` names the model in the error when a column is missing ("the challenger
    (version 4)").

    Only non-numeric columns that are not plain objects (Arrow-backed strings read from Parquet)
    are converted, in one constructor call: online scoring of one row is dominated by per-column
    pandas overhead, and the API already hands over float64 and object columns.
    """
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ModelInputError(
            f"the rows to score lack feature column(s) {', '.join(missing[:10])} {needed_by} needs"
        )
    X = frame[features]
    convert = [
        name
        for name, dtype in zip(features, X.dtypes, strict=True)
        if not (
            pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
        )
    ]
    if not convert:
        return X
    columns = {name: X[name] for name in features}
    for name in convert:
        values = X[name].to_numpy(dtype=object, na_value=None)
        columns[name] = pd.Series(values, index=frame.index, dtype=object)
    return pd.DataFrame(columns, index=frame.index)


class FeatureEncoder(BaseEstimator):
    """Numbers as float64; categories as fixed lists learned at fit (codes for LightGBM).

    With a `treatment` column (0/1, a causal model's "was it managed"), the codes carry it as one
    more, last column: taken from X when X has it (training, or predicting a chosen arm), else
    the counterfactual value `counterfactual_` (0: without management), so rows to score need
    only the features themselves.
    """

    def __init__(self, features: list[str], categorical: list[str], treatment: str | None = None):
        self.features = features
        self.categorical = categorical
        self.treatment = treatment

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureEncoder:
        missing = [c for c in self.features if c not in X.columns]
        if missing:
            raise ValueError(f"missing feature column(s): {', '.join(missing)}")
        self.feature_names_ = [c for c in self.features if c != self.treatment]
        self.categories_ = {
            c: sorted(str(v) for v in pd.unique(X[c].dropna())) for c in self.categorical
        }
        self.categorical_index_ = [self.feature_names_.index(c) for c in self.categorical]
        self.treatment_ = self.treatment
        self.counterfactual_ = 0.0
        return self

    @property
    def columns_(self) -> list[str]:
        """The booster's columns: the features, then the treatment when there is one."""
        treatment = getattr(self, "treatment_", None)
        return [*self.feature_names_, treatment] if treatment else list(self.feature_names_)

    def treatment_column(self, X: pd.DataFrame) -> np.ndarray | None:
        """The treatment column of the codes: X's own, else the counterfactual value."""
        treatment = getattr(self, "treatment_", None)
        if not treatment:
            return None
        if treatment in X.columns:
            return X[treatment].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.full(len(X), float(self.counterfactual_))

    def _check(self, X: pd.DataFrame) -> None:
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ValueError(f"missing feature column(s): {', '.join(missing)}")

    def strings(self, X: pd.DataFrame) -> pd.DataFrame:
        """Categorical columns as object strings within the learned lists (else None)."""
        self._check(X)
        out = {}
        for c in self.feature_names_:
            col = X[c]
            if c in self.categories_:
                known = set(self.categories_[c])
                out[c] = pd.Series(
                    [v if isinstance(v, str) and v in known else None for v in col.astype(object)],
                    index=X.index,
                    dtype=object,
                )
            else:
                out[c] = numeric(col)
        return pd.DataFrame(out, index=X.index)

    def codes(self, X: pd.DataFrame) -> np.ndarray:
        """A float matrix: numbers as they are, categories as their index (NaN when unknown).

        Column-wise NumPy conversion: online scoring encodes one row per request, where pandas'
        per-call overhead, not the data, is the cost.
        """
        self._check(X)
        n = len(X)
        out = np.empty((n, len(self.feature_names_)), dtype=np.float64)
        for j, c in enumerate(self.feature_names_):
            col = X[c]
            if c in self.categories_:
                if n <= SMALL_BATCH:
                    lookup = self._lookup(c)
                    out[:, j] = [
                        lookup.get(v, np.nan) if isinstance(v, str) else np.nan
                        for v in col.to_numpy(dtype=object)
                    ]
                else:
                    cat = pd.Categorical(col.astype(object), categories=self.categories_[c])
                    codes = cat.codes.astype(np.float64)
                    codes[codes < 0] = np.nan
                    out[:, j] = codes
            elif col.dtype == np.float64:
                out[:, j] = col.to_numpy()
            elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
                out[:, j] = col.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out[:, j] = numeric(col).to_numpy()
        treated = self.treatment_column(X)
        return out if treated is None else np.column_stack([out, treated])

    def _lookup(self, column: str) -> dict[str, int]:
        """Category -> code, derived from `categories_` (not learned state; rebuilt after unpickling)."""
        lookups = self.__dict__.setdefault("_lookups", {})
        if column not in lookups:
            lookups[column] = {v: i for i, v in enumerate(self.categories_[column])}
        return lookups[column]


class SelfCureModel(BaseEstimator, ClassifierMixin):
    """LightGBM on the gold features, early-stopped and calibrated on the validation fold."""

    def __init__(
        self,
        features: list[str],
        categorical: list[str],
        params: dict[str, Any] | None = None,
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 100,
        calibration: str = "isotonic",
        seed: int = 42,
        num_threads: int = 2,
        treatment: str | None = None,
    ):
        self.features = features
        self.categorical = categorical
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.seed = seed
        self.num_threads = num_threads
        self.treatment = treatment

    def lgbm_params(self) -> dict[str, Any]:
        return {
            **DEFAULT_LGBM_PARAMS,
            **(self.params or {}),
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "verbose": -1,
        }

    def fit(self, X, y, X_valid, y_valid, offset: float = 0.0) -> SelfCureModel:
        """`offset`: with a treatment, log-odds added per unit of it before any tree (a known
        effect the trees then refine; `ml.causal`), kept in every prediction."""
        features = [*self.features, self.treatment] if self.treatment else self.features
        self.encoder_ = FeatureEncoder(features, self.categorical, self.treatment).fit(X)
        self.feature_names_ = self.encoder_.feature_names_
        self.classes_ = np.array([0, 1])
        self.offset_ = float(offset) if self.treatment else 0.0
        cat = self.encoder_.categorical_index_
        codes, codes_valid = self.encoder_.codes(X), self.encoder_.codes(X_valid)
        train_set = lgb.Dataset(
            codes,
            label=np.asarray(y),
            feature_name=self.encoder_.columns_,
            categorical_feature=cat,
            init_score=self._offset(codes),
            free_raw_data=True,
        )
        valid_set = lgb.Dataset(
            codes_valid,
            label=np.asarray(y_valid),
            init_score=self._offset(codes_valid),
            reference=train_set,
        )
        self.evals_: dict[str, Any] = {}
        self.booster_ = lgb.train(
            self.lgbm_params(),
            train_set,
            num_boost_round=self.num_boost_round,
            valid_sets=[valid_set],
            valid_names=["valid"],
            callbacks=[
                lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                lgb.record_evaluation(self.evals_),
            ],
        )
        self.best_iteration_ = int(
            self.booster_.best_iteration or self.booster_.current_iteration()
        )
        self.calibrator_ = Calibrator(self.calibration).fit(self.raw_score(X_valid), y_valid)
        return self

    def _offset(self, codes: np.ndarray) -> np.ndarray | None:
        """The treatment's log-odds offset per row (its column is the codes' last), or None."""
        offset = getattr(self, "offset_", 0.0)
        return offset * np.nan_to_num(codes[:, -1]) if offset else None

    def raw_score(self, X) -> np.ndarray:
        """Uncalibrated log-odds."""
        codes = self.encoder_.codes(X)
        raw = self.booster_.predict(
            codes, num_iteration=self.best_iteration_, raw_score=True, **predict_threads(len(codes))
        )
        offset = self._offset(codes)
        return raw if offset is None else raw + offset

    def predict_proba(self, X) -> np.ndarray:
        p = self.calibrator_.transform(self.raw_score(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def contributions(self, X) -> pd.DataFrame:
        """Per-row per-feature contributions to the raw log-odds (TreeSHAP), plus `bias`."""
        values = self.booster_.predict(
            self.encoder_.codes(X), num_iteration=self.best_iteration_, pred_contrib=True
        )
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(values, columns=[*self.encoder_.columns_, "bias"], index=index)

    def importance(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "feature": self.encoder_.columns_,
                "gain": self.booster_.feature_importance(
                    "gain", iteration=self.best_iteration_
                ).astype(np.float64),
                "split": self.booster_.feature_importance(
                    "split", iteration=self.best_iteration_
                ).astype(np.int64),
            }
        ).sort_values("gain", ascending=False, kind="stable")


class BaselineModel(BaseEstimator, ClassifierMixin):
    """Transparent baseline: imputation + standardization + one-hot, L2 logistic regression."""

    def __init__(
        self,
        features: list[str],
        categorical: list[str],
        C: float = 1.0,
        calibration: str = "isotonic",
        seed: int = 42,
    ):
        self.features = features
        self.categorical = categorical
        self.C = C
        self.calibration = calibration
        self.seed = seed

    def fit(self, X, y, X_valid, y_valid) -> BaselineModel:
        self.encoder_ = FeatureEncoder(self.features, self.categorical).fit(X)
        self.feature_names_ = self.encoder_.feature_names_
        self.classes_ = np.array([0, 1])
        numeric = [c for c in self.feature_names_ if c not in self.categorical]
        prep = ColumnTransformer(
            [
                (
                    "num",
                    make_pipeline(
                        SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                    ),
                    numeric,
                ),
                (
                    "cat",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value=MISSING),
                        OneHotEncoder(handle_unknown="ignore"),
                    ),
                    list(self.categorical),
                ),
            ]
        )
        self.pipeline_ = Pipeline(
            [
                ("prep", prep),
                (
                    "logit",
                    LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed),
                ),
            ]
        ).fit(self.encoder_.strings(X), np.asarray(y))
        self.calibrator_ = Calibrator(self.calibration).fit(self.raw_score(X_valid), y_valid)
        return self

    def raw_score(self, X) -> np.ndarray:
        return self.pipeline_.decision_function(self.encoder_.strings(X))

    def predict_proba(self, X) -> np.ndarray:
        p = self.calibrator_.transform(self.raw_score(X))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)


@dataclass
class Fitted:
    """The self-cure model the decision uses (without management), the baseline beside it, the
    tuning trials behind its params, and the causal parts (`ml.causal`): the naive self-cure
    model, the roll model with and without management and how the candidates did."""

    model: SelfCureModel
    baseline: BaselineModel
    tuning: list[dict[str, Any]] = field(default_factory=list)
    naive: SelfCureModel | None = None
    roll: Any = None  # ml.causal.RollModel
    causal: Any = None  # ml.causal.CausalEvaluation
