"""Training on a gold-shaped table: end to end (determinism, MLflow round trip, gate, registry,
BI), step by step, and under failure (a killed or late-failing training publishes nothing; a
registered version always carries its lineage). Real MLflow SQLite stores in tmp lakes, real
subprocesses (SIGKILL, the `cobranza` command)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pytest

from cobranza.errors import CobranzaError
from cobranza.ml.data import load_dataset
from cobranza.ml.registry import list_models, load_champion, promote
from cobranza.ml.training import TrainingError, fit, fit_decision_policy
from tests.ml.conftest import make_lake, settings_for
from tests.ml.stores import CLI, REPO, db_rows, registry_events, versions_in_store


def _run_metrics(settings, run_id):
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    return client.get_run(run_id).data


def test_same_data_config_and_seed_give_identical_metrics(trained):
    s = trained["settings"]
    first = _run_metrics(s, trained["first"].run_id)
    second = _run_metrics(s, trained["second"].run_id)
    assert trained["first"].run_id != trained["second"].run_id
    assert first.metrics == second.metrics  # exact, every digit
    assert len(first.metrics) > 40
    assert first.params["lgbm.best_iteration"] == second.params["lgbm.best_iteration"]


def test_run_logs_metrics_per_part_lineage_config_and_artifacts(trained):
    s, lake = trained["settings"], trained["lake"]
    run_id = trained["first"].run_id
    data = _run_metrics(s, run_id)
    for part in ("train", "test", "oot"):
        for metric in ("auc", "gini", "ks", "pr_auc", "brier", "log_loss", "ece"):
            assert f"{part}_{metric}" in data.metrics
            assert f"baseline_{part}_{metric}" in data.metrics
        assert 0.5 < data.metrics[f"{part}_oracle_auc"] < 1
    assert "psi" in data.metrics
    gold = lake.run_info("gold")
    assert data.tags["gold_version"] == gold["version"]
    assert data.tags["gold_run_id"] == gold["run_id"]
    assert json.loads(data.tags["gold_inputs"]) == gold["inputs"]
    assert len(data.tags["git_commit"]) in (40, len("unknown"))
    assert data.params["cfg.pseudonym_key"] == "**********"
    assert data.params["cfg.seed"] == "42"
    assert "policy.collection_action" in data.params
    client = mlflow.MlflowClient(tracking_uri=s.tracking_uri)
    names = {
        a.path
        for folder in ("run", "report", "pictures", "policy")
        for a in client.list_artifacts(run_id, folder)
    }
    assert {"report/model_report.html", "policy/policy.json", "run/features.json"} <= names
    assert "run/intervals.json" in names
    (logged,) = client.get_run(run_id).inputs.dataset_inputs
    assert logged.dataset.name == f"obligation_snapshots@{gold['version']}"
    assert len(logged.dataset.digest) >= 8 and logged.tags[0].value == "training"
    assert "client_id" not in logged.dataset.schema  # gold holds pseudonyms only
    described = client.get_model_version(s.model_name, trained["first"].version).description
    assert described.startswith("P(self_cure_debit): the amount past due paid only by the")
    assert f"on gold {gold['version']}" in described
    assert f"OOT AUC {trained['first'].oot['auc']:.4f}" in described
    assert "gate first champion: " in described
    for metric in ("oot_calibration_slope", "oot_ece_high", "oot_auc_minus_baseline_low"):
        assert metric in data.metrics
    assert {"pictures/roc.png", "pictures/calibration.png", "pictures/shap_summary.png"} <= names
    report = client.download_artifacts(run_id, "report/model_report.html")
    html = Path(report).read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 8
    assert str(lake.root / "ml_metadata" / "artifacts") in client.get_run(run_id).info.artifact_uri
    # the truth is an evaluation input only: never a feature
    features = Path(client.download_artifacts(run_id, "run/features.json")).read_text()
    assert "p_true" not in json.loads(features)["features"]


def test_summary_shows_model_and_oracle_side_by_side(trained):
    summary = trained["first"]
    oot = summary.auc_vs_oracle["oot"]
    assert oot["model_auc"] == summary.oot["auc"]
    assert 0.6 < oot["model_auc"] <= oot["oracle_auc"] + 0.05
    assert oot["baseline_auc"] is not None


def test_pyfunc_from_the_store_equals_the_in_process_model(trained):
    s = trained["settings"]
    champion = load_champion(s)
    ds = load_dataset(trained["lake"], s.oot_months, s.test_share, s.seed)
    X = ds.X("oot")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{s.model_name}/{champion.version}")
    served = np.asarray(pyfunc.predict(X), dtype=np.float64)
    assert np.array_equal(served, champion.model.predict_proba(X)[:, 1])
    assert served.shape == (len(X),) and ((served > 0) & (served < 1)).all()
    meta = pyfunc.metadata
    assert meta.signature is not None
    assert [c.name for c in meta.signature.inputs.inputs] == ds.features
    contrib = champion.model.contributions(X.head(3))
    assert list(contrib.columns) == [*ds.features, "bias"]
    assert champion.policy.n_fit == len(ds.rows("test"))
    assert champion.features == ds.features


def test_gate_first_passes_then_compares_with_champion(trained):
    rows = {r["version"]: r for r in list_models(trained["settings"])}
    first, second = trained["first"].version, trained["second"].version
    assert rows[first]["gate_passed"] is True
    assert "first champion" in rows[first]["gate_reason"]
    # the same data, configuration and seed give the champion's own model: promoted only as
    # non-inferior, the AUC difference exactly 0 on the same out-of-time rows
    assert rows[second]["gate_passed"] is True
    assert rows[second]["gate_verdict"] == "non-inferior"
    assert rows[second]["gate_reason"].startswith(
        f"non-inferior within the margins on the same {trained['second'].gate.comparison['rows']:,} "
        f"out-of-time rows as champion v{first}"
    )
    assert (
        "challenger - champion +0.0000 (95% CI +0.0000 to +0.0000)" in rows[second]["gate_reason"]
    )
    comparison = trained["second"].gate.comparison
    assert comparison["champion_version"] == first
    assert comparison["champion_auc"] == comparison["challenger_auc"]
    assert comparison["rows"] == int(trained["second"].split["oot"].split()[0].replace(",", ""))
    tags = (
        mlflow.MlflowClient(tracking_uri=trained["settings"].tracking_uri)
        .get_model_version(trained["settings"].model_name, second)
        .tags
    )
    assert float(tags["gate_auc_difference_low"]) == 0.0 == float(tags["gate_auc_difference_high"])
    assert float(tags["gate_auc_margin"]) == 0.005 and tags["gate_champion_version"] == first
    assert trained["first"].gate.verdict == "first champion"
    assert trained["first"].gate.comparison is None


def test_a_challenger_trained_on_shuffled_labels_is_refused_on_the_champions_rows(
    tmp_path, gold_frame
):
    from cobranza.ml.training import train
    from tests.ml.gold import publish_gold

    lake, truth = make_lake(tmp_path, gold_frame)
    champion = train(settings_for(tmp_path, truth))
    labeled = sorted(gold_frame.loc[gold_frame["self_cure_debit"].notna(), "cut_date"].unique())
    earlier = gold_frame["cut_date"].isin(labeled[:-3]).to_numpy()  # all but the OOT months
    noise = gold_frame.copy()
    labels = noise.loc[earlier, "self_cure_debit"].to_numpy()
    noise.loc[earlier, "self_cure_debit"] = np.random.default_rng(1).permutation(labels)
    publish_gold(lake, noise)
    settings = settings_for(tmp_path, tmp_path / "no-truth.csv")
    worse = train(settings)
    assert worse.gate.passed is False and worse.alias == "challenger"
    assert worse.gate.verdict == "refused"
    reason = worse.gate.reason
    assert "AUC interval lower bound -0." in reason and "below the margin -0.0050" in reason
    assert f"out-of-time rows as champion v{champion.version}" in reason
    comparison = worse.gate.comparison
    assert comparison["auc_difference"]["high"] < 0
    assert comparison["challenger_auc"] < comparison["champion_auc"] - 0.1
    assert load_champion(settings).version == champion.version
    rows = {r["version"]: r for r in list_models(settings)}
    assert rows[worse.version]["gate_verdict"] == "refused"
    events = [e for e in registry_events(lake) if e["version"] == worse.version]
    assert any(e["event"] == "challenger" and "AUC interval" in e["reason"] for e in events)


def test_gate_failure_keeps_a_challenger_and_manual_promotion_records_who_why(tmp_path, gold_frame):
    from cobranza.ml.training import train

    lake, truth = make_lake(tmp_path, gold_frame)
    ok = train(settings_for(tmp_path, truth))
    strict = settings_for(tmp_path, truth, gate={"max_psi": 0.0})
    failed = train(strict)
    assert failed.gate.passed is False
    assert "PSI" in failed.gate.reason and "max_psi 0.0000" in failed.gate.reason
    rows = {r["version"]: r for r in list_models(strict)}
    assert rows[ok.version]["aliases"] == ["champion"]
    assert rows[failed.version]["aliases"] == ["challenger"]
    assert rows[failed.version]["gate_passed"] is False
    assert load_champion(strict).version == ok.version

    out = promote(strict, failed.version, who="ana", reason="approved by the risk committee")
    assert out["champion"] == failed.version and out["previous_champion"] == ok.version
    rows = {r["version"]: r for r in list_models(strict)}
    assert rows[failed.version]["aliases"] == ["champion"]
    assert rows[failed.version]["promoted_by"] == "ana"
    assert rows[failed.version]["promoted_reason"] == "approved by the risk committee"
    assert rows[ok.version]["aliases"] == []
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        events = con.execute(
            "SELECT version, event, who, reason FROM ml_metadata.registry_events "
            "WHERE event = 'manual_promotion'"
        ).fetchall()
    finally:
        con.close()
    assert events == [(failed.version, "manual_promotion", "ana", "approved by the risk committee")]
    with pytest.raises(CobranzaError, match="no version '99'"):
        promote(strict, "99", who="ana", reason="typo")


def test_no_champion_is_a_clear_error(tmp_path):
    settings = settings_for(tmp_path, tmp_path / "none.csv")
    with pytest.raises(CobranzaError, match="has no champion"):
        load_champion(settings)


def test_models_json_lists_versions_with_aliases_gate_and_oot_metrics(trained):
    from typer.testing import CliRunner

    from cobranza.cli import app
    from cobranza.console import ui

    lake = trained["lake"]
    try:
        out = CliRunner().invoke(app, ["--lake", str(lake.root), "--json", "models"])
    finally:
        ui.json = False
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    versions = {m["version"]: m for m in data["models"]}
    first, second = trained["first"].version, trained["second"].version
    assert set(versions) == {first, second}
    assert versions[second]["aliases"] == ["champion"]
    assert versions[first]["aliases"] == []
    assert versions[first]["oot_auc"] == pytest.approx(trained["first"].oot["auc"], abs=1e-4)
    for key in ("gate_passed", "gate_reason", "oot_ece", "psi", "run_id"):
        assert key in versions[first]


def test_ml_metadata_views_in_the_catalog(trained):
    lake = trained["lake"]
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        runs = con.execute(
            "SELECT run_id, model_version, gate_passed FROM ml_metadata.model_runs "
            "ORDER BY model_version"
        ).fetchall()
        auc = con.execute(
            "SELECT value FROM ml_metadata.model_metrics WHERE run_id = ? AND model = 'lightgbm' "
            "AND part = 'oot' AND metric = 'auc'",
            [trained["first"].run_id],
        ).fetchone()
        events = con.execute(
            "SELECT event, count(*) FROM ml_metadata.registry_events GROUP BY event ORDER BY event"
        ).fetchall()
        parts = con.execute(
            "SELECT DISTINCT part FROM ml_metadata.model_metrics ORDER BY part"
        ).fetchall()
    finally:
        con.close()
    assert [r[0] for r in runs] == [trained["first"].run_id, trained["second"].run_id]
    assert all(r[2] for r in runs)
    assert auc[0] == pytest.approx(trained["first"].oot["auc"], abs=1e-4)
    assert events == [("champion", 2), ("registered", 2)]
    assert [p[0] for p in parts] == ["oot", "test", "train", "train_to_oot", "valid"]


# ---- the steps, one by one ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory, gold_frame):
    lake, truth = make_lake(tmp_path_factory.mktemp("ml-steps"), gold_frame)
    return load_dataset(lake, 3, 0.25, 42), truth


def test_fit_gives_the_same_models_for_the_same_data_and_seed(dataset):
    ds, _ = dataset
    laps = []
    a = fit(ds, seed=3, lap=laps.append)
    b = fit(ds, seed=3)
    assert laps == ["fit_lightgbm", "fit_baseline"]  # no tuning asked: no tune lap
    assert a.tuning == [] and a.model.best_iteration_ == b.model.best_iteration_ >= 1
    X = ds.X("oot")
    assert np.array_equal(a.model.predict_proba(X), b.model.predict_proba(X))
    assert np.array_equal(a.baseline.predict_proba(X), b.baseline.predict_proba(X))


def test_the_policys_test_figures_are_the_expected_costs_under_the_configured_costs(dataset):
    from cobranza.config import load_settings
    from cobranza.decision.loss import expected_cost

    ds, _truth = dataset
    models = fit(ds, seed=3)
    settings = load_settings(costs={"collection_action": 9000})
    policy = fit_decision_policy(settings, ds, models)
    p0, p1 = models.roll.predict_outcomes(ds.X("test"))
    rows = ds.rows("test")
    loss = (
        rows["outstanding_balance"].to_numpy(dtype=np.float64)
        * rows["product"].map(settings.costs.provision_step).to_numpy(dtype=np.float64)
        + settings.costs.later_collection_cost
    )
    assign = (p0 - p1) * loss - 9000 >= 0
    cost = expected_cost(assign, p0, p1, loss, settings.costs)
    assert policy.n_fit == len(ds.rows("test")) and policy.collection_action == 9000
    assert policy.expected_cost_per_obligation == pytest.approx(cost.mean())
    assert policy.no_assign_share == pytest.approx((~assign).mean())
    assert policy.expected_cost_per_obligation <= policy.baseline_cost_per_obligation


# ---- a training that fails or is killed on the way publishes nothing ---------------------------
TRAIN_SCRIPT = (
    "import sys; from pathlib import Path; from tests.ml.conftest import settings_for; "
    "from cobranza.ml.training import train; root = Path(sys.argv[1]); "
    "train(settings_for(root, root / 'truth' / 'p_true.csv'))"
)


def test_train_killed_right_after_registration_leaves_lineage_and_no_alias(tmp_path, gold_frame):
    from cobranza.ml.training import train

    lake, truth = make_lake(tmp_path, gold_frame)
    settings = settings_for(tmp_path, truth)
    first = train(settings)
    db = lake.metadata_dir / "mlflow.db"
    before = versions_in_store(db)
    assert before == 1

    proc = subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    killed = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (versions_in_store(db) or 0) > before:
            os.killpg(proc.pid, signal.SIGKILL)  # the moment the version row is visible
            killed = True
            break
        time.sleep(0.002)
    proc.wait()
    assert killed, f"the training ended (rc {proc.returncode}) before it could be killed"

    gold = lake.current_version("gold")
    tags = db_rows(
        db, "SELECT version, key, value FROM model_version_tags WHERE key = 'gold_version'"
    )
    assert sorted(tags) == [(1, "gold_version", gold), (2, "gold_version", gold)]
    rows = {r["version"]: r for r in list_models(settings)}
    assert rows["2"]["gold_version"] == gold
    assert rows["2"]["aliases"] == []
    assert rows["2"]["training_status"] == "interrupted"
    assert "stopped before it finished" in rows["2"]["training_error"]
    assert rows[first.version]["aliases"] == ["champion"]
    assert load_champion(settings).version == first.version
    with pytest.raises(CobranzaError, match="cannot be promoted: its training interrupted"):
        promote(settings, "2", who="ana", reason="try the killed one")

    # the next training is unaffected and compares with the champion that kept deciding
    third = train(settings)
    assert third.version == "3" and third.training_status == "succeeded"
    assert f"champion v{first.version}" in third.gate.reason
    assert list(lake.metadata_dir.joinpath("training").glob("*.lock")) != []  # the killed one's


def _break_mirror(lake) -> None:
    """A file where the mirror's model_runs folder goes: writing the run's row fails (OSError)."""
    folder = lake.metadata_dir / "model_runs"
    shutil.rmtree(folder)
    folder.write_text("not a folder")


def _break_alias(lake) -> None:
    """The store refuses to write any alias (real SQLite triggers): the very last step fails."""
    con = sqlite3.connect(lake.metadata_dir / "mlflow.db")
    try:
        for when in ("INSERT", "UPDATE"):
            con.execute(
                f"CREATE TRIGGER refuse_alias_{when.lower()} BEFORE {when} ON "
                "registered_model_aliases BEGIN SELECT RAISE(ABORT, 'database or disk is full'); "
                "END"
            )
        con.commit()
    finally:
        con.close()


def _repair(lake) -> None:
    runs = lake.metadata_dir / "model_runs"
    if runs.is_file():
        runs.unlink()
    con = sqlite3.connect(lake.metadata_dir / "mlflow.db")
    try:
        con.execute("DROP TRIGGER IF EXISTS refuse_alias_insert")
        con.execute("DROP TRIGGER IF EXISTS refuse_alias_update")
        con.commit()
    finally:
        con.close()


@pytest.mark.parametrize(
    ("breaker", "stage"),
    [(_break_mirror, "write the ml_metadata mirror"), (_break_alias, "move the alias")],
    ids=["mirror", "alias"],
)
def test_a_training_failing_late_publishes_nothing(tmp_path, gold_frame, breaker, stage):
    from cobranza.decision.scoring import score
    from cobranza.ml.training import train

    lake, truth = make_lake(tmp_path, gold_frame)
    settings = settings_for(tmp_path, truth)
    first = train(settings)
    breaker(lake)

    with pytest.raises(TrainingError) as failure:
        train(settings)
    message = str(failure.value)
    assert "\n" not in message
    assert f"train failed at {stage}" in message
    assert "model version 2 is registered without an alias" in message
    assert "training_status=failed" in message
    assert f"the champion is still v{first.version}" in message

    rows = {r["version"]: r for r in list_models(settings)}
    assert rows["2"]["aliases"] == []
    assert rows["2"]["training_status"] == "failed"
    assert stage in rows["2"]["training_error"]
    assert rows["2"]["gate_passed"] is True  # the gate was evaluated and tagged ...
    assert rows["2"]["promoted_by"] is None  # ... but nothing was promoted
    assert rows["2"]["gold_version"] == lake.current_version("gold")
    assert rows["1"]["aliases"] == ["champion"]
    assert rows["1"]["training_status"] == "succeeded"
    assert load_champion(settings).version == "1"
    run = mlflow.MlflowClient(tracking_uri=settings.tracking_uri).get_run(rows["2"]["run_id"])
    assert run.data.tags["training_status"] == "failed"
    assert run.info.status == "FAILED" and stage in run.data.tags["training_error"]
    events = [(e["version"], e["event"]) for e in registry_events(lake)]
    assert ("2", "champion") not in events  # withdrawn, or never written
    assert ("2", "training_failed") in events
    assert not list(lake.metadata_dir.joinpath("training").glob("*.lock"))  # outcome recorded
    with pytest.raises(CobranzaError, match="cannot be promoted: its training failed"):
        promote(settings, "2", who="ana", reason="the failed one")

    _repair(lake)
    assert score(settings).model_version == "1"
    again = train(settings)
    assert again.version == "3" and again.alias == "champion"
    assert "champion v1" in again.gate.reason
    assert load_champion(settings).version == "3"


def test_a_training_stopped_after_its_alias_moved_ends_published(tmp_path, gold_frame):
    """The alias is the publication; `succeeded` is written after it.

    A real SQLite trigger refuses the `succeeded` tag, the write right after the alias: the
    training is published all the same, ends as such (not "failed" while it decides), and the
    version is listed succeeded although its tag still says running.
    """
    from cobranza.decision.scoring import score
    from cobranza.ml.training import train

    lake, truth = make_lake(tmp_path, gold_frame)
    settings = settings_for(tmp_path, truth)
    train(settings)
    con = sqlite3.connect(lake.metadata_dir / "mlflow.db")
    try:
        for when in ("INSERT", "UPDATE"):
            con.execute(
                f"CREATE TRIGGER refuse_succeeded_{when.lower()} BEFORE {when} ON "
                "model_version_tags WHEN NEW.key = 'training_status' AND NEW.value = 'succeeded' "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )
        con.commit()
    finally:
        con.close()

    second = train(settings)
    assert second.version == "2" and second.alias == "champion"
    tags = dict(
        db_rows(
            lake.metadata_dir / "mlflow.db",
            "SELECT key, value FROM model_version_tags WHERE version = 2",
        )
    )
    assert tags["training_status"] == "running"  # the refused write
    rows = {r["version"]: r for r in list_models(settings)}
    assert rows["2"]["aliases"] == ["champion"]
    assert rows["2"]["training_status"] == "succeeded"
    assert rows["2"]["promoted_by"] is not None
    assert ("2", "training_failed") not in [
        (e["version"], e["event"]) for e in registry_events(lake)
    ]
    assert load_champion(settings).version == "2"
    assert score(settings).model_version == "2"
    run = mlflow.MlflowClient(tracking_uri=settings.tracking_uri).get_run(second.run_id)
    assert run.info.status == "FINISHED"  # published: the run ends as a success

    con = sqlite3.connect(lake.metadata_dir / "mlflow.db")  # the store works again
    try:
        con.execute("DROP TRIGGER refuse_succeeded_insert")
        con.execute("DROP TRIGGER refuse_succeeded_update")
        con.commit()
    finally:
        con.close()
    # the alias moving off v2 settles its tag: it stays a published, promotable version
    promote(settings, "1", who="ana", reason="back to v1")
    rows = {r["version"]: r for r in list_models(settings)}
    assert rows["2"]["aliases"] == [] and rows["2"]["training_status"] == "succeeded"
    promote(settings, "2", who="ana", reason="and forth")
    assert load_champion(settings).version == "2"


def test_cli_train_failing_late_prints_one_line_and_no_traceback(tmp_path, gold_frame):
    from cobranza.ml.training import train

    lake, truth = make_lake(tmp_path, gold_frame)
    settings = settings_for(tmp_path, truth)
    train(settings)
    _break_mirror(lake)
    out = subprocess.run(
        [str(CLI), "--lake", str(lake.root), "train"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "400"},
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "Traceback" not in text
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    assert "train failed at write the ml_metadata mirror" in errors[0]
    assert "the champion is still v1" in errors[0]
    rows = {r["version"]: r for r in list_models(settings)}
    assert rows["2"]["aliases"] == [] and rows["2"]["training_status"] == "failed"
    assert rows["1"]["aliases"] == ["champion"]


def test_a_feature_carrying_the_label_stops_the_training_before_anything_is_published(
    tmp_path, gold_frame
):
    from cobranza.ml.training import train

    leaky = gold_frame.copy()
    # what the debit paid within the horizon: the label itself, with a little noise
    noise = np.random.default_rng(0).normal(0, 0.3, len(leaky))
    leaky["debit_paid_in_horizon"] = leaky["self_cure_debit"].astype("float64") + noise
    lake, truth = make_lake(tmp_path, leaky)
    settings = settings_for(tmp_path, truth)
    with pytest.raises(TrainingError) as failure:
        train(settings)
    message = str(failure.value)
    assert "\n" not in message and message.startswith("train stopped: ")
    for part in ("valid", "test", "oot"):
        assert f"on {part} the model's AUC " in message
    assert "on train (out of fold) the model's AUC " in message  # the train part alarms too
    assert "exceeds the oracle's" in message and "95% CI" in message
    assert "nothing was registered or published" in message
    assert "MLflow run ends FAILED" in message
    assert list_models(settings) == []
    assert versions_in_store(lake.metadata_dir / "mlflow.db") in (0, None)
    assert not list(lake.metadata_dir.glob("model_runs/**/*.parquet"))
    # the run that spanned the training ends FAILED with the reason, never as a success
    (run,) = mlflow.MlflowClient(tracking_uri=settings.tracking_uri).search_runs(
        [mlflow.get_experiment_by_name(settings.model_name).experiment_id]
    )
    assert run.info.status == "FAILED"
    assert run.data.tags["training_status"] == "failed"
    assert run.data.tags["training_error"].startswith("train stopped: ")
    assert not run.data.metrics  # nothing of the stopped training was logged as its result


def test_an_honest_model_never_beats_the_truth_on_any_part(trained):
    """Train included: read out of fold, where no row's client was fitted on."""
    intervals = trained["first"].intervals
    gaps = intervals["lightgbm_minus_oracle_auc"]
    assert set(gaps) == {"train", "valid", "test", "oot"}
    assert all(gaps[p]["low"] <= 0 for p in ("train", "valid", "test", "oot"))
    base = intervals["lightgbm_minus_baseline_oot_auc"]
    assert base["low"] <= base["estimate"] <= base["high"]
    calibration = intervals["calibration_oot"]
    assert calibration["oracle_ece"]["low"] <= calibration["oracle_ece"]["high"]
    assert {g["group"] for g in calibration["by_product"]} <= {
        "CONSUMER_LOAN", "CREDIT_CARD", "VEHICLE", "MORTGAGE", "MICROCREDIT"
    }  # fmt: skip


def test_with_randomized_rows_the_gate_also_compares_the_decisions_net_value(tmp_path, gold_frame):
    from cobranza.ml.training import train
    from tests.ml.gold import with_treatment

    gold = with_treatment(gold_frame)
    lake, truth = make_lake(tmp_path, gold)
    settings = settings_for(tmp_path, truth)
    first = train(settings)
    second = train(settings)
    assert first.gate.verdict == "first champion"
    value = second.gate.comparison["value"]
    oot = load_dataset(lake, settings.oot_months, settings.test_share, settings.seed).rows("oot")
    randomized = oot.loc[oot["arm"].isin(["ASSIGNED", "HOLDOUT"])]  # every OOT cut ran a holdout
    assert (oot["arm"] == "HOLDOUT").any()
    assert value["a"]["rows"] == len(randomized) == second.gate.comparison["rows"]
    assert value["saving"] == {**value["saving"], "estimate": 0.0, "low": 0.0, "high": 0.0}
    assert value["a"]["cost"]["estimate"] > 0 and value["a"]["matched"] > 0
    assert second.gate.verdict == "non-inferior" and second.alias == "champion"
    assert "net value: challenger saves +0 (95% CI +0 to +0) COP per obligation" in (
        second.gate.reason
    )
    tags = (
        mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
        .get_model_version(settings.model_name, second.version)
        .tags
    )
    assert float(tags["gate_value_saving_low"]) == 0.0
    assert int(tags["gate_value_rows"]) == len(randomized)
