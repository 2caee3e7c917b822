"""The registry: a store that cannot be used is one clear line (no SQL, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cobranza.errors import CobranzaError
from cobranza.ml.registry import list_models, promote
from tests.ml.conftest import make_lake, settings_for
from tests.ml.stores import CLI, registry_events


def test_unusable_store_is_a_clear_error(tmp_path):
    from cobranza.config import load_settings
    from cobranza.errors import CobranzaError
    from cobranza.ml.tracking import configure

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    settings = load_settings(
        lake=tmp_path / "lake", mlflow_tracking_uri=f"sqlite:///{blocker}/sub/mlflow.db"
    )
    with pytest.raises(CobranzaError, match="MLflow store"):
        configure(settings)


HOLD_LOCK = (
    "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
    "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)"
)


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
    assert [e["event"] for e in registry_events(lake)].count("manual_promotion") == 0
