"""What each stage of `cobranza.stages` runs: its layer's entry point, called with its parameters.

Each function takes (settings, params, ui) and returns the stage's typed result (`Summary`). Each
imports its layer when called: the layers are heavy (LightGBM, MLflow, Spark, Ibis) and only the
stage that runs should pay for its own. Ingest and the ETL return plain dicts; their results are
typed here (`IngestResult`, `EtlResult`), keeping any key they add.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cobranza.stages import CheckedFolder
from cobranza.summary import EXTRA, Section, Summary

if TYPE_CHECKING:
    from cobranza.config import Settings
    from cobranza.console import UI
    from cobranza.decision.business_impact import ImpactResult
    from cobranza.decision.experiment_report import ExperimentResult
    from cobranza.decision.scoring import ScoreResult
    from cobranza.lake.retention import PruneResult
    from cobranza.ml.training import TrainResult
    from cobranza.monitoring.monitor import MonitorResult
    from cobranza.stages import (
        EtlParams,
        ExperimentParams,
        ImpactParams,
        IngestParams,
        MonitorParams,
        PruneParams,
        ScoreParams,
        TrainParams,
    )

T = TypeVar("T", bound=Summary)


def typed(cls: type[T], data: dict[str, Any]) -> T:
    """A layer's summary dict as `cls`: its declared keys as fields, any other key kept as is."""
    names = {f.name for f in fields(cls) if f.metadata != EXTRA}
    known = {k: v for k, v in data.items() if k in names}
    return cls(**known, extra={k: v for k, v in data.items() if k not in names})


@dataclass
class IngestResult(Summary):
    """A raw version published from an extract: rows read, accepted, quarantined, per file."""

    version: str
    as_of: str
    extract_dir: str
    dialect: str
    files: dict[str, dict[str, Any]]
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    duplicates_collapsed: int
    warnings: list[str]
    fatal: str | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict, metadata=EXTRA)

    def sections(self) -> list[Section]:
        """Per file what was read, accepted, quarantined and collapsed; the assignment arms;
        where the data-quality report is. The warnings are the run's log lines (`ingest_extract`
        prints them as they are found, for the CLI, the pipeline and the API's jobs alike)."""
        heading = (
            f"raw version {self.version} (as of {self.as_of}, contract version "
            f"{self.extra.get('contract_version', '?')}, dialect {self.dialect}, "
            f"{self.seconds:,.1f} s)"
        )
        keys = ("rows_read", "rows_accepted", "rows_quarantined", "duplicates_collapsed")
        rows = [(name, *(f"{c.get(k, 0):,}" for k in keys)) for name, c in self.files.items()]
        rows.append(("total", *(f"{getattr(self, k):,}" for k in keys)))
        columns = ["file", "read", "accepted", "quarantined", "duplicates collapsed"]
        out: list[Section] = [(heading, columns, rows)]
        arms = self.extra.get("assignments")
        if arms:
            out.append(_assignment_section(arms))
        quality = self.extra.get("quality_report")
        if quality:
            out.append(
                (
                    "data-quality report (quarantine by file and reason)",
                    None,
                    [("HTML", quality["html"]), ("CSV", quality["csv"])],
                )
            )
        return out


def _assignment_section(arms: dict[str, Any]) -> Section:
    """Early-delinquency rows per arm, the rows without a decision and the contamination."""
    rows = [(arm, f"{n:,}") for arm, n in arms.get("arms", {}).items()]
    rows.append(
        ("no assignment at a past cut (treated as ASSIGNED)", f"{arms.get('missing', 0):,}")
    )
    rows.append(
        (
            f"latest cut {arms.get('latest_cut')}: not yet decided",
            f"{arms.get('latest_cut_undecided', 0):,}",
        )
    )
    contamination = arms.get("contamination") or {}
    rows.append(
        (
            "HOLDOUT or RULE rows with a collection action in the horizon",
            f"{contamination.get('rows', 0):,}",
        )
    )
    rows.append(("  collection actions on them", f"{contamination.get('actions', 0):,}"))
    where = f" ({arms['file']})" if arms.get("file") else ""
    return (f"collection assignments{where}", ["arm", "early-delinquency rows"], rows)


@dataclass
class EtlResult(Summary):
    """Silver and gold versions published together from a raw version."""

    engine: str
    raw_version: str
    silver_version: str
    gold_version: str
    as_of: str
    latest_cut: str
    horizon_days: int
    silver_rows: dict[str, int]
    gold: dict[str, int]  # rows, eligible, labeled, positives of gold.obligation_snapshots
    seconds: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict, metadata=EXTRA)


@dataclass
class SimulateResult(Summary):
    """A simulated extract (the pipeline's first step when asked to simulate)."""

    out: str
    as_of: str
    dialect: str
    clients: int
    months: int
    rows: dict[str, int]
    rows_total: int
    seconds: float
    rows_per_second: int | None
    labeled_early_delinquent: int
    labeled_eligible: int
    self_cure_rate: float | None
    self_cure_rate_all_early: float | None
    mean_p_true: float | None
    oracle_auc: float | None
    defects_injected: int
    manifest: str
    extra: dict[str, Any] = field(default_factory=dict, metadata=EXTRA)


def ingest(settings: Settings, params: IngestParams, ui: UI | None = None) -> IngestResult:
    from cobranza.contract import load_dialect  # the layer, when its stage runs
    from cobranza.ingest import ingest_extract

    dialect = load_dialect(params.dialect)
    # a job of the API: the folder as the API checked it (identity, roots), refused if it changed
    checked = CheckedFolder.from_env(os.environ)
    summary = ingest_extract(settings, Path(params.extract_dir), dialect, ui=ui, checked=checked)
    return typed(IngestResult, summary)


def etl(settings: Settings, params: EtlParams, ui: UI | None = None) -> EtlResult:
    from cobranza.transforms import run_etl  # the layer, when its stage runs

    return typed(EtlResult, run_etl(settings, ui=ui))


def train(settings: Settings, params: TrainParams, ui: UI | None = None) -> TrainResult:
    from cobranza.ml.training import train as run_training  # the layer, when its stage runs

    return run_training(settings, tune_trials=params.tune, ui=ui)


def score(settings: Settings, params: ScoreParams, ui: UI | None = None) -> ScoreResult:
    # the layer, when its stage runs: Spark's scoring only on the Spark engine
    if settings.engine == "spark":
        from cobranza.decision.spark_scoring import score as run_scoring
    else:
        from cobranza.decision.scoring import score as run_scoring

    return run_scoring(settings, as_of=params.as_of, ui=ui)


def impact(settings: Settings, params: ImpactParams, ui: UI | None = None) -> ImpactResult:
    from cobranza.decision.business_impact import (
        impact as run_impact,  # the layer, when its stage runs
    )

    return run_impact(settings, ui=ui, sensitivity=params.sensitivity)


def monitor(settings: Settings, params: MonitorParams, ui: UI | None = None) -> MonitorResult:
    from cobranza.monitoring.monitor import monitor as run_monitor  # the layer, when its stage runs

    return run_monitor(settings, ui=ui)


def prune(settings: Settings, params: PruneParams, ui: UI | None = None) -> PruneResult:
    from cobranza.ml.lineage import prune as prune_lake  # the layer, when its stage runs

    return prune_lake(settings, keep=params.keep, dry_run=params.dry_run)


def experiment(
    settings: Settings, params: ExperimentParams, ui: UI | None = None
) -> ExperimentResult:
    from cobranza.decision.experiment_report import report  # the layer, when its stage runs

    return report(settings, mde=params.mde, population=params.population)
