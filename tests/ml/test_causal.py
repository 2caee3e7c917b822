"""The causal models: the effect of management from randomized rows, the S- and T-learners, the
choice out of time, and the uplift evaluation (Qini, effect by decile)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from cobranza.ml import causal
from cobranza.ml.data import Dataset, assign_parts, feature_columns
from cobranza.ml.model import FeatureEncoder
from tests.ml.gold import make_gold


def _dataset(gold: pd.DataFrame) -> Dataset:
    labeled = gold.loc[gold["self_cure_debit"].notna() & gold["eligible"]].reset_index(drop=True)
    labeled = labeled.drop(columns=[c for c in labeled.columns if c.startswith("_")])
    labeled["self_cure_debit"] = labeled["self_cure_debit"].astype(np.int64)
    features, categorical = feature_columns(labeled)
    part, oot = assign_parts(labeled, 3, 0.2, 5)
    return Dataset(labeled, features, categorical, part, oot)


@pytest.fixture(scope="module")
def gold() -> pd.DataFrame:
    return make_gold(clients=3000, months=10, seed=21, holdout_share=0.3)


@pytest.fixture(scope="module")
def fitted(gold) -> tuple[Dataset, dict]:
    ds = _dataset(gold)
    return ds, causal.fit_candidates(ds, {}, seed=3, num_threads=1)


def test_the_log_odds_effect_of_a_randomized_treatment_is_recovered():
    rng = np.random.default_rng(0)
    n = 40_000
    x = rng.normal(0, 1, n)
    managed = rng.random(n) < 0.5
    y = rng.random(n) < 1 / (1 + np.exp(-(0.2 + 1.2 * x - 0.6 * managed)))
    got = causal.log_odds_effect(1.2 * x, managed, y, np.ones(n, bool))
    assert got.estimate == pytest.approx(-0.6, abs=0.06)
    low, high = got.interval
    assert low < -0.6 < high and got.identified


def test_no_effect_is_estimated_from_rows_with_a_single_arm():
    got = causal.log_odds_effect(np.zeros(4), [1, 1, 1, 1], [0, 1, 0, 1], np.ones(4, bool))
    assert got == causal.NOT_ESTIMATED
    assert got.estimate == 0.0 and got.interval == (-np.inf, np.inf) and not got.identified


def _two_by_two(rolled_managed: int, managed: int, rolled_control: int, control: int):
    m = np.r_[np.ones(managed), np.zeros(control)].astype(bool)
    y = np.r_[np.arange(managed) < rolled_managed, np.arange(control) < rolled_control].astype(int)
    return m, y


@pytest.mark.parametrize(
    ("scale", "identified"),
    [(10, True), (1, False)],
    ids=["100-rows-per-arm", "10-rows-per-arm"],
)
def test_the_interval_is_the_log_odds_ratio_with_woolfs_standard_error(scale, identified):
    """Without naive log-odds to adjust for, the effect is the log odds ratio of the 2x2 table
    and its observed-information standard error is Woolf's sqrt(1/a + 1/b + 1/c + 1/d): the
    same odds ratio is identified on 100 rows per arm and not on 10."""
    a, b, c, d = 3 * scale, 7 * scale, 5 * scale, 5 * scale  # managed rolled/not, control
    m, y = _two_by_two(a, a + b, c, c + d)
    got = causal.log_odds_effect(np.zeros(len(m)), m, y, np.ones(len(m), bool))
    log_or = np.log((a / b) / (c / d))
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert got.estimate == pytest.approx(log_or, abs=1e-4)
    assert got.se == pytest.approx(se, rel=1e-4)
    assert got.interval == pytest.approx((log_or - 1.959964 * se, log_or + 1.959964 * se), abs=1e-4)
    assert got.identified is identified
    assert got.to_dict()["identified"] is identified


def test_an_effect_that_raises_the_roll_is_not_identified():
    m, y = _two_by_two(60, 100, 30, 100)  # managed rows roll more
    got = causal.log_odds_effect(np.zeros(len(m)), m, y, np.ones(len(m), bool))
    assert got.interval[0] > 0 and not got.identified


def test_both_roll_learners_carry_the_pooled_effect_and_its_identification(fitted):
    """One definition for the S- and the T-learner: the pooled log-odds effect on the roll from
    the randomized rows before the out-of-time months; this gold's effect is large and its
    holdout 30%: identified."""
    rolls = fitted[1]["roll"]
    assert set(rolls) == {"s_learner", "t_learner"}
    intervals = {name: model.effect_interval_ for name, model in rolls.items()}
    assert intervals["s_learner"] == intervals["t_learner"]
    low, high = intervals["s_learner"]
    assert low < rolls["s_learner"].effect_ < high < 0
    assert all(model.effect_identified_ for model in rolls.values())


def test_randomized_rows_are_the_assigned_and_holdout_rows_of_the_holdout_cuts():
    arms = np.array(["ASSIGNED", "HOLDOUT", "RULE", "ASSIGNED", "ASSIGNED"], dtype=object)
    cuts = np.array([date(2025, 1, 31)] * 3 + [date(2025, 2, 28)] * 2)
    got = causal.randomized_rows(arms, cuts)
    assert got.tolist() == [True, True, False, False, False]


def test_the_candidate_with_the_lowest_log_loss_is_chosen():
    scores = {"naive": {"log_loss": 0.50}, "s_learner": {"log_loss": 0.48}}
    assert causal.choose(scores, "naive") == "s_learner"
    assert causal.choose({"naive": {"log_loss": None}}, "s_learner") == "s_learner"


def test_qini_rewards_ranking_the_effect_and_punishes_the_reverse():
    rng = np.random.default_rng(1)
    n = 20_000
    tau = rng.uniform(0, 0.4, n)
    treated = rng.random(n) < 0.5
    rolled = (rng.random(n) < 0.5 - treated * tau).astype(int)
    good = causal.qini(tau, treated, rolled)["qini_coefficient"]
    bad = causal.qini(-tau, treated, rolled)["qini_coefficient"]
    flat = causal.qini(rng.random(n), treated, rolled)["qini_coefficient"]
    assert good > 0.01 and bad < -0.01 and abs(flat) < good / 3


def test_effect_by_decile_compares_prediction_and_observation_in_each_decile():
    tau = np.repeat(np.arange(10, 0, -1) / 100, 4)  # deciles of 4 rows, largest effect first
    treated = np.tile([True, False, True, False], 10)
    rolled = np.tile([0, 1, 1, 1], 10)
    rows = causal.effect_by_decile(tau, treated, rolled)
    assert [r["decile"] for r in rows] == list(range(1, 11))
    assert rows[0]["predicted_effect"] == pytest.approx(0.10)
    assert all(r["observed_effect"] == pytest.approx(0.5) for r in rows)
    assert all(r["control_rows"] == 2 for r in rows)


def test_the_encoder_fills_the_treatment_with_the_counterfactual_when_rows_lack_it():
    X = pd.DataFrame({"a": [1.0, 2.0], "managed": [1.0, 1.0]})
    enc = FeatureEncoder(["a", "managed"], [], treatment="managed").fit(X)
    assert enc.feature_names_ == ["a"] and enc.columns_ == ["a", "managed"]
    assert enc.codes(X)[:, 1].tolist() == [1.0, 1.0]
    assert enc.codes(X[["a"]])[:, 1].tolist() == [0.0, 0.0]


def test_the_roll_model_finds_the_effect_of_management_and_never_reverses_it(gold, fitted):
    ds, candidates = fitted
    s = candidates["roll"]["s_learner"]
    X = ds.X("oot")
    p_no, p_act = s.predict_outcomes(X)
    assert (p_act <= p_no).all()
    rows = ds.rows("oot")
    true_effect = (
        gold.set_index(["obligation_id", "cut_date"])
        .loc[list(zip(rows["obligation_id"], rows["cut_date"], strict=True))]
        .eval("_p_roll_no_action - _p_roll_action")
        .to_numpy()
    )
    # the mean effect within a third of the truth, and ranked in the right direction
    assert (p_no - p_act).mean() == pytest.approx(true_effect.mean(), rel=0.35)
    assert np.corrcoef(p_no - p_act, true_effect)[0, 1] > 0.3
    assert s.effect_ < 0


def test_the_evaluation_reports_every_candidate_on_the_randomized_rows(fitted):
    ds, candidates = fitted
    got = causal.evaluate_candidates(ds, candidates).to_dict()
    assert set(got["self_cure"]["candidates"]) == {"naive", "s_learner"}
    assert got["self_cure"]["method"] in {"naive", "s_learner"}
    assert got["roll"]["method"] in got["roll"]["candidates"]
    holdout = int((ds.arm("oot") == "HOLDOUT").sum())
    assert got["self_cure"]["candidates"]["naive"]["rows"] == holdout
    assert got["randomized_rows"] == len(ds.rows("oot"))
    assert len(got["effect_by_decile"]) == 10
    assert got["observed_effect"] is not None and got["observed_effect"] > 0


def test_training_refuses_history_without_unmanaged_obligations(gold):
    ds = _dataset(gold.assign(arm=gold["arm"].where(gold["arm"].isna(), "ASSIGNED")))
    with pytest.raises(causal.CausalDataError, match="unmanaged obligations"):
        causal.fit_candidates(ds, {}, seed=3, num_threads=1)


def test_the_online_codes_give_the_batch_probabilities_for_every_roll_model(fitted):
    """Each roll model, the T-learner's arm models with their own category lists included, gives
    from the self-cure encoder's codes what `predict_outcomes` gives from the rows."""
    ds, candidates = fitted
    X = ds.X("oot").head(200).copy()
    X.loc[X.index[:5], "product"] = "NEVER_SEEN"
    encoder = candidates["self_cure"]["naive"].encoder_
    codes = encoder.codes(X)
    assert set(candidates["roll"]) == {"s_learner", "t_learner"}
    for model in candidates["roll"].values():
        want = model.predict_outcomes(X)
        got = causal.predict_codes(model, codes, encoder.categories_)
        assert np.allclose(got[0], want[0], atol=1e-12) and np.allclose(got[1], want[1], atol=1e-12)
