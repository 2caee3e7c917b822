"""The promotion gate as a pure rule."""

import pytest

from cobranza.config import Gate
from cobranza.ml.registry import evaluate_gate

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
