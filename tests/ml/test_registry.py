"""The registry: the promotion gate as a pure rule, and a store that cannot be used is one clear
line (no SQL, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cobranza.config import Gate
from cobranza.decision.value import PolicyValue, ValueComparison
from cobranza.errors import CobranzaError
from cobranza.ml.gate import GAIN, NON_INFERIOR, REFUSED, Comparison, evaluate_gate
from cobranza.ml.registry import list_models, promote
from cobranza.ml.stats import Interval
from tests.ml.conftest import make_lake, settings_for
from tests.ml.stores import CLI, registry_events

GATE = Gate(auc_margin=0.005, value_margin=200, max_ece=0.03, max_psi=0.25)
GOOD = {"oot_auc": 0.80, "oot_ece": 0.01, "psi": 0.05}


def same_rows(low: float, high: float, saving: tuple[float, float] | None = None) -> Comparison:
    """Champion v3 and a challenger on 1,000 rows: AUC 0.80 against 0.80 + the difference."""
    mid = (low + high) / 2
    value = None
    if saving is not None:
        cost = PolicyValue(Interval(10_000.0, 9_000.0, 11_000.0), 400, 300)
        value = ValueComparison(cost, cost, Interval(sum(saving) / 2, *saving))
    return Comparison("3", 1000, 0.80, 0.80 + mid, Interval(mid, low, high), value)


def test_first_version_passes_on_ece_and_psi_only():
    result = evaluate_gate({**GOOD, "oot_auc": 0.55}, GATE)
    assert result.passed and "first champion" in result.reason
    assert result.verdict == "first champion" and result.champion_version is None


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        ({**GOOD, "oot_ece": 0.031}, "OOT ECE 0.0310 > max_ece 0.0300"),
        ({**GOOD, "psi": 0.3}, "PSI 0.3000 > max_psi 0.2500"),
        ({**GOOD, "oot_auc": float("nan")}, "oot_auc is missing"),
    ],
)
def test_first_version_fails_with_reason(candidate, reason):
    result = evaluate_gate(candidate, GATE)
    assert not result.passed
    assert reason in result.reason


def test_an_auc_interval_above_zero_is_a_real_gain():
    result = evaluate_gate(GOOD, GATE, same_rows(0.004, 0.02))
    assert result.passed and result.verdict == GAIN
    assert result.reason.startswith(
        "real gain in AUC on the same 1,000 out-of-time rows as champion v3"
    )
    assert "challenger - champion +0.0120 (95% CI +0.0040 to +0.0200)" in result.reason
    assert "net value not compared" in result.reason
    assert "margins AUC -0.0050, net value -200 COP" in result.reason
    assert result.champion_version == "3" and result.champion_oot_auc == 0.80


def test_an_interval_around_zero_within_the_margin_is_non_inferior():
    result = evaluate_gate(GOOD, GATE, same_rows(-0.004, 0.004, saving=(-150, 150)))
    assert result.passed and result.verdict == NON_INFERIOR
    assert result.reason.startswith("non-inferior within the margins on the same 1,000")
    assert "challenger saves +0 (95% CI -150 to +150) COP per obligation" in result.reason
    identical = evaluate_gate(GOOD, GATE, same_rows(0.0, 0.0, saving=(0.0, 0.0)))
    assert identical.passed and identical.verdict == NON_INFERIOR


def test_a_lower_bound_below_the_auc_margin_is_refused_naming_the_interval():
    result = evaluate_gate(GOOD, GATE, same_rows(-0.03, -0.01))
    assert not result.passed and result.verdict == REFUSED and result.alias == "challenger"
    assert "AUC interval lower bound -0.0300 below the margin -0.0050" in result.reason
    assert "(95% CI -0.0300 to -0.0100)" in result.reason
    both = evaluate_gate({**GOOD, "psi": 0.9}, GATE, same_rows(-0.03, -0.01))
    assert "PSI" in both.reason and "AUC interval" in both.reason


def test_net_value_can_carry_a_gain_or_refuse_one():
    value_gain = evaluate_gate(GOOD, GATE, same_rows(-0.003, 0.003, saving=(50, 400)))
    assert value_gain.passed and value_gain.verdict == GAIN
    assert value_gain.reason.startswith("real gain in net value")
    costly = evaluate_gate(GOOD, GATE, same_rows(0.01, 0.03, saving=(-900, -300)))
    assert not costly.passed
    assert "net value interval lower bound -900 COP below the margin -200" in costly.reason
    # a value gain does not excuse a worse ranking beyond the margin
    worse = evaluate_gate(GOOD, GATE, same_rows(-0.03, -0.01, saving=(50, 400)))
    assert not worse.passed and "AUC interval lower bound -0.0300" in worse.reason


def test_a_champion_that_cannot_be_compared_refuses_the_promotion():
    problem = Comparison("3", 1000, problem="champion v3 cannot score these rows (KeyError: x)")
    result = evaluate_gate(GOOD, GATE, problem)
    assert not result.passed and result.verdict == REFUSED
    assert "not compared with champion v3: champion v3 cannot score these rows" in result.reason
    tags = result.tags(GATE)
    assert tags["gate_verdict"] == "refused" and "KeyError" in tags["gate_problem"]


def test_the_evidence_goes_to_tags_with_the_margins():
    tags = evaluate_gate(GOOD, GATE, same_rows(0.004, 0.02, saving=(-10, 30))).tags(GATE)
    assert tags["gate_verdict"] == "gain"
    assert float(tags["gate_auc_difference_low"]) == 0.004
    assert float(tags["gate_value_saving_low"]) == -10
    assert float(tags["gate_auc_margin"]) == 0.005 and float(tags["gate_value_margin"]) == 200
    assert tags["gate_champion_version"] == "3" and tags["gate_rows"] == "1000"


def test_ece_limit_widens_only_to_the_sampling_noise_of_the_oot_sample():
    noisy = {**GOOD, "oot_ece": 0.04, "oot_ece_noise": 0.045}
    result = evaluate_gate(noisy, GATE)
    assert result.passed
    assert "sampling noise" in result.reason
    beyond = evaluate_gate({**noisy, "oot_ece": 0.05}, GATE)
    assert not beyond.passed
    assert "OOT ECE 0.0500 > 0.0450 (sampling noise on this OOT size; max_ece 0.0300)" in (
        beyond.reason
    )
    strict = evaluate_gate({**GOOD, "oot_ece": 0.031, "oot_ece_noise": 0.01}, GATE)
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
