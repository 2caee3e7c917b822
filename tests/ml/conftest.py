"""Fixtures of the ML tests: a gold-shaped table published in a tmp lake, and real trainings on it.

Trainings use the real MLflow SQLite store inside the tmp lake; they are module-scoped per file and
shared by the tests that only read their results.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cobranza.config import load_settings
from cobranza.lake import Lake
from tests.ml.gold import make_gold, publish_gold


@pytest.fixture(scope="session")
def gold_frame():
    return make_gold(clients=600, months=12, seed=7)


def make_lake(root: Path, gold) -> tuple[Lake, Path]:
    lake = Lake(root / "lake").ensure()
    truth = root / "truth" / "p_true.csv"
    publish_gold(lake, gold, truth)
    return lake, truth


def settings_for(root: Path, truth: Path, **overrides):
    # The tiny validation fold (~360 rows) calibrates coarsely: loosen the ECE limit so that the
    # gate tests decide on what they set, not on sampling noise.
    gate = {"max_ece": 0.2, "max_psi": 0.25, "auc_margin": 0.005, **overrides.pop("gate", {})}
    return load_settings(lake=root / "lake", truth_path=truth, gate=gate, **overrides)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, gold_frame):
    """Two trainings on the same gold version and settings (the second one meets a champion)."""
    from cobranza.ml.training import train

    root = tmp_path_factory.mktemp("ml-trained")
    lake, truth = make_lake(root, gold_frame)
    settings = settings_for(root, truth)
    first = train(settings)
    second = train(settings)
    return {"settings": settings, "lake": lake, "first": first, "second": second, "root": root}
