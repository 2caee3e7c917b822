"""The main job end to end: [simulate →] ingest → etl → train → score → impact.

Each stage is the same function its own command calls; this module only chains them and gathers
the figures a person checks after a run (rows, AUC beside the oracle's, savings).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cobranza.config import Settings
from cobranza.console import UI


def run_pipeline(
    settings: Settings,
    extract: Path | None = None,
    simulate_clients: int | None = None,
    months: int = 24,
    dialect: str = "standard",
    seed: int = 42,
    ui: UI | None = None,
) -> dict[str, Any]:
    from cobranza.contract import load_dialect
    from cobranza.decision import impact, score
    from cobranza.ingest import ingest_extract
    from cobranza.ml import train
    from cobranza.transforms import run_etl

    extract = Path(extract or "extract")
    stages: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}

    def stage(name: str, fn, *args, **kwargs) -> dict[str, Any]:
        if ui is not None:
            ui.info(f"[bold cyan]▶ {name}[/]")
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds[name] = round(time.perf_counter() - t0, 2)
        stages[name] = result
        return result

    if simulate_clients:
        from cobranza.simulate import SimulationConfig, simulate

        cfg = SimulationConfig(clients=simulate_clients, months=months, seed=seed)
        stage("simulate", simulate, extract, cfg, dialect=load_dialect(dialect), ui=ui)
    stage("ingest", ingest_extract, settings, extract, load_dialect(dialect), ui=ui)
    stage("etl", run_etl, settings, ui=ui)
    stage("train", train, settings, ui=ui)
    stage("score", score, settings, ui=ui)
    stage("impact", impact, settings, ui=ui)
    return {
        "seconds": seconds,
        **{name: _headline(name, result) for name, result in stages.items()},
    }


def _headline(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """Keep the figures worth a glance; the full summaries are in each stage's own output."""
    if not isinstance(result, dict):
        return {"result": str(result)}
    keep = {
        k: v
        for k, v in result.items()
        if not isinstance(v, (list, dict)) or k in _NESTED_KEEP.get(name, ())
    }
    return keep


_NESTED_KEEP: dict[str, tuple[str, ...]] = {
    "train": ("auc_vs_oracle", "oot", "gate", "policy"),
    "impact": ("out_of_time", "current"),
}
