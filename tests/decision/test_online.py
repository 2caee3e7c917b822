"""The online NumPy path gives exactly the batch's `score_frame` results, on real simulated gold rows.

A module fixture runs the real chain on the shared simulated extract (ingest -> etl -> train) and
reads a few hundred gold rows of several cut dates (eligible and not, with nulls); a few rows get
categories the model never saw. Each test scores them with `score_frame` and with `OnlineScorer`
(all rows in one call, and one row per call) and compares probability, decision, capacity flag and
the three reasons (code, text, contribution).
"""

from __future__ import annotations

import dataclasses
import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from cobranza.config import load_settings
from cobranza.contract import STANDARD
from cobranza.decision.online import OnlineRow, OnlineScorer, integer_column
from cobranza.decision.policy import champion_policy
from cobranza.decision.reasons import N_REASONS, NO_ACTIVE_MANDATE
from cobranza.decision.scoring import score_frame
from cobranza.lake import Lake
from cobranza.transforms.schema import CUT_DATE, ELIGIBLE, NON_FEATURES, OBLIGATION_ID

pytestmark = pytest.mark.slow
N_ROWS = 300


@pytest.fixture(scope="module")
def real(sim_extract, tmp_path_factory):
    from cobranza.ingest import ingest_extract
    from cobranza.ml.registry import load_champion
    from cobranza.ml.training import train
    from cobranza.transforms import run_etl

    root = tmp_path_factory.mktemp("online")
    # A small extract: loosen the gate so that the first model becomes champion.
    # A fixed pseudonym key: the client split, and so the champion, are the same every run.
    settings = load_settings(
        lake=root / "lake",
        gate={"max_ece": 1.0, "max_psi": 100.0},
        duckdb_threads=1,
        pseudonym_key="decision-online-tests-key-3c9e71b2d8a4f605",
    )
    ingest_extract(settings, sim_extract, STANDARD)
    run_etl(settings)
    train(settings)
    champion = load_champion(settings)
    glob = Lake(settings.lake).table_glob("gold", "obligation_snapshots")
    frame = (
        duckdb.connect()
        .execute(
            f"SELECT * FROM read_parquet('{glob}') ORDER BY {CUT_DATE} DESC, {OBLIGATION_ID} "
            f"LIMIT {N_ROWS}"
        )
        .df()
    )
    categorical = sorted(champion.model.encoder_.categories_)
    assert categorical, "the real gold has categorical features"
    frame[categorical] = frame[categorical].astype(object)
    for i, name in zip(range(0, len(frame), 37), categorical * 10, strict=False):
        frame.loc[i, name] = "NEVER_SEEN_CATEGORY"
    return {"champion": champion, "frame": frame, "categorical": categorical}


def request_rows(frame: pd.DataFrame) -> list[OnlineRow]:
    """The rows as an API request carries them: plain JSON values, nulls as None."""
    rows = []
    for rec in frame.to_dict("records"):
        features = {}
        for k, v in rec.items():
            if k in NON_FEATURES:
                continue
            v = v.item() if hasattr(v, "item") else v
            features[k] = None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
        cut = pd.Timestamp(rec[CUT_DATE]).date()
        rows.append(OnlineRow(rec[OBLIGATION_ID], cut, bool(rec[ELIGIBLE]), features))
    return rows


def assert_same(online: list[dict], batch: pd.DataFrame) -> None:
    assert len(online) == len(batch)
    for pred, row in zip(online, batch.to_dict("records"), strict=True):
        oid = pred["obligation_id"]
        assert oid == row[OBLIGATION_ID]
        assert pred["cut_date"] == row[CUT_DATE]
        assert pred["eligible"] == bool(row[ELIGIBLE])
        if math.isnan(row["probability"]):
            assert pred["probability"] is None, oid
        else:
            assert pred["probability"] == pytest.approx(row["probability"], abs=1e-12, rel=0)
        assert pred["decision"] == row["decision"], oid
        assert pred["capacity_limited"] == bool(row["capacity_limited"]), oid
        for name in ("p_roll_no_action", "p_roll_action", "roll_loss", "expected_benefit"):
            if math.isnan(row[name]):
                assert pred[name] is None, (oid, name)
            else:
                assert pred[name] == pytest.approx(row[name], abs=1e-9, rel=1e-12), (oid, name)
        assert pred["arm"] == row["arm"], oid
        assert pred["model_version"] == row["model_version"], oid
        expected = [
            (i, row[f"reason_{i}_code"], row[f"reason_{i}_text"], row[f"reason_{i}_contribution"])
            for i in range(1, N_REASONS + 1)
            if isinstance(row[f"reason_{i}_code"], str)
        ]
        got = [(r["rank"], r["code"], r["text"], r["contribution"]) for r in pred["reasons"]]
        assert [g[:3] for g in got] == [e[:3] for e in expected], oid
        for g, e in zip(got, expected, strict=True):
            if e[3] is None or math.isnan(e[3]):
                assert g[3] is None, oid
            else:
                assert g[3] == pytest.approx(e[3], abs=1e-9, rel=0), oid


def _scorer(champion, policy) -> OnlineScorer:
    from cobranza.decision.reasons import feature_templates

    return OnlineScorer(
        champion.model, policy, feature_templates(), str(champion.version), roll=champion.roll
    )


def test_online_equals_batch_on_real_gold(real):
    champion, frame = real["champion"], real["frame"]
    # the benefit rule itself: this small extract's holdout does not identify the effect of
    # management (every eligible row would be ASSIGN; the test below covers that policy)
    policy = dataclasses.replace(champion_policy(champion), effect_identified=True)
    batch = score_frame(champion, frame, policy=policy)  # also checks the path table once
    rows = request_rows(frame)
    scorer = _scorer(champion, policy)
    assert scorer.ready
    together = scorer.score(rows)
    assert_same(together, batch)
    one_by_one = [scorer.score([row])[0] for row in rows]
    assert_same(one_by_one, batch)

    # the sample covers what must hold: several cuts, ineligible rows, nulls, unseen categories
    eligible = frame[ELIGIBLE].to_numpy(dtype=bool)
    assert frame[CUT_DATE].nunique() > 1 and 0 < (~eligible).sum() < len(frame)
    assert any(v is None for row in rows for v in row.features.values())
    assert {p["decision"] for p in together} == {"ASSIGN", "NO_ASSIGN"}
    assert all(p["reasons"][0]["code"] == NO_ACTIVE_MANDATE for p in together if not p["eligible"])
    codes = {r["code"] for p in together for r in p["reasons"]}
    assert len(codes) > 5


def test_online_equals_batch_in_spanish(real):
    """The collections team's language: same texts online and in batch, Spanish words."""
    from cobranza.decision.reasons import NO_ACTIVE_MANDATE_TEXTS, feature_templates

    champion, frame = real["champion"], real["frame"]
    policy = champion_policy(champion)
    batch = score_frame(champion, frame, policy=policy, language="es")
    scorer = OnlineScorer(
        champion.model, policy, feature_templates("es"), str(champion.version), "es", champion.roll
    )
    online = scorer.score(request_rows(frame))
    assert_same(online, batch)
    english = score_frame(champion, frame, policy=policy)
    assert (batch["decision"] == english["decision"]).all()  # words change, decisions do not
    texts = {r["text"] for p in online for r in p["reasons"]}
    assert NO_ACTIVE_MANDATE_TEXTS["es"] in texts
    assert set(batch["reason_1_text"].dropna()).isdisjoint(set(english["reason_1_text"].dropna()))


def test_online_equals_batch_with_capacity(real):
    """A capacity couples the rows of one cut: decided over the call's rows, per cut, as the batch."""
    champion, frame = real["champion"], real["frame"]
    policy = champion_policy(champion)
    per_cut = frame.groupby(CUT_DATE).size().min()
    capped = dataclasses.replace(policy, capacity=int(per_cut // 3))
    batch = score_frame(champion, frame, policy=capped)
    assert batch["capacity_limited"].any()
    online = _scorer(champion, capped).score(request_rows(frame))
    assert_same(online, batch)


def test_online_equals_batch_with_a_holdout(real):
    """The experiment's arms: the same obligation and cut get the same arm and decision online
    (together or one row per call) and in batch; holdout rows are NO_ASSIGN with the control
    group as their reason, and the capacity binds on the other rows only."""
    from cobranza.decision.experiment import HOLDOUT, ArmDesign
    from cobranza.decision.reasons import CONTROL_GROUP, feature_templates

    champion, frame = real["champion"], real["frame"]
    per_cut = frame.groupby(CUT_DATE).size().min()
    policy = dataclasses.replace(champion_policy(champion), capacity=int(per_cut // 3))
    design = ArmDesign(holdout_share=0.3, salt="online-test")
    batch = score_frame(champion, frame, policy=policy, design=design)
    scorer = OnlineScorer(
        champion.model,
        policy,
        feature_templates(),
        str(champion.version),
        roll=champion.roll,
        design=design,
    )
    rows = request_rows(frame)
    together = scorer.score(rows)
    assert_same(together, batch)
    one_by_one = [scorer.score([row])[0] for row in rows]
    assert [p["arm"] for p in one_by_one] == list(batch["arm"])
    held = batch["arm"] == HOLDOUT
    assert held.any() and batch.loc[held, ELIGIBLE].all()
    assert (batch.loc[held, "decision"] == "NO_ASSIGN").all()
    assert not batch.loc[held, "capacity_limited"].any()
    assert (batch.loc[held, "reason_1_code"] == CONTROL_GROUP).all()
    assert batch.loc[held, "reason_2_code"].isna().all()
    assert batch["capacity_limited"].any()
    # where the capacity binds, ASSIGN rows fill it exactly (ineligible ones stay ASSIGN by rule
    # beyond it): holdout rows never take any of it
    for _, cut in batch.groupby(CUT_DATE):
        if cut["capacity_limited"].any():
            n_ineligible = int((~cut[ELIGIBLE].astype(bool)).sum())
            assert (cut["decision"] == "ASSIGN").sum() == max(policy.capacity, n_ineligible)


def test_online_equals_batch_when_the_effect_is_not_identified(real):
    """A policy whose effect of management is not identified: every eligible row but the
    holdout's ASSIGN with EFFECT_NOT_IDENTIFIED first, the same online and in batch."""
    from cobranza.decision.experiment import HOLDOUT, ArmDesign
    from cobranza.decision.reasons import EFFECT_NOT_IDENTIFIED, feature_templates

    champion, frame = real["champion"], real["frame"]
    policy = dataclasses.replace(
        champion_policy(champion), effect_identified=False, effect_low=-0.5, effect_high=0.1
    )
    design = ArmDesign(holdout_share=0.3, salt="online-test")
    batch = score_frame(champion, frame, policy=policy, design=design, language="es")
    scorer = OnlineScorer(
        champion.model,
        policy,
        feature_templates("es"),
        str(champion.version),
        "es",
        roll=champion.roll,
        design=design,
    )
    assert_same(scorer.score(request_rows(frame)), batch)
    managed = batch[ELIGIBLE].astype(bool) & (batch["arm"] != HOLDOUT)
    assert managed.any() and (batch["arm"] == HOLDOUT).any()
    assert (batch.loc[managed, "decision"] == "ASSIGN").all()
    assert (batch.loc[managed, "reason_1_code"] == EFFECT_NOT_IDENTIFIED).all()
    assert (batch.loc[batch["arm"] == HOLDOUT, "decision"] == "NO_ASSIGN").all()


def test_online_equals_batch_with_a_registered_challenger(challenger_lake):
    """With a challenger registered, its arm's rows are decided by it online exactly as in batch
    (together or one row per call, with a capacity over both arms), carrying its version."""
    from cobranza.decision.experiment import CHALLENGER, HOLDOUT, ArmDesign
    from cobranza.decision.reasons import feature_templates

    champion, challenger = challenger_lake["champion"], challenger_lake["challenger"]
    settings = challenger_lake["settings"]
    language = settings.reason_language
    glob = Lake(settings.lake).table_glob("gold", "obligation_snapshots")
    frame = (
        duckdb.connect()
        .execute(
            f"SELECT * FROM read_parquet('{glob}') ORDER BY {CUT_DATE} DESC, {OBLIGATION_ID} "
            f"LIMIT {N_ROWS}"
        )
        .df()
    )
    per_cut = frame.groupby(CUT_DATE).size().min()
    costs = settings.costs
    policy = dataclasses.replace(champion_policy(champion, None, costs), capacity=int(per_cut // 3))
    design = ArmDesign.from_settings(settings.experiment)
    batch = score_frame(
        champion, frame, policy=policy, design=design, challenger=challenger, language=language
    )
    templates = feature_templates(language)

    def scorer(holder, other=None):
        return OnlineScorer(
            holder.model,
            policy,
            templates,
            str(holder.version),
            language,
            holder.roll,
            design,
            challenger=other,
        )

    online = scorer(champion, scorer(challenger))
    rows = request_rows(frame)
    together = online.score(rows)
    assert_same(together, batch)
    one_by_one = [online.score([row])[0] for row in rows]
    assert [p["arm"] for p in one_by_one] == list(batch["arm"])
    assert [p["model_version"] for p in one_by_one] == list(batch["model_version"])
    routed = batch["arm"] == CHALLENGER
    assert routed.any() and (batch["arm"] == HOLDOUT).any()
    assert set(batch.loc[routed, "model_version"]) == {challenger.version}
    assert batch["capacity_limited"].any()
    # without the challenger the online scorer routes nothing: every row is the champion's
    alone = scorer(champion).score(rows)
    assert {p["model_version"] for p in alone} == {champion.version}
    assert CHALLENGER not in {p["arm"] for p in alone}


def test_online_defers_to_batch_until_the_path_table_is_checked(real):
    """A model whose path table no batch call has checked yet: `score` returns None."""
    import copy

    champion = real["champion"]
    fresh = copy.deepcopy(champion.model)  # a new object: no table yet
    scorer = OnlineScorer(fresh, champion_policy(champion), {}, "x", roll=champion.roll)
    rows = request_rows(real["frame"].head(3))
    assert not scorer.ready and scorer.score(rows) is None


def test_integer_column_rule():
    assert integer_column([1, 2, 3000])
    assert not integer_column([1, None])
    assert not integer_column([1, 2.0])
    assert not integer_column([True])
    assert not integer_column([2**63])
    assert integer_column([-(2**63)])


def test_reason_text_rounds_floats_and_keeps_integers(real):
    champion = real["champion"]
    scorer = OnlineScorer(champion.model, champion_policy(champion), {}, "x", roll=champion.roll)
    assert scorer._text("f", 123456, integer=True) == "f = 123456"
    # A whole number is shown whole even in a float column (a null elsewhere made it float).
    assert scorer._text("f", 123456.0, integer=False) == "f = 123456"
    assert scorer._text("f", 123456.7, integer=False) == "f = 123000"
    assert scorer._text("f", 0.012345, integer=False) == "f = 0.0123"
    assert scorer._text("f", None, integer=False) == "f: no data"
    assert scorer._text("f", "MASS", integer=False) == "f = MASS"
    codes = scorer.encode([OnlineRow("x", None, True, {})])
    n = len(scorer.features)
    assert np.isnan(codes[:, :n]).all()
    # a causal self-cure model's treatment column is the counterfactual: without management
    assert codes.shape[1] == n or codes[:, n:].tolist() == [[0.0]]


def test_batch_reason_text_of_a_row_does_not_depend_on_the_other_rows():
    """A count shown in a reason reads the same whether or not another row of the batch is null."""
    from cobranza.decision.reasons import reason_columns

    idx = np.zeros((2, 1), dtype=np.int64)
    contrib = np.ones((2, 1))
    alone = reason_columns(idx[:1], contrib[:1], pd.DataFrame({"f": [1234]}), ["f"], {})
    mixed = reason_columns(idx, contrib, pd.DataFrame({"f": [1234, None]}), ["f"], {})
    assert alone["reason_1_text"][0] == mixed["reason_1_text"][0] == "f = 1234"
    assert mixed["reason_1_text"][1] == "f: no data"


def test_online_defers_to_batch_without_a_roll_model(real):
    """A champion without a roll model cannot decide online: `score` returns None (the batch
    path then names the problem)."""
    champion, frame = real["champion"], real["frame"]
    policy = champion_policy(champion)
    score_frame(champion, frame.head(80), policy=policy)  # checks the path table
    scorer = OnlineScorer(champion.model, policy, {}, "x")
    rows = [r for r in request_rows(frame.head(80)) if r.eligible][:3]
    assert scorer.ready and scorer.score(rows) is None
