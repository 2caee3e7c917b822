"""Training and registry under failure: a killed or late-failing training publishes nothing, a
registered version always carries its lineage, a moved or copied lake keeps working, and store
errors are one clear line (operations audit D2, D6, D8 and the locked-store message).

Everything is real: MLflow's SQLite store in a tmp lake, files, subprocesses (SIGKILL, a lock held
by another process, the `cobranza` command).
"""

from __future__ import annotations

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
import pyarrow.parquet as pq
import pytest

from cobranza.errors import CobranzaError
from cobranza.ml.registry import list_models, load_champion, promote
from cobranza.ml.training import TrainingError
from tests.ml.conftest import make_lake, settings_for

REPO = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("cobranza")
TRAIN_SCRIPT = (
    "import sys; from pathlib import Path; from tests.ml.conftest import settings_for; "
    "from cobranza.ml.training import train; root = Path(sys.argv[1]); "
    "train(settings_for(root, root / 'truth' / 'p_true.csv'))"
)
HOLD_LOCK = (
    "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
    "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)"
)


def _events(lake) -> list[dict]:
    folder = lake.metadata_dir / "registry_events"
    return [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _db_rows(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _versions(db: Path) -> int | None:
    try:
        return _db_rows(db, "SELECT count(*) FROM model_versions")[0][0]
    except sqlite3.Error:
        return None  # busy, or the table does not exist yet


# ---- D2: a version is registered together with its lineage --------------------------------------
def test_train_killed_right_after_registration_leaves_lineage_and_no_alias(tmp_path, gold_frame):
    from cobranza.ml.training import train

    lake, truth = make_lake(tmp_path, gold_frame)
    settings = settings_for(tmp_path, truth)
    first = train(settings)
    db = lake.metadata_dir / "mlflow.db"
    before = _versions(db)
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
        if (_versions(db) or 0) > before:
            os.killpg(proc.pid, signal.SIGKILL)  # the moment the version row is visible
            killed = True
            break
        time.sleep(0.002)
    proc.wait()
    assert killed, f"the training ended (rc {proc.returncode}) before it could be killed"

    gold = lake.current_version("gold")
    tags = _db_rows(
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


# ---- D6: the alias moves last; a late failure leaves the version failed, without an alias -------
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
    events = [(e["version"], e["event"]) for e in _events(lake)]
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
    """The alias is the publication; `succeeded` is written after it (audit 2, defects 4 and 5).

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
        _db_rows(
            lake.metadata_dir / "mlflow.db",
            "SELECT key, value FROM model_version_tags WHERE version = 2",
        )
    )
    assert tags["training_status"] == "running"  # the refused write
    rows = {r["version"]: r for r in list_models(settings)}
    assert rows["2"]["aliases"] == ["champion"]
    assert rows["2"]["training_status"] == "succeeded"
    assert rows["2"]["promoted_by"] is not None
    assert ("2", "training_failed") not in [(e["version"], e["event"]) for e in _events(lake)]
    assert load_champion(settings).version == "2"
    assert score(settings).model_version == "2"

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


# ---- D8: a moved or copied lake reads its own artifacts and writes only inside itself ----------
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


# ---- store errors: one line, no SQLAlchemy traceback --------------------------------------------
def test_locked_store_is_one_line_without_sql(tmp_path, gold_frame):
    from cobranza.ml.training import train

    lake, truth = make_lake(tmp_path, gold_frame)
    train(settings_for(tmp_path, truth))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lake.metadata_dir / "mlflow.db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = subprocess.run(
            [str(CLI), "--lake", str(lake.root), "models"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "400"},
        )
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 1, out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "MLflow store" in lines[0] and "database is locked" in lines[0]
    for noise in ("[SQL:", "Background on this error", "Traceback", "sqlite_master"):
        assert noise not in out.stderr


def test_store_write_error_is_one_line_and_mlflow_logs_no_traceback(
    tmp_path, gold_frame, capfd, monkeypatch
):
    """A read-only SQLite connection: MLflow's SQL store logs the failed write with its traceback
    at ERROR; that record stays at debug level and the error is one line."""
    from cobranza.ml.training import train

    lake, truth = make_lake(tmp_path, gold_frame)
    train(settings_for(tmp_path, truth))
    monkeypatch.chdir(tmp_path)  # MLflow makes the "parent folder" of a file: URI, relative
    db = lake.metadata_dir / "mlflow.db"
    read_only = settings_for(
        tmp_path, truth, mlflow_tracking_uri=f"sqlite:///file:{db}?mode=ro&uri=true"
    )
    assert [r["version"] for r in list_models(read_only)] == ["1"]
    capfd.readouterr()
    with pytest.raises(CobranzaError) as failure:
        promote(read_only, "1", who="ana", reason="on a read-only store")
    message = str(failure.value)
    assert "\n" not in message and "attempt to write a readonly database" in message
    err = capfd.readouterr().err
    assert "Traceback" not in err and "SQLAlchemy" not in err
    assert [e["event"] for e in _events(lake)].count("manual_promotion") == 0
