"""A small trained and scored lake for the dashboard and monitoring API tests, built once per worker.

Gold is the ML tests' synthetic table (`tests.ml.gold`, 8 monthly cuts, the last unlabeled); the
first model is trained for real (MLflow SQLite store) and made champion, then two scoring runs are
published: one on an older, labeled cut (its horizon has closed, so monitoring can judge it) and
one on the latest cut (today's population). No monitoring run: the tests start it through the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cobranza.config import Settings, load_settings
from cobranza.decision.scoring import ScoreResult
from cobranza.lake import Lake
from tests.ml.gold import make_gold, month_ends, publish_gold

CLIENTS, MONTHS, SEED = 400, 8, 11


@dataclass
class ScoredLake:
    lake: Path
    settings: Settings
    gold: pd.DataFrame
    cuts: list[date]
    past_run: ScoreResult  # the scoring run on the older, labeled cut
    latest_run: ScoreResult


def build_scored_lake(tmp_path_factory: pytest.TempPathFactory) -> ScoredLake:
    from cobranza.decision.scoring import score
    from cobranza.ml.training import train

    root = tmp_path_factory.mktemp("scored")
    gold = make_gold(clients=CLIENTS, months=MONTHS, seed=SEED)
    lake = Lake(root / "lake").ensure()
    publish_gold(lake, gold)
    settings = load_settings(lake=root / "lake", gate={"max_ece": 1.0})
    train(settings)
    cuts = month_ends(MONTHS)
    past = score(settings, as_of=cuts[-2])
    latest = score(settings)
    return ScoredLake(root / "lake", settings, gold, cuts, past, latest)


_BUILT: dict[str, ScoredLake] = {}


def scored_lake(tmp_path_factory: pytest.TempPathFactory) -> ScoredLake:
    """One lake per test process, shared by the dashboard tests (which run jobs on it)."""
    base = str(tmp_path_factory.getbasetemp())
    if base not in _BUILT:
        _BUILT[base] = build_scored_lake(tmp_path_factory)
    return _BUILT[base]


@contextmanager
def serving(built: ScoredLake, name: str) -> Iterator[tuple[ScoredLake, Any, dict[str, str]]]:
    """A live `cobranza serve` on a scored lake, with a viewer and an operator key."""
    from cobranza.api.keys import create_key
    from tests.api.conftest import LiveServer, free_port

    keys = {
        role: create_key(built.settings, role, f"{name}-{role}")["key"]
        for role in ("viewer", "operator")
    }
    server = LiveServer(built.lake, free_port()).start()
    try:
        yield built, server, keys
    finally:
        server.stop()
