"""The model objects: sklearn conventions, calibrated probabilities, contributions, categories."""

import numpy as np
import pytest

from cobranza.ml.model import BaselineModel, Calibrator, ModelInputError, SelfCureModel, model_input

FEATURES = [
    "product",
    "segment",
    "days_past_due",
    "amount_past_due",
    "balance_to_installment",
    "debit_rejects_3m",
    "noise_feature",
]
CATEGORICAL = ["product", "segment"]


@pytest.fixture(scope="module")
def parts(gold_frame):
    g = gold_frame[gold_frame["self_cure_debit"].notna()].reset_index(drop=True)
    g["product"] = g["product"].astype(object)
    g["segment"] = g["segment"].astype(object)
    fit, valid, test = g.iloc[:2000], g.iloc[2000:2800], g.iloc[2800:]
    y = lambda d: d["self_cure_debit"].to_numpy(dtype=int)  # noqa: E731
    return fit[FEATURES], y(fit), valid[FEATURES], y(valid), test[FEATURES], y(test)


@pytest.fixture(scope="module")
def model(parts):
    X, y, Xv, yv, _, _ = parts
    return SelfCureModel(FEATURES, CATEGORICAL, seed=3, num_threads=1).fit(X, y, Xv, yv)


def test_fit_returns_self_and_learned_state_ends_in_underscore(parts):
    X, y, Xv, yv, _, _ = parts
    m = SelfCureModel(FEATURES, CATEGORICAL, num_threads=1)
    assert m.fit(X, y, Xv, yv) is m
    learned = {k for k in vars(m) if k.endswith("_")}
    assert {"booster_", "calibrator_", "encoder_", "feature_names_", "best_iteration_"} <= learned
    assert m.feature_names_ == FEATURES
    assert m.get_params()["seed"] == 42


def test_predict_proba_shape_and_ranking(model, parts):
    _, _, _, _, Xt, yt = parts
    proba = model.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert ((proba > 0) & (proba < 1)).all()
    # calibration is monotone in the raw score: it keeps the ranking
    raw = model.raw_score(Xt)
    order = np.argsort(raw, kind="stable")
    assert (np.diff(proba[order, 1]) >= 0).all()
    from cobranza.ml.metrics import auc

    assert auc(yt, proba[:, 1]) == pytest.approx(auc(yt, raw), abs=1e-9)
    assert auc(yt, proba[:, 1]) > 0.7


def test_contributions_add_up_to_the_raw_log_odds(model, parts):
    _, _, _, _, Xt, _ = parts
    contrib = model.contributions(Xt)
    assert list(contrib.columns) == [*FEATURES, "bias"]
    assert (contrib.index == Xt.index).all()
    assert np.allclose(contrib.sum(axis=1).to_numpy(), model.raw_score(Xt), atol=1e-8)
    assert contrib["noise_feature"].abs().mean() < contrib["balance_to_installment"].abs().mean()


def test_unseen_category_is_treated_as_missing(model, parts):
    _, _, _, _, Xt, _ = parts
    rows = Xt.head(20).copy()
    unseen, missing = rows.copy(), rows.copy()
    unseen["product"] = "NEW_PRODUCT"
    missing["product"] = None
    assert np.array_equal(model.predict_proba(unseen), model.predict_proba(missing))
    assert model.encoder_.categories_["product"] == sorted(
        ["CONSUMER_LOAN", "CREDIT_CARD", "VEHICLE", "MORTGAGE", "MICROCREDIT"]
    )
    with pytest.raises(ValueError, match="noise_feature"):
        model.predict_proba(rows.drop(columns=["noise_feature"]))


def test_baseline_is_a_calibrated_logistic_pipeline(parts):
    X, y, Xv, yv, Xt, yt = parts
    base = BaselineModel(FEATURES, CATEGORICAL).fit(X, y, Xv, yv)
    proba = base.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2)
    from cobranza.ml.metrics import auc

    assert auc(yt, proba[:, 1]) > 0.7
    rows = Xt.head(5).copy()
    rows["segment"] = "UNKNOWN"
    assert np.isfinite(base.predict_proba(rows)).all()


def test_calibrators_map_scores_to_observed_rates():
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, 5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-(0.5 * raw + 0.3)))).astype(int)
    for method in ("isotonic", "platt"):
        cal = Calibrator(method).fit(raw, y)
        p = cal.transform(raw)
        from cobranza.ml.metrics import ece

        assert ece(y, p) < 0.03, method
    with pytest.raises(ValueError, match="unknown calibration"):
        Calibrator("magic").fit(raw, y)


def test_missing_feature_columns_are_named_with_the_model_that_needs_them():
    import pandas as pd

    frame = pd.DataFrame({"a": [1.0], "c": [2.0]})
    with pytest.raises(ModelInputError) as err:
        model_input(frame, ["a", "b"], "the challenger (version 4)")
    assert str(err.value) == (
        "the rows to score lack feature column(s) b the challenger (version 4) needs"
    )
    assert list(model_input(frame, ["c", "a"]).columns) == ["c", "a"]
