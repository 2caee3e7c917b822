"""`cobranza lake use`: a zone is pointed only at one of its complete, unpruned versions."""

from __future__ import annotations

from cobranza.config import load_settings
from cobranza.lake import Lake
from cobranza.ml.lineage import prune
from tests.lake.lakes import (
    cli,
    flat,
    generations,
)


def test_lake_use_refuses_what_is_not_a_complete_unpruned_version(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = generations(lake, 3)
    prune(settings, keep=2)
    for version, message in (
        ("nope", "has no version 'nope'"),
        (gens[0]["gold"], "was pruned"),
        ("../silver", "has no version"),
    ):
        out = cli(lake, "lake", "use", "gold", version)
        assert out.returncode == 1 and message in flat(out.stderr), out.stderr
    assert lake.current_version("gold") == gens[2]["gold"]
