"""Shared session fixtures: small simulated extracts every layer's tests build on.

Each extract is generated once per test session under a temporary folder; tests must not modify
them (copy first). Same sizes and seeds every run, so failures reproduce.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cobranza.contract import BANK_LATIN1, STANDARD
from cobranza.simulate import SimulationConfig, simulate
from tests.extracts import upgrade_to_v2

SIM_CLIENTS = 1500
SIM_MONTHS = 15
SIM_SEED = 7
SIM_NOISE = 0.002
# A larger randomized holdout than the bank's default (10% of the last 6 months): at 1,500 clients
# the default leaves a handful of unmanaged training rows, too few for the causal models.
SIM_HOLDOUT = {"holdout_share": 0.3, "holdout_months": 12}


HEAVY_MARKERS = ("spark", "slow")  # JVMs, then end-to-end runs: the suite's longest files


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding a `spark` test first, then those holding a `slow` one, then the others; most
    tests first within each group. Under `--dist loadfile` (with `--no-loadscope-reorder`, so
    xdist keeps this order) the long files start first and the many short ones fill the end,
    instead of one long file keeping one worker busy while the others wait. Each file's tests
    keep their order."""
    count: dict[Path, int] = {}
    rank: dict[Path, int] = {}
    for item in items:
        count[item.path] = count.get(item.path, 0) + 1
        marked = [i for i, name in enumerate(HEAVY_MARKERS) if item.get_closest_marker(name)]
        rank[item.path] = min(rank.get(item.path, len(HEAVY_MARKERS)), *marked, len(HEAVY_MARKERS))
    items.sort(key=lambda item: (rank[item.path], -count[item.path], str(item.path)))


def sim_config(noise: float = SIM_NOISE, **overrides) -> SimulationConfig:
    """The configuration behind the shared fixtures (tests may vary one knob)."""
    base = dict(clients=SIM_CLIENTS, months=SIM_MONTHS, seed=SIM_SEED, noise=noise, **SIM_HOLDOUT)
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


@pytest.fixture(scope="session")
def sim_extract_v2(tmp_path_factory: pytest.TempPathFactory, sim_extract_clean: Path) -> Path:
    """`sim_extract_clean` with redrawn version-2 parts (`tests.extracts.upgrade_to_v2`): arms
    (some HOLDOUT and RULE, a few missing), reversed debits, some files gzipped; what was added is
    in `_truth/upgrade.json`."""
    out = tmp_path_factory.mktemp("sim_v2") / "extract"
    upgrade_to_v2(sim_extract_clean, out)
    return out
