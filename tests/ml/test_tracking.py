"""A lake moved or copied with its MLflow store keeps working: it reads its own artifacts and
writes nothing outside itself (an experiment of its own when the model's keeps its artifacts
elsewhere)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import mlflow

from cobranza.ml.registry import load_champion, promote
from tests.ml.conftest import make_lake, settings_for


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_moved_lake_loads_scores_and_trains_inside_itself(tmp_path, gold_frame):
    from cobranza.decision.scoring import score
    from cobranza.ml.training import train

    old_root, new_root = tmp_path / "old", tmp_path / "new"
    old_root.mkdir()
    _, truth = make_lake(old_root, gold_frame)
    first = train(settings_for(old_root, truth))
    new_root.mkdir()
    shutil.move(str(old_root / "lake"), str(new_root / "lake"))
    assert not (old_root / "lake").exists()

    settings = settings_for(new_root, truth)
    champion = load_champion(settings)
    assert champion.version == first.version
    assert champion.policy.n_fit > 0
    scored = score(settings)
    assert scored.model_version == first.version

    second = train(settings)
    third = train(settings)
    assert not (old_root / "lake").exists(), "something was written under the old path"
    new_artifacts = new_root / "lake" / "ml_metadata" / "artifacts"
    for summary in (second, third):
        assert summary.experiment == second.experiment != settings.model_name
        assert summary.report.startswith(new_artifacts.as_uri() + "/")
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    experiment = client.get_experiment_by_name(second.experiment)
    assert experiment.artifact_location == new_artifacts.as_uri()
    assert experiment.tags["cobranza.base_experiment"] == settings.model_name
    for version in (second.version, third.version):
        location = client.get_model_version_download_uri(settings.model_name, version)
        assert location.startswith(new_artifacts.as_uri() + "/")
    assert load_champion(settings).version == third.version
    runs = duckdb.sql(
        "SELECT run_id, experiment FROM read_parquet(?, union_by_name=true)",
        params=[str(new_root / "lake" / "ml_metadata" / "model_runs" / "*.parquet")],
    ).fetchall()
    assert dict(runs)[third.run_id] == third.experiment


def test_copied_lake_writes_nothing_into_the_original(tmp_path, gold_frame):
    from cobranza.ml.training import train

    src_root, copy_root = tmp_path / "src", tmp_path / "copy"
    src_root.mkdir()
    _, truth = make_lake(src_root, gold_frame)
    first = train(settings_for(src_root, truth))
    shutil.copytree(src_root / "lake", copy_root / "lake", symlinks=True)
    original = _files(src_root / "lake")

    settings = settings_for(copy_root, truth)
    second = train(settings)
    assert _files(src_root / "lake") == original
    shutil.rmtree(src_root / "lake")  # the copy stands on its own
    assert load_champion(settings).version == second.version
    promote(settings, first.version, who="ana", reason="back to the copied champion")
    assert load_champion(settings).version == first.version


def test_the_experiment_opens_in_mlflows_machine_learning_view(trained):
    """The experiment kind tag MLflow's UI reads: the classic view of runs, not the GenAI one."""
    from cobranza.ml.tracking import EXPERIMENT_KIND_TAG, MACHINE_LEARNING_KIND

    settings = trained["settings"]
    experiment = mlflow.MlflowClient(tracking_uri=settings.tracking_uri).get_experiment_by_name(
        trained["first"].experiment
    )
    assert (
        experiment.tags[EXPERIMENT_KIND_TAG] == MACHINE_LEARNING_KIND == "custom_model_development"
    )


def test_an_experiment_created_without_the_kind_is_tagged_by_the_next_training(tmp_path):
    from cobranza.config import load_settings
    from cobranza.ml.tracking import EXPERIMENT_KIND_TAG, MACHINE_LEARNING_KIND, configure

    settings = load_settings(lake=tmp_path / "lake")
    artifacts = (tmp_path / "lake" / "ml_metadata" / "artifacts").resolve()
    artifacts.mkdir(parents=True)
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    exp_id = client.create_experiment(settings.model_name, artifact_location=artifacts.as_uri())
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(exp_id).tags
    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        configure(settings)  # points MLflow's global URIs at this lake
    finally:
        mlflow.set_tracking_uri(uris[0])
        mlflow.set_registry_uri(uris[1])
    assert client.get_experiment(exp_id).tags[EXPERIMENT_KIND_TAG] == MACHINE_LEARNING_KIND


def test_the_run_spans_the_whole_training(trained):
    """From before the fitting to after the version was registered and published: its duration
    covers the fitting and evaluation, and it ends FINISHED."""
    settings, first = trained["settings"], trained["first"]
    uri = settings.tracking_uri
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    seconds = (run.info.end_time - run.info.start_time) / 1000
    steps = ("fit_lightgbm", "fit_baseline", "evaluate", "pictures", "mlflow_log", "report_gate")
    assert seconds >= sum(first.timings[s] for s in steps) - 0.005  # ms rounding
    version = client.get_model_version(settings.model_name, first.version)
    assert run.info.start_time <= version.creation_timestamp <= run.info.end_time
    mirror = trained["lake"].metadata_dir / "model_runs"
    (written,) = [p for p in mirror.rglob("*.parquet") if first.run_id in p.name]
    assert written.stat().st_mtime * 1000 <= run.info.end_time + 1
