"""Lineage of the models: the gold a training read, named and hashed; and the gold behind every
registered model is kept by `lake prune`, whatever the registry lost:
its version tag, else its MLflow run's tag or param, else the `model_runs` mirror; a model whose
gold cannot be told keeps every gold."""

from __future__ import annotations

import contextlib

from cobranza.config import load_settings
from cobranza.lake import Lake
from cobranza.ml.lineage import Lineage, prune
from tests.lake.lakes import (
    generations,
)


def _run_with_gold(settings, gold: str, how: str) -> str:
    """A real MLflow run carrying its gold version as a tag or a param (as `train` logs it)."""
    from cobranza.ml.tracking import client, configure

    configure(settings)
    mlc = client(settings)
    exp = mlc.get_experiment_by_name(settings.model_name)
    run = mlc.create_run(exp.experiment_id)
    if how == "tag":
        mlc.set_tag(run.info.run_id, "gold_version", gold)
    elif how == "param":
        mlc.log_param(run.info.run_id, "gold_version", gold)
    return run.info.run_id


def _register(settings, run_id: str | None, gold_tag: str | None = None) -> str:
    from mlflow.exceptions import MlflowException

    from cobranza.ml.tracking import client

    mlc = client(settings)
    with contextlib.suppress(MlflowException):  # already there
        mlc.create_registered_model(settings.model_name)
    mv = mlc.create_model_version(
        settings.model_name, source=str(settings.lake / "model"), run_id=run_id
    )
    if gold_tag:
        mlc.set_model_version_tag(settings.model_name, mv.version, "gold_version", gold_tag)
    return str(mv.version)


def test_prune_keeps_the_gold_of_a_version_registered_but_never_tagged(tmp_path):
    """A train killed between registering the version and tagging it: its run tells the gold."""
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = generations(lake, 4)
    v1 = _register(settings, _run_with_gold(settings, gens[0]["gold"], "tag"))
    v2 = _register(settings, _run_with_gold(settings, gens[1]["gold"], "param"))
    done = prune(settings, keep=1)
    assert done.kept["gold"][gens[0]["gold"]] == [f"trained model version {v1}"]
    assert done.kept["gold"][gens[1]["gold"]] == [f"trained model version {v2}"]
    assert done.pruned["gold"] == [gens[2]["gold"]]
    for g in gens[:2]:
        assert (lake.version_dir("gold", g["gold"]) / "obligation_snapshots").is_dir()


def test_prune_keeps_the_gold_the_mirror_lists_when_the_registry_forgot(tmp_path):
    """The registry emptied or recreated: ml_metadata/model_runs still tells the gold."""
    from cobranza.ml.tracking import client

    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = generations(lake, 3)
    run_id = _run_with_gold(settings, gens[0]["gold"], "none")
    version = _register(settings, run_id, gold_tag=gens[0]["gold"])
    lake.write_metadata(
        "model_runs",
        [
            {
                "run_id": run_id,
                "model_name": settings.model_name,
                "model_version": version,
                "gold_version": gens[0]["gold"],
            }
        ],
        run_id,
    )
    client(settings).delete_registered_model(settings.model_name)
    done = prune(settings, keep=1)
    assert done.kept["gold"][gens[0]["gold"]] == [
        f"trained model version {version} (in ml_metadata.model_runs, not in the registry)"
    ]
    assert done.pruned["gold"] == [gens[1]["gold"]]
    assert (lake.version_dir("gold", gens[0]["gold"]) / "obligation_snapshots").is_dir()


def test_prune_keeps_every_gold_when_a_models_gold_is_unknown(tmp_path, caplog):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = generations(lake, 3)
    version = _register(settings, _run_with_gold(settings, "", "none"))
    with caplog.at_level("WARNING"):
        done = prune(settings, keep=1)
    assert done.pruned == {}  # every gold kept, and with them their silver and raw
    assert all(
        (lake.version_dir("gold", g["gold"]) / "obligation_snapshots").is_dir() for g in gens
    )
    (warning,) = done.warnings
    assert f"registered model version {version}" in warning
    assert "no gold version was pruned" in warning
    assert warning in caplog.text


def test_lineage_names_the_gold_and_hashes_its_inputs_whatever_their_order():
    a = Lineage.of({"version": "g1", "run_id": "r1", "inputs": {"silver": "s1", "x": 1}}, "abc")
    b = Lineage.of({"version": "g1", "run_id": "r1", "inputs": {"x": 1, "silver": "s1"}}, None)
    assert a.gold_inputs_sha256 == b.gold_inputs_sha256
    assert a.tags() == {
        "gold_version": "g1",
        "gold_run_id": "r1",
        "gold_inputs_sha256": a.gold_inputs_sha256,
        "git_commit": "abc",
    }
    assert b.git_commit == "unknown"
    other = Lineage.of({"version": "g1", "inputs": {"silver": "s2"}}, None)
    assert other.gold_inputs_sha256 != a.gold_inputs_sha256
