"""The main job end to end: [simulate →] the pipeline stages of `cobranza.stages`, in order.

Each stage runs the same function its own command runs; this module chains them, stops before
scoring when no model may decide, and gathers the figures a person checks after a run (rows, AUC
beside the oracle's, savings): `PipelineResult`, whose JSON keeps each stage's headline figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cobranza.config import Settings
from cobranza.console import UI
from cobranza.contract import load_dialect
from cobranza.errors import CobranzaError
from cobranza.ml.registry import champion_version
from cobranza.ml.training import TrainResult
from cobranza.runs import SimulateResult, typed
from cobranza.simulate import SimulationConfig, simulate
from cobranza.stages import DEFAULT_EXTRACT, PipelineParams, pipeline_stages
from cobranza.summary import Section, Summary


class PipelineError(CobranzaError):
    """A stage left the pipeline unable to go on (e.g. no model may decide)."""


@dataclass
class PipelineResult(Summary):
    """Seconds per stage and each stage's result; the JSON form keeps each one's headline."""

    seconds: dict[str, float] = field(default_factory=dict)
    stages: dict[str, Summary] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": dict(self.seconds),
            **{name: _headline(name, r.to_json()) for name, r in self.stages.items()},
        }

    def sections(self) -> list[Section]:
        return report(self.to_json())


def run(settings: Settings, params: PipelineParams, ui: UI | None = None) -> PipelineResult:
    """The `pipeline` stage."""
    return run_pipeline(
        settings,
        extract=Path(params.extract) if params.extract else None,
        simulate_clients=params.simulate_clients,
        months=params.months,
        dialect=params.dialect,
        seed=params.seed,
        ui=ui,
    )


def run_pipeline(
    settings: Settings,
    extract: Path | None = None,
    simulate_clients: int | None = None,
    months: int = 24,
    dialect: str = "standard",
    seed: int = 42,
    ui: UI | None = None,
) -> PipelineResult:
    params = PipelineParams.model_construct(
        extract=str(extract or DEFAULT_EXTRACT),
        simulate_clients=simulate_clients,
        months=months,
        dialect=dialect,
        seed=seed,
    )
    result = PipelineResult()

    def timed(name: str, step: Callable[[], Summary]) -> Summary:
        if ui is not None:
            ui.info(f"[bold cyan]▶ {name}[/]")
        t0 = time.perf_counter()
        out = step()
        result.seconds[name] = round(time.perf_counter() - t0, 2)
        result.stages[name] = out
        return out

    if simulate_clients:
        cfg = SimulationConfig(clients=simulate_clients, months=months, seed=seed)
        timed(
            "simulate",
            lambda: typed(
                SimulateResult,
                simulate(Path(params.extract), cfg, dialect=load_dialect(dialect), ui=ui),
            ),
        )
    for stage in pipeline_stages():
        run_stage = stage.runner()
        stage_params = stage.params.in_pipeline(params)
        out = timed(stage.name, partial(run_stage, settings, stage_params, ui))
        if isinstance(out, TrainResult) and not out.gate.passed:
            _require_champion(settings, out, ui)
    return result


def _require_champion(settings: Settings, trained: TrainResult, ui: UI | None) -> None:
    """A new version that fails the gate stays challenger: the champion before it keeps deciding.
    With no champion at all, no model may decide, and the run stops before scoring."""
    version, reason = trained.version, trained.gate.reason
    serving = champion_version(settings)
    if serving is None:
        raise PipelineError(
            f"model version {version} failed the promotion gate ({reason}) and there is no earlier "
            "champion, so nothing was scored; raw, silver and gold are published. Review the "
            f"model report ({trained.report}) and `cobranza models`; if the model is fit to "
            f"decide, `cobranza promote {version} --reason ...` then `cobranza score`"
        )
    if ui is not None:
        ui.info(
            f"model version {version} failed the gate ({reason}); champion {serving} keeps deciding"
        )


def _headline(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """Keep the figures worth a glance; the full summaries are in each stage's own output."""
    return {
        k: v
        for k, v in result.items()
        if not isinstance(v, (list, dict)) or k in _NESTED_KEEP.get(name, ())
    }


_NESTED_KEEP: dict[str, tuple[str, ...]] = {
    "ingest": ("quality_report",),
    "etl": ("gold",),
    "train": ("auc_vs_oracle", "oot", "gate", "policy"),
    "impact": ("out_of_time", "current"),
}


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
    seconds = result.get("seconds", {})
    total = sum(seconds.values())
    stages = [(k, f"{v:,.1f}") for k, v in seconds.items()] + [("total", f"{total:,.1f}")]
    sections: list[Section] = [("stages", ["stage", "seconds"], stages)]
    sections += _data(result.get("ingest", {}), result.get("etl", {}))
    train, imp = result.get("train", {}), result.get("impact", {})
    sections += _model(train)
    sections += _decisions(result.get("score", {}))
    sections += _impact(imp)
    where = [("model report", str(train["report"]))] if train.get("report") else []
    quality = result.get("ingest", {}).get("quality_report")
    if quality:
        where.insert(0, ("data-quality report (quarantine)", str(quality["html"])))
    if imp.get("chart"):
        where.append(("cost vs benefit threshold chart", str(imp["chart"])))
    if where:
        sections.append(("files", None, where))
    return sections


def _data(ing: dict[str, Any], etl: dict[str, Any]) -> list[Section]:
    if not ing:
        return []
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
        n = gold.get("rows")
        rows += [
            ("gold rows (early delinquency x cut)", _n(n), ""),
            (
                "  eligible (mandate covers the cut)",
                _n(gold.get("eligible")),
                _pct(gold.get("eligible"), n),
            ),
            ("  labeled (horizon closed)", _n(gold.get("labeled")), _pct(gold.get("labeled"), n)),
        ]
    return [(f"data (as of {ing.get('as_of', '?')})", None, rows)]


def _model(train: dict[str, Any]) -> list[Section]:
    if not train:
        return []
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
    gate = train.get("gate", {})
    verdict = "PASSED: champion" if gate.get("passed") else "FAILED: challenger"
    policy = train.get("policy") or {}
    share = policy.get("no_assign_share")
    return [
        (
            f"model version {train.get('version')} (LightGBM, calibrated)",
            ["part", "AUC", "oracle AUC", "baseline AUC", "ECE"],
            rows,
        ),
        (
            "promotion gate",
            None,
            [
                ("result", verdict),
                ("why", str(gate.get("reason", ""))),
                ("decision rule", "NO_ASSIGN iff the expected benefit of managing < 0"),
                ("NO_ASSIGN on test (expected)", "-" if share is None else f"{share:.1%}"),
                (
                    "expected savings per obligation on test",
                    _cop(policy.get("savings_per_obligation")),
                ),
            ],
        ),
    ]


def _decisions(sc: dict[str, Any]) -> list[Section]:
    if not sc:
        return []
    n = sc.get("obligations")
    rows = [
        ("obligations in early delinquency", _n(n), ""),
        (
            "NO_ASSIGN (managing does not pay)",
            _n(sc.get("no_assign")),
            _pct(sc.get("no_assign"), n),
        ),
        ("ASSIGN to collections", _n(sc.get("assign")), _pct(sc.get("assign"), n)),
        (
            "  of which no covering mandate (by rule)",
            _n(sc.get("ineligible_assign")),
            _pct(sc.get("ineligible_assign"), n),
        ),
    ]
    if sc.get("capacity_limited"):
        rows.append(("  NO_ASSIGN because the team is full", _n(sc.get("capacity_limited")), ""))
    if sc.get("challenger"):
        rows.append(
            (
                f"decided by challenger model version {sc.get('challenger_version')}",
                _n(sc.get("challenger")),
                _pct(sc.get("challenger"), n),
            )
        )
    rows.append(
        ("expected benefit of these decisions", _cop(sc.get("expected_benefit_of_decisions")), "")
    )
    heading = f"decisions for cut {sc.get('cut_date')} (model version {sc.get('model_version')})"
    return [(heading, None, rows)]


def _impact(imp: dict[str, Any]) -> list[Section]:
    oot, cur = imp.get("out_of_time") or {}, imp.get("current") or {}
    if not (oot or cur):
        return []
    rows = []
    if cur:
        rows.append(("expected net savings today", _cop(cur.get("expected_net_savings")), ""))
        if cur.get("expected_savings_without_holdout") is not None:
            rows.append(
                (
                    "  the policy's decisions (control group as the policy decides it)",
                    _cop(cur.get("expected_savings_without_holdout")),
                    "",
                )
            )
            rows.append(
                (
                    "  less the control group's cost (holdout left unmanaged)",
                    _cop(cur.get("expected_holdout_cost")),
                    f"{_n(cur.get('holdout'))} obligations",
                )
            )
    if oot:
        rows.append(
            (
                f"out of time, {_n(oot.get('rows'))} decisions: expected net savings",
                _cop(oot.get("expected_net_savings")),
                _pct(oot.get("expected_net_savings"), oot.get("expected_baseline_cost"))
                + " of the assign-all cost",
            )
        )
        if oot.get("oracle_net_savings") is not None:
            rows.append(
                (
                    "  true net savings (simulator truth)",
                    _cop(oot.get("true_net_savings")),
                    _share(oot.get("share_of_oracle_captured")) + " of the oracle's captured",
                )
            )
            rows.append(
                ("  the oracle's (true probabilities)", _cop(oot.get("oracle_net_savings")), "")
            )
            for name, words in (
                ("naive", "naive rule"),
                ("no_model", "no-model rule (no mandate managed)"),
            ):
                if f"{name}_true_net_savings" in oot:
                    rows.append(
                        (
                            f"  the {words}",
                            _cop(oot.get(f"{name}_true_net_savings")),
                            _share(oot.get(f"{name}_share_of_oracle_captured"))
                            + " of the oracle's captured",
                        )
                    )
        else:
            rows.append(("  the oracle's", "-", "no simulator truth"))
        if oot.get("beats_both_extremes") is not None:
            beats = "yes" if oot["beats_both_extremes"] else "no"
            rows.append(("  cheaper than assigning everyone and no one", beats, ""))
    return [("business impact against assigning everyone", None, rows)]


def _share(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"
