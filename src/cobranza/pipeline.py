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
from cobranza.errors import CobranzaError


class PipelineError(CobranzaError):
    """A stage left the pipeline unable to go on (e.g. no model may decide)."""


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
    trained = stage("train", train, settings, ui=ui)
    if not trained["gate"]["passed"]:
        _require_champion(settings, trained, ui)
    stage("score", score, settings, ui=ui)
    stage("impact", impact, settings, ui=ui)
    return {
        "seconds": seconds,
        **{name: _headline(name, result) for name, result in stages.items()},
    }


def _require_champion(settings: Settings, trained: dict[str, Any], ui: UI | None) -> None:
    """A new version that fails the gate stays challenger: the champion before it keeps deciding.
    With no champion at all, no model may decide, and the run stops before scoring."""
    from cobranza.ml.registry import champion_version

    version, reason = trained["version"], trained["gate"]["reason"]
    serving = champion_version(settings)
    if serving is None:
        raise PipelineError(
            f"model version {version} failed the promotion gate ({reason}) and there is no earlier "
            "champion, so nothing was scored; raw, silver and gold are published. Review the "
            f"model report ({trained['report']}) and `cobranza models`; if the model is fit to "
            f"decide, `cobranza promote {version} --reason ...` then `cobranza score`"
        )
    if ui is not None:
        ui.info(
            f"model version {version} failed the gate ({reason}); champion {serving} keeps deciding"
        )


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
    "etl": ("gold",),
    "train": ("auc_vs_oracle", "oot", "gate", "policy"),
    "impact": ("out_of_time", "current"),
}

Section = tuple[str, list[str] | None, list[tuple[str, ...]]]  # heading, column names, rows


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _pct(part: Any, whole: Any) -> str:
    return f"{part / whole:.1%}" if part is not None and whole else "-"


def _cop(value: Any) -> str:
    return "-" if value is None else f"COP {value:,.0f}"


def _auc(value: Any) -> str:
    return "-" if value is None or value != value else f"{value:.4f}"


def report(result: dict[str, Any]) -> list[Section]:
    """What a person checks after a run, as a few short tables (the JSON keeps every figure)."""
    sections: list[Section] = []
    seconds = result.get("seconds", {})
    total = sum(seconds.values())
    sections.append(
        (
            "stages",
            ["stage", "seconds"],
            [(k, f"{v:,.1f}") for k, v in seconds.items()] + [("total", f"{total:,.1f}")],
        )
    )
    ing, etl = result.get("ingest", {}), result.get("etl", {})
    if ing:
        read = ing.get("rows_read")
        rows = [
            ("rows read", _n(read), ""),
            ("accepted", _n(ing.get("rows_accepted")), _pct(ing.get("rows_accepted"), read)),
            (
                "quarantined (raw.quarantine)",
                _n(ing.get("rows_quarantined")),
                _pct(ing.get("rows_quarantined"), read),
            ),
            (
                "exact duplicates collapsed",
                _n(ing.get("duplicates_collapsed")),
                _pct(ing.get("duplicates_collapsed"), read),
            ),
        ]
        gold = etl.get("gold") or {}
        if gold:
            rows += [
                ("gold rows (early delinquency x cut)", _n(gold.get("rows")), ""),
                (
                    "  eligible (mandate covers the cut)",
                    _n(gold.get("eligible")),
                    _pct(gold.get("eligible"), gold.get("rows")),
                ),
                (
                    "  labeled (horizon closed)",
                    _n(gold.get("labeled")),
                    _pct(gold.get("labeled"), gold.get("rows")),
                ),
            ]
        sections.append((f"data (as of {ing.get('as_of', '?')})", None, rows))
    train = result.get("train", {})
    if train:
        parts = train.get("auc_vs_oracle", {})
        rows = [
            (
                part,
                _auc(m.get("model_auc")),
                _auc(m.get("oracle_auc")),
                _auc(m.get("baseline_auc")),
                _auc(m.get("model_ece")),
            )
            for part, m in parts.items()
        ]
        sections.append(
            (
                f"model version {train.get('version')} (LightGBM, calibrated)",
                ["part", "AUC", "oracle AUC", "baseline AUC", "ECE"],
                rows,
            )
        )
        gate = train.get("gate", {})
        sections.append(
            (
                "promotion gate",
                None,
                [
                    ("result", "PASSED: champion" if gate.get("passed") else "FAILED: challenger"),
                    ("why", str(gate.get("reason", ""))),
                    ("decision threshold", _auc((train.get("policy") or {}).get("threshold"))),
                ],
            )
        )
    sc = result.get("score", {})
    if sc:
        n = sc.get("obligations")
        sections.append(
            (
                f"decisions for cut {sc.get('cut_date')} (model version {sc.get('model_version')})",
                None,
                [
                    ("obligations in early delinquency", _n(n), ""),
                    (
                        "NO_ASSIGN (expected to self-cure)",
                        _n(sc.get("no_assign")),
                        _pct(sc.get("no_assign"), n),
                    ),
                    ("ASSIGN to collections", _n(sc.get("assign")), _pct(sc.get("assign"), n)),
                    (
                        "  of which no covering mandate (by rule)",
                        _n(sc.get("ineligible_assign")),
                        _pct(sc.get("ineligible_assign"), n),
                    ),
                ],
            )
        )
    imp = result.get("impact", {})
    oot, cur = imp.get("out_of_time") or {}, imp.get("current") or {}
    if oot or cur:
        rows = []
        if cur:
            rows.append(("expected net savings today", _cop(cur.get("expected_net_savings")), ""))
        if oot:
            rows += [
                (
                    f"out of time, {_n(oot.get('rows'))} decisions: realized net savings",
                    _cop(oot.get("net_savings")),
                    _pct(oot.get("net_savings"), oot.get("baseline_cost"))
                    + " of the assign-all cost",
                ),
                (
                    "  the oracle's (true probabilities)",
                    _cop(oot.get("oracle_net_savings")),
                    _pct(oot.get("net_savings"), oot.get("oracle_net_savings")) + " captured",
                )
                if oot.get("oracle_net_savings") is not None
                else ("  the oracle's", "-", "no simulator truth"),
                (
                    "  NO_ASSIGN that did not self-cure (leakage)",
                    _n(oot.get("leakage")),
                    _pct(oot.get("leakage"), oot.get("no_assign")) + " of NO_ASSIGN",
                ),
            ]
        sections.append(("business impact against assigning everyone", None, rows))
    where = [("model report", str(train["report"]))] if train.get("report") else []
    if imp.get("chart"):
        where.append(("cost vs threshold chart", str(imp["chart"])))
    if where:
        sections.append(("files", None, where))
    return sections
