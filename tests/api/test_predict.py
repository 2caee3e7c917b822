"""`POST /v1/predict` in process (TestClient) on a lake with a trained champion (real MLflow store).

Requests of up to `MAX_ROWS` obligations take the NumPy online path (a few in the event loop, more in
the thread pool) once the model's path table has been checked by one batch call; larger ones go
through `score_frame` in the micro-batcher. Both must answer the same, and the
same as batch scoring of the gold rows; refusals keep their 422 messages.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from cobranza.api import create_app
from cobranza.api.keys import create_key
from cobranza.api.results import row_view
from cobranza.api.routers.predict import INLINE_ROWS
from cobranza.config import load_settings
from cobranza.decision.experiment import ArmDesign
from cobranza.decision.online import MAX_ROWS
from cobranza.decision.policy import champion_policy
from cobranza.decision.scoring import score_frame
from cobranza.lake import Lake
from cobranza.transforms.schema import NON_FEATURES
from tests.ml.gold import make_gold, publish_gold


@pytest.fixture(scope="module")
def served(tmp_path_factory, fast_options_module):
    from cobranza.ml.registry import load_champion
    from cobranza.ml.training import train

    root = tmp_path_factory.mktemp("predict")
    gold = make_gold(clients=500, months=8, seed=5)
    lake = Lake(root / "lake").ensure()
    truth = root / "truth" / "p_true.csv"
    publish_gold(lake, gold, truth)
    # English reasons: the tests compare them with score_frame's default language
    settings = load_settings(
        lake=root / "lake", truth_path=truth, gate={"max_ece": 1.0}, reason_language="en"
    )
    train(settings)
    champion = load_champion(settings)
    key = create_key(settings, "viewer", "predict-test")["key"]
    app = create_app(settings, fast_options_module)
    with TestClient(app) as client:
        yield {
            "client": client,
            "headers": {"X-API-Key": key},
            "gold": gold,
            "champion": champion,
            "app": app,
            "settings": settings,
        }


@pytest.fixture(scope="module")
def fast_options_module():
    from cobranza.api import ApiOptions

    # one key sends a request per obligation in a loop (hundreds): the rate limits are off here,
    # tested in test_limits
    return ApiOptions(champion_check_seconds=60, rate_per_key=0, rate_per_address=0)


def known(gold: pd.DataFrame) -> pd.DataFrame:
    """Gold without the generator's true probabilities (`_p_*`): what a caller knows."""
    return gold.drop(columns=[c for c in gold.columns if c.startswith("_p_")])


def obligations(gold: pd.DataFrame) -> list[dict]:
    out = []
    for rec in known(gold).to_dict("records"):
        features = {}
        for k, v in rec.items():
            if k in NON_FEATURES:
                continue
            v = v.item() if hasattr(v, "item") else v
            features[k] = None if isinstance(v, float) and math.isnan(v) else v
        out.append(
            {
                "obligation_id": rec["obligation_id"],
                "cut_date": str(rec["cut_date"]),
                "eligible": bool(rec["eligible"]),
                "features": features,
            }
        )
    return out


def test_small_and_large_requests_equal_batch_scoring(served):
    client, headers, champion = served["client"], served["headers"], served["champion"]
    gold = served["gold"]
    gold = gold.sort_values(["cut_date", "obligation_id"], ascending=[False, True])
    gold = gold.head(MAX_ROWS + 20).reset_index(drop=True)  # two cut dates
    gold.loc[3, "product"] = "NOT_A_PRODUCT_SEEN_IN_TRAINING"
    obs = obligations(gold)
    loaded = served["app"].state.services.champion
    assert loaded.current() is None

    # the first call loads the model and goes through score_frame (which checks the path table)
    first = client.post("/v1/predict", json={"obligations": obs[:1]}, headers=headers)
    assert first.status_code == 200, first.text
    assert loaded.current().online.ready

    big = client.post("/v1/predict", json={"obligations": obs}, headers=headers)
    assert big.status_code == 200, big.text
    large = big.json()["predictions"]  # more than MAX_ROWS: the batch path
    assert len(obs) > MAX_ROWS
    small = [
        client.post("/v1/predict", json={"obligations": [ob]}, headers=headers).json()[
            "predictions"
        ][0]
        for ob in obs
    ]
    assert first.json()["predictions"][0] == small[0]
    mid = INLINE_ROWS + 12  # the NumPy path in the thread pool
    middle = client.post("/v1/predict", json={"obligations": obs[:mid]}, headers=headers)
    assert middle.json()["predictions"] == small[:mid]

    policy = champion_policy(champion)
    design = ArmDesign.from_settings(loaded.settings.experiment)  # the service's holdout
    batch = score_frame(champion, known(gold), policy=policy, design=design)
    assert {p["decision"] for p in small} == {"ASSIGN", "NO_ASSIGN"}
    assert [p["arm"] for p in small] == list(batch["arm"]) == [p["arm"] for p in large]
    for one, many, row in zip(small, large, batch.to_dict("records"), strict=True):
        assert one["obligation_id"] == many["obligation_id"] == row["obligation_id"]
        assert one["decision"] == many["decision"] == row["decision"]
        assert one["capacity_limited"] == many["capacity_limited"] is False
        if row["eligible"]:
            for name in ("probability", "p_roll_no_action", "p_roll_action"):
                assert one[name] == pytest.approx(row[name], abs=1e-12, rel=0), name
                assert many[name] == pytest.approx(row[name], abs=1e-12, rel=0), name
            for name in ("roll_loss", "expected_benefit"):  # pesos
                assert one[name] == pytest.approx(row[name], abs=1e-6), name
                assert many[name] == pytest.approx(row[name], abs=1e-6), name
            if row["arm"] != "HOLDOUT":  # the control group is NO_ASSIGN whatever the benefit
                assert (row["expected_benefit"] < 0) == (row["decision"] == "NO_ASSIGN")
        else:
            for name in ("probability", "p_roll_no_action", "p_roll_action", "expected_benefit"):
                assert one[name] is None and many[name] is None, name
            assert one["roll_loss"] == pytest.approx(row["roll_loss"], abs=1e-6)
        expected = [  # each reason once, as /v1/scores lists them
            (r["code"], r["text"]) for r in row_view(row)["reasons"]
        ]
        assert [(r["code"], r["text"]) for r in one["reasons"]] == expected
        assert one["reasons"] == many["reasons"]
    costs = policy.to_dict()
    assert big.json()["costs"] == {
        name: costs[name]
        for name in (
            "collection_action",
            "later_collection_cost",
            "provision_step",
            "default_provision_step",
            "capacity",
        )
    }
    assert "threshold" not in big.json()


def test_refusals_keep_their_messages(served):
    client, headers = served["client"], served["headers"]
    ob = obligations(served["gold"].head(1))[0]
    feats = ob["features"]

    def post(features: dict) -> list[dict]:
        resp = client.post(
            "/v1/predict", json={"obligations": [{**ob, "features": features}]}, headers=headers
        )
        assert resp.status_code == 422, resp.text
        return resp.json()["detail"]

    missing = post({k: v for k, v in feats.items() if k != "noise_feature"})
    needs = f"the champion (version {served['champion'].version}) needs"
    assert missing[0]["msg"] == f"missing feature(s) {needs}: noise_feature"
    unknown = post({**feats, "shoe_size": 42})
    assert unknown[0]["msg"] == "unknown feature(s): shoe_size"
    categorical = post({**feats, "product": 3})
    assert categorical[0]["msg"] == "categorical feature: give a string (or null)"
    assert categorical[0]["loc"] == ["body", "obligations", 0, "features", "product"]
    numeric = post({**feats, "noise_feature": "high"})
    assert numeric[0]["msg"] == "numeric feature: give a finite number (or null)"
    huge = post({**feats, "noise_feature": 10**400})
    assert huge[0]["msg"] == "numeric feature: give a finite number (or null)"
    assert huge[0]["loc"] == ["body", "obligations", 0, "features", "noise_feature"]
    empty = client.post("/v1/predict", json={"obligations": []}, headers=headers)
    assert empty.status_code == 422
    assert client.post("/v1/predict", json={"obligations": [ob]}).status_code == 401


def test_predict_is_counted_and_logged(served):
    client, headers = served["client"], served["headers"]
    ob = obligations(served["gold"].head(1))[0]
    resp = client.post(
        "/v1/predict", json={"obligations": [ob]}, headers={**headers, "X-Request-ID": "abc-123"}
    )
    assert resp.status_code == 200 and resp.headers["x-request-id"] == "abc-123"
    metrics = client.get("/metrics").text
    line = next(
        m
        for m in metrics.splitlines()
        if m.startswith("cobranza_api_requests_total{")
        and 'route="/v1/predict"' in m
        and 'status="200"' in m
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1


def test_no_champion_is_503(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    Lake(settings.lake).ensure()
    key = create_key(settings, "viewer", "t")["key"]
    with TestClient(create_app(settings)) as client:
        resp = client.post(
            "/v1/predict",
            json={"obligations": [{"obligation_id": "x", "features": {"a": 1.0}}]},
            headers={"X-API-Key": key},
        )
    assert resp.status_code == 503 and "champion" in resp.json()["detail"]


def test_after_load_hook_runs_once_per_load(served):
    """`cobranza serve` freezes the GC after each model load through this hook."""
    from cobranza.api.champion import ChampionCache

    calls: list[str] = []
    cache = ChampionCache(
        served["settings"], check_seconds=3600, after_load=lambda: calls.append(1)
    )
    first = cache.get()
    assert cache.get() is first and calls == [1]
    assert first.online is not None and first.online.version == first.version


def test_reason_language_setting_gives_spanish_texts_online_and_in_batch(served):
    """`reason_language = "es"`: the service predicts with the same model, in the team's words."""
    from cobranza.api import ApiOptions
    from cobranza.decision.reasons import NO_ACTIVE_MANDATE_TEXTS

    settings = served["settings"].model_copy(update={"reason_language": "es"})
    gold = served["gold"].sort_values("obligation_id").head(40).reset_index(drop=True)
    obs = obligations(gold)
    app = create_app(settings, ApiOptions(champion_check_seconds=60))
    with TestClient(app) as client:
        resp = client.post("/v1/predict", json={"obligations": obs}, headers=served["headers"])
    assert resp.status_code == 200, resp.text
    predictions = resp.json()["predictions"]
    champion = served["champion"]
    design = ArmDesign.from_settings(settings.experiment)  # the service's holdout
    batch = score_frame(
        champion, gold, policy=champion_policy(champion), language="es", design=design
    ).to_dict("records")
    for pred, row in zip(predictions, batch, strict=True):
        texts = [r["text"] for r in pred["reasons"]]
        assert texts == [r["text"] for r in row_view(row)["reasons"]]
    ineligible = [p for p in predictions if not p["eligible"]]
    assert ineligible and all(
        p["reasons"][0]["text"] == NO_ACTIVE_MANDATE_TEXTS["es"] for p in ineligible
    )


def test_unknown_feature_names_are_masked_escaped_and_truncated(served):
    """The caller needs the unknown names to fix the call, but they are their input:
    e-mail and document shapes masked, characters outside `A-Za-z0-9_.-` as `?`, 40 characters
    at most, 10 names at most."""
    client, headers = served["client"], served["headers"]
    ob = obligations(served["gold"].head(1))[0]
    odd = {
        "jorge.quintero366@outlook.com": 1,
        "<script>alert(1)</script>": 1,
        "doc_1014929605": 1,
        "a\u202eb\x00c": 1,
        "x" * 300: 1,
    }
    resp = client.post(
        "/v1/predict",
        json={"obligations": [{**ob, "features": {**ob["features"], **odd}}]},
        headers=headers,
    )
    assert resp.status_code == 422
    (detail,) = resp.json()["detail"]
    msg = detail["msg"]
    assert msg.startswith("unknown feature(s): ")
    for leaked in ("jorge.quintero366", "outlook.com", "<script>", "\u202e", "\x00", "x" * 41):
        assert leaked not in msg, leaked
    assert "[redacted]" in msg and "?script?alert?1???script?" in msg and "a?b?c" in msg
    assert "x" * 40 + "..." in msg
    many = {f"extra_{i:02d}": 1 for i in range(15)}
    resp = client.post(
        "/v1/predict",
        json={"obligations": [{**ob, "features": {**ob["features"], **many}}]},
        headers=headers,
    )
    assert resp.json()["detail"][0]["msg"].endswith("extra_09 (and 5 more)")


@pytest.fixture(scope="module")
def served_with_challenger(tmp_path_factory, fast_options_module):
    """A champion and a registered challenger (a training the gate refuses), served."""
    from cobranza.ml.registry import load_challenger, load_champion
    from cobranza.ml.training import train

    root = tmp_path_factory.mktemp("predict_challenger")
    gold = make_gold(clients=500, months=8, seed=5)
    lake = Lake(root / "lake").ensure()
    publish_gold(lake, gold)
    common = dict(
        lake=root / "lake",
        reason_language="en",
        pseudonym_key="api-predict-challenger-key-8d41c0f7a2b95e63",
        experiment={"holdout_share": 0.1, "challenger_share": 0.4},
    )
    settings = load_settings(**common, gate={"max_ece": 1.0})
    train(settings)
    assert train(load_settings(**common, seed=9, gate={"max_psi": 0.0})).alias == "challenger"
    key = create_key(settings, "viewer", "predict-challenger-test")["key"]
    app = create_app(settings, fast_options_module)
    with TestClient(app) as client:
        yield {
            "client": client,
            "headers": {"X-API-Key": key},
            "gold": gold,
            "champion": load_champion(settings),
            "challenger": load_challenger(settings),
            "settings": settings,
        }


def test_predict_routes_the_challenger_arm_as_batch_scoring_does(served_with_challenger):
    """Online (one row per call) and through the micro-batcher (a large call), the CHALLENGER
    rows are decided by the challenger with its version, exactly as `score_frame` decides them."""
    s = served_with_challenger
    client, headers = s["client"], s["headers"]
    champion, challenger = s["champion"], s["challenger"]
    gold = s["gold"].sort_values(["cut_date", "obligation_id"], ascending=[False, True])
    gold = gold.head(MAX_ROWS + 20).reset_index(drop=True)
    obs = obligations(gold)
    big = client.post("/v1/predict", json={"obligations": obs}, headers=headers)
    assert big.status_code == 200, big.text
    assert big.json()["model_version"] == champion.version
    large = big.json()["predictions"]
    small = [
        client.post("/v1/predict", json={"obligations": [ob]}, headers=headers).json()[
            "predictions"
        ][0]
        for ob in obs
    ]
    design = ArmDesign.from_settings(s["settings"].experiment)
    batch = score_frame(
        champion,
        known(gold),
        policy=champion_policy(champion, None, s["settings"].costs),
        design=design,
        challenger=challenger,
    )
    assert [p["arm"] for p in small] == list(batch["arm"]) == [p["arm"] for p in large]
    assert [p["model_version"] for p in small] == list(batch["model_version"])
    assert [p["model_version"] for p in large] == list(batch["model_version"])
    routed = batch["arm"] == "CHALLENGER"
    assert routed.any() and set(batch.loc[routed, "model_version"]) == {challenger.version}
    for one, many, row in zip(small, large, batch.to_dict("records"), strict=True):
        assert one["decision"] == many["decision"] == row["decision"]
        if row["eligible"]:
            assert one["probability"] == pytest.approx(row["probability"], abs=1e-12, rel=0)
            assert many["probability"] == pytest.approx(row["probability"], abs=1e-12, rel=0)
        expected = [(r["code"], r["text"]) for r in row_view(row)["reasons"]]
        assert [(r["code"], r["text"]) for r in one["reasons"]] == expected
        assert one["reasons"] == many["reasons"]


def test_the_service_follows_the_challenger_alias(served_with_challenger):
    """The cache loads the registered challenger beside the champion, asks for both models'
    features, and drops it once the alias is gone (at its next check)."""
    from mlflow import MlflowClient

    from cobranza.api.champion import ChampionCache

    s = served_with_challenger
    settings, challenger = s["settings"], s["challenger"]
    cache = ChampionCache(settings, check_seconds=3600)
    loaded = cache.get()
    assert loaded.challenger is not None and loaded.challenger.version == challenger.version
    assert loaded.challenger_version == challenger.version
    assert loaded.online.challenger is not None
    assert set(challenger.features) | set(s["champion"].features) == set(loaded.features)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    client.delete_registered_model_alias(settings.model_name, "challenger")
    try:
        cache.refresh_now()
        after = cache.get()
        assert after.challenger is None and after.online.challenger is None
        assert after.version == s["champion"].version
    finally:
        client.set_registered_model_alias(settings.model_name, "challenger", challenger.version)


@pytest.fixture(scope="module")
def live_challenger_with_own_feature(tmp_path_factory):
    """A real `cobranza serve` whose challenger needs a feature the champion was trained
    without: the champion on a gold version lacking `noise_feature`, the challenger (a training
    the gate refuses) on the next one, which has it."""
    from cobranza.ml.registry import load_challenger, load_champion
    from cobranza.ml.training import train
    from tests.api.conftest import LiveServer, free_port

    root = tmp_path_factory.mktemp("predict_own_feature")
    gold = make_gold(clients=500, months=8, seed=5)
    lake = Lake(root / "lake").ensure()
    publish_gold(lake, gold.drop(columns=["noise_feature"]))
    common = dict(lake=root / "lake", pseudonym_key="api-predict-own-feature-3c9e51b07d2a84f6")
    settings = load_settings(**common, gate={"max_ece": 1.0})
    train(settings)
    publish_gold(lake, gold)
    assert train(load_settings(**common, seed=9, gate={"max_psi": 0.0})).alias == "challenger"
    champion, challenger = load_champion(settings), load_challenger(settings)
    assert "noise_feature" in challenger.features and "noise_feature" not in champion.features
    key = create_key(settings, "viewer", "predict-own-feature")["key"]
    server = LiveServer(root / "lake", free_port()).start()
    try:
        yield {
            "url": server.url,
            "headers": {"X-API-Key": key},
            "gold": gold,
            "champion": champion,
            "challenger": challenger,
        }
    finally:
        server.stop()


def test_a_missing_feature_is_named_with_the_model_that_needs_it(live_challenger_with_own_feature):
    """A request carries both models' features; a 422 says whether the champion, the challenger
    or both need each missing one, with their versions."""
    from tests.http import live_client

    s = live_challenger_with_own_feature
    http = live_client(timeout=180)
    champion, challenger = s["champion"].version, s["challenger"].version
    ob = obligations(s["gold"].head(1))[0]
    feats = ob["features"]

    def post(features: dict) -> list[str]:
        resp = http.post(
            s["url"] + "/v1/predict",
            json={"obligations": [{**ob, "features": features}]},
            headers=s["headers"],
        )
        assert resp.status_code == 422, resp.text
        return [d["msg"] for d in resp.json()["detail"]]

    only_theirs = post({k: v for k, v in feats.items() if k != "noise_feature"})
    assert only_theirs == [
        f"missing feature(s) the challenger (version {challenger}) needs: noise_feature"
    ]
    shared = s["champion"].features[0]
    both = post({k: v for k, v in feats.items() if k not in (shared, "noise_feature")})
    assert both == [
        f"missing feature(s) the champion (version {champion}) and the challenger "
        f"(version {challenger}) need: {shared}",
        f"missing feature(s) the challenger (version {challenger}) needs: noise_feature",
    ]
    # with every feature the call is answered, the challenger deciding its arm's rows
    ok = http.post(
        s["url"] + "/v1/predict",
        json={"obligations": obligations(s["gold"].head(60))},
        headers=s["headers"],
    )
    assert ok.status_code == 200, ok.text
    versions = {p["model_version"] for p in ok.json()["predictions"] if p["arm"] == "CHALLENGER"}
    assert versions == {challenger}
