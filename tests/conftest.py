"""Shared session fixtures: small simulated extracts every layer's tests build on.

Each extract is generated once per test session under a temporary folder; tests must not modify
them (copy first). Same sizes and seeds every run, so failures reproduce.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cobranza.contract import BANK_LATIN1, STANDARD
from cobranza.simulate import SimulationConfig, simulate

SIM_CLIENTS = 1500
SIM_MONTHS = 15
SIM_SEED = 7
SIM_NOISE = 0.002


def sim_config(noise: float = SIM_NOISE, **overrides) -> SimulationConfig:
    """The configuration behind the shared fixtures (tests may vary one knob)."""
    base = dict(clients=SIM_CLIENTS, months=SIM_MONTHS, seed=SIM_SEED, noise=noise)
    return SimulationConfig(**{**base, **overrides})


@pytest.fixture(scope="session")
def sim_extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small standard extract with the default bad-input rate (defects in _truth/noise.json)."""
    out = tmp_path_factory.mktemp("sim") / "extract"
    simulate(out, sim_config(), STANDARD)
    return out


@pytest.fixture(scope="session")
def sim_extract_clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same clients and months as `sim_extract` with no injected defects."""
    out = tmp_path_factory.mktemp("sim_clean") / "extract"
    simulate(out, sim_config(noise=0.0), STANDARD)
    return out


@pytest.fixture(scope="session")
def sim_extract_latin1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data of `sim_extract` spelled in the bank-latin1 dialect (`;`, Latin-1, `,`, dd/mm/yyyy)."""
    out = tmp_path_factory.mktemp("sim_latin1") / "extract"
    simulate(out, sim_config(), BANK_LATIN1)
    return out
