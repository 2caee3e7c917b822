"""`cobranza train`: fit, evaluate, log to MLflow, register, gate and publish one model version.

The steps, each a function of its own: `load_split` (labeled eligible gold rows, split; data.py),
`fit` (optional Optuna search, then the calibrated LightGBM and the logistic baseline), `evaluate`
(evaluation.py: metrics per part beside the oracle's when the simulator's truth is present),
`fit_decision_policy` (the policy's expected figures on the test part), `log_run` (the MLflow run: params,
metrics, lineage, configuration, artifacts, pictures, the pyfunc model), `register` (the version
and its lineage in one write), `apply_gate`, `write_report` and `publish` (the `ml_metadata`
mirror, the catalog, then the alias, last). The same gold version, configuration and seed give
the same metrics to the last digit.

From the registration on, a failure leaves the version without an alias, tagged
`training_status=failed` (`_failed`); an interruption after the alias moved ends as published.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from cobranza.config import Settings
from cobranza.console import UI
from cobranza.decision.policy import Policy
from cobranza.errors import CobranzaError, first_line
from cobranza.lake import Lake, refresh_catalog
from cobranza.ml import registry, tracking
from cobranza.ml.data import PARTS, Dataset, load_dataset, truth_path
from cobranza.ml.evaluation import Evaluation, evaluate, metric_rows, round_metric
from cobranza.ml.fitting import effect_warning, fit, fit_decision_policy
from cobranza.ml.gate import Decide, GateResult, compare, decide_with_policy
from cobranza.ml.lineage import Lineage
from cobranza.ml.model import Fitted
from cobranza.ml.report import ReportRun, draw_pictures, model_report
from cobranza.ml.run_log import LoggedRun, log_run
from cobranza.summary import Summary
from cobranza.transforms.schema import CUT_DATE

log = logging.getLogger(__name__)
STEPS = ("load_split", "fit_lightgbm", "fit_baseline", "evaluate", "pictures", "mlflow_log")


class TrainingError(CobranzaError):
    """A training that failed: after registering its version (which keeps no alias), or before
    logging anything (a leak: the model beats the simulator's truth)."""


@dataclass
class GateOutcome(Summary):
    """Whether the new version passed the promotion gate, and why."""

    passed: bool
    reason: str
    verdict: str  # first champion, gain, non-inferior or refused
    comparison: dict[str, Any] | None  # both AUCs, the intervals, the value, on the same rows


@dataclass
class TrainResult(Summary):
    """A trained, registered and gated model version, with its figures beside the oracle's."""

    run_id: str
    model: str
    version: str
    gold_version: str | None
    split: dict[str, str]  # part -> "rows, rate"
    embargoed_rows: int
    auc_vs_oracle: dict[str, dict[str, float | None]]  # part -> model, oracle, baseline AUC, ECE
    oot: dict[str, float | None]  # out-of-time AUC, oracle AUC, ECE, its noise, KS, Brier, PSI
    intervals: dict[str, Any]  # LightGBM - baseline and - oracle AUC, OOT calibration (95% CIs)
    gate: GateOutcome
    alias: str
    training_status: str
    experiment: str
    policy: dict[str, float | None]  # no_assign_share, savings_per_obligation (test, expected)
    causal: dict[str, Any]  # the candidates out of time on the randomized rows (ml.causal)
    effect: dict[str, Any]  # management's effect on the roll: identified, interval, warning
    best_iteration: int
    report: str
    seconds: float
    timings: dict[str, float]


# ---- the steps ---------------------------------------------------------------------------------
def load_split(lake: Lake, settings: Settings, info: Callable[[str], None]) -> Dataset:
    """The labeled eligible rows of the current gold, split (see data.py)."""
    dataset = load_dataset(
        lake,
        settings.oot_months,
        settings.test_share,
        settings.seed,
        sample_clients=settings.train_sample_clients,
    )
    info(
        "split: "
        + ", ".join(
            f"{p} {s['rows']:,} rows / {s['clients']:,} clients, rate {s['target_rate']:.3f}"
            for p, s in dataset.summary().items()
        )
        + f"; oot months {', '.join(dataset.oot_months)}"
    )
    return dataset


def check_leaks(evaluation: Evaluation) -> None:
    """Stop before logging anything when the model beats the simulator's truth beyond chance on
    any part: no honest model ranks better than the probabilities that drew the labels."""
    alarms = evaluation.leak_alarms()
    if alarms:
        raise TrainingError(
            "train stopped: "
            + "; ".join(alarms)
            + ". A feature carries the label or the future (check gold's columns against "
            "transforms/schema.NON_FEATURES); nothing was registered or published, and the "
            "training's MLflow run ends FAILED"
        )


def register(settings: Settings, logged: LoggedRun, lineage: Lineage, lock_token: str) -> str:
    """The logged model as a new registered version, its lineage tags in the same write: a
    registered version always carries gold_version, whatever happens next."""
    return registry.register_version(settings, logged.model_uri, lineage.tags(), lock_token)


def apply_gate(
    settings: Settings,
    version: str,
    run_id: str,
    dataset: Dataset,
    evaluation: Evaluation,
    challenger: registry.Champion,
    decide: Decide = decide_with_policy,
) -> GateResult:
    """The promotion gate against the current champion, both scored and deciding with
    `decide(model, frame)` on this training's out-of-time rows; tagged on the version and run."""
    frame, y = dataset.rows("oot"), dataset.y("oot")
    gate = registry.gate_version(
        settings,
        version,
        run_id,
        evaluation.gate_metrics(),
        lambda champion: compare(
            champion,
            challenger,
            frame,
            y,
            functools.partial(decide, costs=settings.costs),
            settings,
        ),
    )
    registry.describe_version(settings, version, describe(settings, dataset, evaluation, gate))
    mlflow.set_tags(
        {
            "model_version": version,
            "gate_passed": str(gate.passed).lower(),
            "gate_reason": gate.reason[:5000],
            **gate.tags(settings.gate),
        }
    )
    return gate


def describe(settings: Settings, dataset: Dataset, evaluation: Evaluation, gate: GateResult) -> str:
    """A model version's description: the objective, the data window, OOT AUC, the verdict."""
    cuts = dataset.frame[CUT_DATE]
    oot = evaluation.out_of_time()
    oracle = f" (oracle {oot['oracle_auc']:.4f})" if oot["oracle_auc"] is not None else ""
    auc = f"{oot['auc']:.4f}" if oot["auc"] is not None else "n/a"
    return (
        f"P(self_cure_debit): the amount past due paid only by the recurring debit within "
        f"{dataset.gold.get('horizon_days', settings.horizon_days)} days; calibrated LightGBM "
        f"on gold {dataset.gold.get('version')}, cuts {cuts.min():%Y-%m-%d} to "
        f"{cuts.max():%Y-%m-%d}, out of time {', '.join(dataset.oot_months)}; OOT AUC "
        f"{auc}{oracle}, ECE {oot['ece']}; gate {gate.verdict}: {gate.reason}"
    )[:5000]


@dataclass
class Progress:
    """How far a training got: the step under way, and once registered its version and gate."""

    step: str = "log to MLflow"
    version: str | None = None
    gate: GateResult | None = None
    withdraw: list[Path] = field(default_factory=list)  # event files to remove on failure


def publish(
    settings: Settings,
    lake: Lake,
    progress: Progress,
    run_row: dict[str, Any],
    evaluation: Evaluation,
) -> None:
    """The training's last steps: the `ml_metadata` mirror and its gate events, the catalog,
    then the alias (`champion` or `challenger`), the one write that publishes the version."""
    assert progress.version is not None and progress.gate is not None
    run_id = run_row["run_id"]
    progress.step = "write the ml_metadata mirror"
    lake.write_metadata("model_runs", [run_row], run_id)
    lake.write_metadata("model_metrics", metric_rows(run_id, evaluation.metrics), run_id)
    progress.withdraw = registry.record_gate_events(
        settings, progress.version, run_id, progress.gate
    )
    progress.step = "refresh the catalog"
    refresh_catalog(lake)
    progress.step = "move the alias"
    registry.publish_version(settings, progress.version, progress.gate)


@contextlib.contextmanager
def _failing_late(
    settings: Settings, lock: tracking.TrainingLock, progress: Progress, run_id: Callable[[], str]
) -> Iterator[None]:
    """A failure after the registration leaves the version without an alias and tagged failed,
    then raises one line (TrainingError); an interruption after the alias moved is a published
    training, which goes on to its summary."""
    try:
        yield
    except BaseException as exc:
        version, gate = progress.version, progress.gate
        if version is None:
            raise  # nothing was registered: nothing to mark
        if (
            progress.step == "move the alias"
            and gate is not None
            and registry.holds_its_alias(settings, version, gate)
        ):
            registry.mark_succeeded(settings, version)
            log.warning(
                "train was interrupted (%s) after its last step: version %s is published",
                type(exc).__name__,
                version,
            )
            return
        registry.withdraw_events(progress.withdraw)
        error = _failed(settings, lock, version, run_id(), gate, progress.step, exc)
        if error is exc:
            raise
        raise error from exc


def _failed(
    settings: Settings,
    lock: tracking.TrainingLock,
    version: str,
    run_id: str,
    gate: GateResult | None,
    step: str,
    exc: BaseException,
) -> BaseException:
    """Mark the version failed (best effort) and build the one-line error; the alias never moved.

    An interrupt (Ctrl-C) is marked too and returned as is, for the caller to re-raise.
    """
    log.debug("train failed at %s", step, exc_info=exc)
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        cause = "interrupted"
    else:
        cause = f"{type(exc).__name__}: {first_line(exc)}"
    reason = f"failed at {step} ({cause})"
    problem = registry.mark_failed(settings, version, run_id, reason)
    lock.keep = problem is not None  # the listing then tells it was interrupted
    with contextlib.suppress(Exception):
        MlflowClient(tracking_uri=settings.tracking_uri).set_tag(
            run_id, "training_status", "failed"
        )
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return exc
    champion = None
    with contextlib.suppress(Exception):
        champion = registry.champion_version(settings)
    if champion is None and gate is not None:
        champion = gate.champion_version
    keeps = f"the champion is still v{champion}" if champion else "there is no champion"
    tagged = (
        "is tagged training_status=failed"
        if problem is None
        else f"could not be tagged failed ({problem}), `cobranza models` lists it as interrupted"
    )
    return TrainingError(
        f"train {reason}: model version {version} is registered without an alias and {tagged}; "
        f"{keeps}, nothing was published. Fix the cause and run `cobranza train` again"
    )


# ---- the training ------------------------------------------------------------------------------
def train(settings: Settings, tune_trials: int | None = None, ui: UI | None = None) -> TrainResult:
    """Train, evaluate, log, register and gate; returns the summary the CLI prints."""
    if ui is None:
        return _train(settings, tune_trials, None, None)
    total = len(STEPS) + 1 + (1 if tune_trials else 0)
    with ui.progress("train", total=total) as step:
        return _train(settings, tune_trials, ui, step)


def _train(settings: Settings, tune_trials: int | None, ui: UI | None, step: Any) -> TrainResult:
    lake = Lake(settings.lake).ensure()
    try:
        lock = tracking.TrainingLock(settings)
    except OSError as exc:
        raise TrainingError(
            f"train cannot start: its lock in {lake.metadata_dir / 'training'} cannot be written "
            f"({first_line(exc)}); is the lake read-only or full? Nothing was trained"
        ) from None
    try:
        return _train_locked(settings, tune_trials, ui, step, lock)
    finally:
        lock.release(remove=not lock.keep)


class _Clock:
    """Seconds per step, and the progress bar moved after each."""

    def __init__(self, step: Any):
        self.step = step
        self.started = datetime.now(UTC)
        self.t0 = self.last = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.last, 3)
        self.last = now
        if self.step is not None:
            self.step.advance()
            self.step.update(description=f"train: {name.replace('_', ' ')} done")

    def seconds(self) -> float:
        return round(time.perf_counter() - self.t0, 3)


def _train_locked(
    settings: Settings,
    tune_trials: int | None,
    ui: UI | None,
    step: Any,
    lock: tracking.TrainingLock,
) -> TrainResult:
    clock = _Clock(step)
    info = ui.info if ui is not None else (lambda _msg: None)
    lake = Lake(settings.lake).ensure()
    dataset = load_split(lake, settings, info)
    client = tracking.configure(settings)
    with training_run(f"train-{clock.started.strftime('%Y%m%dT%H%M%S')}") as run:
        clock.lap("load_split")
        fitted = fit(dataset, settings.seed, tune_trials, clock.lap, info)
        evaluation = evaluate(
            dataset, fitted.model, fitted.baseline, truth_path(settings, lake), settings.seed
        )
        check_leaks(evaluation)
        clock.lap("evaluate")
        policy = fit_decision_policy(settings, dataset, fitted)
        lineage = Lineage.of(dataset.gold, tracking.git_commit())
        progress = Progress()
        logged: LoggedRun | None = None
        with _failing_late(settings, lock, progress, lambda: logged.run_id if logged else ""):
            with tempfile.TemporaryDirectory(prefix="cobranza-train-") as tmp:
                folder = Path(tmp)
                pictures = draw_pictures(
                    folder / "pictures", dataset, evaluation.proba, fitted.model, settings.seed
                )
                clock.lap("pictures")
                logged = log_run(
                    settings, client, run, folder, dataset, fitted, evaluation, policy,
                    lineage, lock.token, tune_trials, info,
                )  # fmt: skip
                progress.step = "register the model version"
                progress.version = register(settings, logged, lineage, lock.token)
                clock.lap("mlflow_log")
                progress.step = "apply the gate"
                challenger = registry.Champion(
                    fitted.model,
                    progress.version,
                    logged.run_id,
                    policy,
                    dataset.features,
                    roll=fitted.roll,
                    naive=fitted.naive,
                )
                progress.gate = apply_gate(
                    settings, progress.version, logged.run_id, dataset, evaluation, challenger
                )
                progress.step = "write the model report"
                write_report(
                    folder, settings, progress, logged, lineage, dataset, fitted, evaluation,
                    policy, pictures,
                )  # fmt: skip
                artifact_uri = run.info.artifact_uri
            run_row = _run_row(
                settings, dataset, fitted, evaluation, policy, lineage, logged, progress,
                clock.started, clock.seconds(), tune_trials,
            )  # fmt: skip
            publish(settings, lake, progress, run_row, evaluation)
        clock.lap("report_gate")
    assert progress.version is not None and progress.gate is not None
    return _result(
        settings, dataset, fitted, evaluation, policy, logged, progress, artifact_uri,
        run_row["seconds"], clock.timings,
    )  # fmt: skip


@contextlib.contextmanager
def training_run(run_name: str) -> Iterator[Any]:
    """The MLflow run of a training, from before the fitting to after the alias moved, so its
    duration is the training's. A failure ends it FAILED (KILLED on an interrupt) with
    `training_status=failed` and the first line of the cause in `training_error`, never
    FINISHED; a run whose version was published but that cannot be marked FINISHED (a store
    error on that last write) is a warning, the training stays published."""
    run = mlflow.start_run(run_name=run_name)
    try:
        yield run
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
        with contextlib.suppress(Exception):
            mlflow.set_tags(
                {
                    "training_status": "failed",
                    "training_error": "interrupted" if interrupted else first_line(exc)[:5000],
                }
            )
        with contextlib.suppress(Exception):
            mlflow.end_run("KILLED" if interrupted else "FAILED")
        raise
    try:
        mlflow.end_run("FINISHED")
    except tracking.STORE_ERRORS as exc:
        log.warning(
            "the MLflow run %s of this published training could not be marked FINISHED: %s",
            run.info.run_id,
            first_line(exc),
        )


def write_report(
    folder: Path,
    settings: Settings,
    progress: Progress,
    logged: LoggedRun,
    lineage: Lineage,
    dataset: Dataset,
    fitted: Fitted,
    evaluation: Evaluation,
    policy: Policy,
    pictures: dict[str, Path],
) -> Path:
    """The HTML model report, logged with the run (`report/model_report.html`)."""
    assert progress.version is not None and progress.gate is not None
    run = ReportRun(
        version=progress.version,
        run_id=logged.run_id,
        gold_version=dataset.gold.get("version"),
        commit=None if lineage.git_commit == "unknown" else lineage.git_commit,
        seed=settings.seed,
        gate_passed=progress.gate.passed,
        gate_reason=progress.gate.reason,
        policy=policy.to_dict(),
        causal=fitted.causal.to_dict() if fitted.causal is not None else None,
        gate_evidence=gate_rows(progress.gate, settings),
        effect_warning=effect_warning(fitted.roll),
    )
    report = model_report(folder, run, dataset, fitted.model, evaluation, pictures)
    mlflow.log_artifact(str(report), "report")
    return report


def gate_rows(gate: GateResult, settings: Settings) -> list[dict[str, Any]]:
    """The gate's evidence as report rows: the verdict and margins, the same-row comparison."""
    row: dict[str, Any] = {
        "verdict": gate.verdict,
        "auc_margin": settings.gate.auc_margin,
        "value_margin_cop": settings.gate.value_margin,
    }
    cmp = gate.comparison
    if cmp is not None and cmp.auc_difference is not None:
        d = cmp.auc_difference
        row |= {
            "champion": f"v{cmp.champion_version}",
            "rows": cmp.rows,
            "champion_auc": cmp.champion_auc,
            "challenger_auc": cmp.challenger_auc,
            "auc_diff": d.estimate,
            "auc_diff_low": d.low,
            "auc_diff_high": d.high,
        }
        if cmp.value is not None:
            s = cmp.value.saving
            row |= {"saving_cop": s.estimate, "saving_low": s.low, "saving_high": s.high}
    return [row]


def _run_row(
    settings: Settings,
    dataset: Dataset,
    fitted: Fitted,
    evaluation: Evaluation,
    policy: Policy,
    lineage: Lineage,
    logged: LoggedRun,
    progress: Progress,
    started: datetime,
    seconds: float,
    tune_trials: int | None,
) -> dict[str, Any]:
    """The row of `ml_metadata.model_runs`."""
    assert progress.gate is not None
    split, gate, model = dataset.summary(), progress.gate, fitted.model
    gate_metrics = evaluation.gate_metrics()
    return {
        "run_id": logged.run_id,
        "model_name": settings.model_name,
        "model_version": progress.version,
        "started_at": started.isoformat(),
        "seconds": seconds,
        "gold_version": dataset.gold.get("version"),
        "gold_run_id": lineage.gold_run_id,
        "gold_inputs_sha256": lineage.gold_inputs_sha256,
        "git_commit": None if lineage.git_commit == "unknown" else lineage.git_commit,
        "seed": settings.seed,
        "tune_trials": tune_trials or 0,
        "best_iteration": model.best_iteration_,
        "n_features": len(dataset.features),
        "gate_passed": gate.passed,
        "gate_reason": gate.reason,
        "policy_no_assign_share": policy.no_assign_share,
        "params": json.dumps({k: str(v) for k, v in model.lgbm_params().items()}, sort_keys=True),
        **{f"{p}_rows": split[p]["rows"] for p in PARTS},
        "embargoed_rows": dataset.embargoed,
        **{f"{p}_target_rate": split[p]["target_rate"] for p in PARTS},
        "oot_auc": gate_metrics["oot_auc"],
        "oot_ece": gate_metrics["oot_ece"],
        "oot_ece_noise": evaluation.ece_noise,
        "psi": evaluation.psi,
        "experiment": logged.experiment,
    }


def _result(
    settings: Settings,
    dataset: Dataset,
    fitted: Fitted,
    evaluation: Evaluation,
    policy: Policy,
    logged: LoggedRun,
    progress: Progress,
    artifact_uri: str,
    seconds: float,
    timings: dict[str, float],
) -> TrainResult:
    assert progress.version is not None and progress.gate is not None
    gate, policy_dict = progress.gate, policy.to_dict()
    return TrainResult(
        run_id=logged.run_id,
        model=settings.model_name,
        version=progress.version,
        gold_version=dataset.gold.get("version"),
        split={
            p: f"{s['rows']:,} rows, rate {s['target_rate']:.4f}"
            for p, s in dataset.summary().items()
        },
        embargoed_rows=dataset.embargoed,
        auc_vs_oracle=evaluation.side_by_side(),
        oot=evaluation.out_of_time(),
        intervals=evaluation.uncertainty(),
        gate=GateOutcome(
            passed=gate.passed,
            reason=gate.reason,
            verdict=gate.verdict,
            comparison=gate.evidence()["comparison"],
        ),
        alias=gate.alias,
        training_status="succeeded",
        experiment=logged.experiment,
        policy={
            "no_assign_share": round_metric(policy_dict.get("no_assign_share", float("nan"))),
            "savings_per_obligation": round_metric(policy.savings_per_obligation, 2),
        },
        causal=fitted.causal.to_dict() if fitted.causal is not None else {},
        effect={
            "identified": policy.effect_identified,
            "log_odds_low": policy.effect_low,
            "log_odds_high": policy.effect_high,
            "warning": effect_warning(fitted.roll),
        },
        best_iteration=fitted.model.best_iteration_,
        report=f"{artifact_uri}/report/model_report.html",
        seconds=seconds,
        timings=timings,
    )
