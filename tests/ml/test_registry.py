"""The registry: the promotion gate as a pure rule, and a store that cannot be used is one clear
line (no SQL, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cobranza.config import Gate
from cobranza.errors import CobranzaError
from cobranza.ml.registry import evaluate_gate, list_models, promote
from tests.ml.conftest import make_lake, settings_for
from tests.ml.stores import CLI, registry_events

GATE = Gate(auc_tolerance=0.005, max_ece=0.03, max_psi=0.25)
GOOD = {"oot_auc": 0.80, "oot_ece": 0.01, "psi": 0.05}


def test_first_version_passes_on_ece_and_psi_only():
    result = evaluate_gate({**GOOD, "oot_auc": 0.55}, None, GATE)
    assert result.passed and "first champion" in result.reason


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ({**GOOD, "oot_ece": 0.031}, "OOT ECE 0.0310 > max_ece 0.0300"),
        ({**GOOD, "psi": 0.3}, "PSI 0.3000 > max_psi 0.2500"),
        ({**GOOD, "oot_auc": float("nan")}, "oot_auc is missing"),
    ],
)
def test_first_version_fails_with_reason(candidate, reason):
    result = evaluate_gate(candidate, None, GATE)
    assert not result.passed
    assert reason in result.reason


def test_auc_against_champion_with_tolerance():
    within = evaluate_gate({**GOOD, "oot_auc": 0.796}, 0.80, GATE, "3")
    assert within.passed and "champion v3" in within.reason
    below = evaluate_gate({**GOOD, "oot_auc": 0.794}, 0.80, GATE, "3")
    assert not below.passed
    assert "OOT AUC 0.7940 < champion v3 0.8000 - tolerance 0.0050" in below.reason
    both = evaluate_gate({**GOOD, "oot_auc": 0.7, "psi": 0.9}, 0.80, GATE, "3")
    assert "PSI" in both.reason and "OOT AUC" in both.reason


def test_ece_limit_widens_only_to_the_sampling_noise_of_the_oot_sample():
    noisy = {**GOOD, "oot_ece": 0.04, "oot_ece_noise": 0.045}
    result = evaluate_gate(noisy, None, GATE)
    assert result.passed
    assert "sampling noise" in result.reason
    beyond = evaluate_gate({**noisy, "oot_ece": 0.05}, None, GATE)
    assert not beyond.passed
    assert "OOT ECE 0.0500 > 0.0450 (sampling noise on this OOT size; max_ece 0.0300)" in (
        beyond.reason
    )
    # a small noise floor never loosens the configured limit
    strict = evaluate_gate({**GOOD, "oot_ece": 0.031, "oot_ece_noise": 0.01}, None, GATE)
    assert not strict.passed and "max_ece 0.0300" in strict.reason


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
