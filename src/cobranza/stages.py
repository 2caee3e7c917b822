"""Every stage of cobranza, declared once: its parameters, what it reads and writes, what it runs.

A stage is a command (`cobranza <name>`), an API job type (`POST /v1/jobs {"type": <name>}`) and,
for the main job, a step of `cobranza pipeline`. Everything those need comes from `STAGES`:

- the CLI builds each command's options from the stage's `Params` model (`cli.py`);
- the API validates a job's `params` with the same model, turns them into the command's arguments
  (`cli_args`) and refuses a job whose `writes` conflict with an active one's (`conflicts`);
- the pipeline runs the stages marked `pipeline`, in the order declared here;
- the lake names the command that publishes a zone in its messages (`publisher`).

A new stage is one `Stage(...)` here and its function, `run(settings, params, ui) -> Summary`,
named by `"module:function"` and imported when the stage runs: the layers are heavy (LightGBM,
MLflow, Spark) and this module is read by `cobranza --help`, the API's start and the lake.

Parameters: a pydantic model whose fields are the API's `params` (with the API's limits). Where
the command line differs (a wider type, a positional argument, looser limits), the field carries a
`Cli(...)` in its `Annotated` metadata; command-line options that only override a setting of the
command's process (`--spark-master`) are `cli_settings` of the stage and never API parameters.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from cobranza.errors import CobranzaError

if TYPE_CHECKING:
    from cobranza.config import Settings
    from cobranza.console import UI
    from cobranza.summary import Summary

# What a stage may write besides the lake's zones (raw, silver, gold, results):
REGISTRY = "registry"  # the MLflow model registry, written by train (and promote)
# monitor publishes no zone: it appends its own files to ml_metadata (atomic, one per run) and only
# reads current versions, so it locks nothing but itself (two monitors at once would be waste)
MONITORING = "monitoring"
# prune removes versions that any other job may be reading (train and score read gold, etl reads
# raw...): it holds the whole lake and runs alone
WHOLE_LAKE = "lake"
DEFAULT_EXTRACT = "extract"  # `cobranza pipeline`'s default --extract, relative to the working dir


def conflicts(a: set[str], b: set[str]) -> bool:
    """Two jobs holding these resources may not run at once."""
    return bool(a & b) or WHOLE_LAKE in a or WHOLE_LAKE in b


# ---- parameters --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cli:
    """How a parameter reads on the command line, where that differs from the API.

    `type`: the command's type when wider than the API's (a dialect `.toml` file, any engine name
    checked by the settings); `argument`: positional; `min`: the command's lower bound (the API's
    own limits are the pydantic field's); `path`: a folder, given to a job's command resolved.
    """

    type: Any = None
    help: str | None = None
    argument: bool = False
    min: int | None = None
    path: bool = False


@dataclass(frozen=True)
class CliSetting:
    """A command-line option that sets a field of the command's `Settings` (never an API param)."""

    setting: str
    type: Any
    help: str


@dataclass(frozen=True)
class CliOption:
    """A command-line option that changes only what the command does with the stage's result
    (its exit code): never an API parameter, never a setting. `choices` are its only values."""

    name: str
    default: str
    choices: tuple[str, ...]
    help: str


class PathProblem(ValueError):
    """A job's folder parameter that may not be used; `field` names it, the message never quotes it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


OUTSIDE_ROOTS = (
    "is outside the folders this service accepts extracts from (COBRANZA_API_EXTRACT_ROOTS)"
)


def _resolve(value: str | Path) -> Path:
    """The absolute path with `..` and symlinks resolved, as the worker will use it."""
    return Path(value).resolve()


def within_roots(path: Path, roots: tuple[Path, ...] | None) -> bool:
    """No roots configured: any folder; else `path` (resolved) must be one of them or under one."""
    return roots is None or any(path == r or path.is_relative_to(r) for r in roots)


@dataclass(frozen=True)
class CheckedFolder:
    """What the API checked of a job's extract folder, handed to the worker with the job.

    `path` is the folder's real path as checked (the worker's argument), `device` and `inode` its
    identity then (None when the folder did not exist yet: a pipeline simulating into a new
    folder), `roots` the service's extract roots. The worker opens the folder without following a
    symlink and refuses it when its identity or its real path no longer match: a folder swapped
    for a symlink after the check is never read.
    """

    path: str
    device: int | None = None
    inode: int | None = None
    roots: tuple[str, ...] | None = None

    ENV: ClassVar[str] = "COBRANZA_EXTRACT_CHECK"

    @classmethod
    def of(cls, path: Path, roots: tuple[Path, ...] | None) -> CheckedFolder:
        try:
            info = os.stat(path, follow_symlinks=False)
            device, inode = info.st_dev, info.st_ino
        except OSError:
            device = inode = None
        listed = None if roots is None else tuple(str(r) for r in roots)
        return cls(str(path), device, inode, listed)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CheckedFolder | None:
        """The check the API handed to this worker (None for a command run by hand)."""
        text = environ.get(cls.ENV)
        if not text:
            return None
        data = json.loads(text)
        roots = data.get("roots")
        return cls(
            str(data["path"]),
            data.get("device"),
            data.get("inode"),
            None if roots is None else tuple(roots),
        )

    def root_paths(self) -> tuple[Path, ...] | None:
        return None if self.roots is None else tuple(Path(r) for r in self.roots)


def _no_nul(value: str | None) -> str | None:
    if value is not None and ("\x00" in value or not value.strip()):
        raise ValueError("must be a folder path")
    return value


class StageParams(BaseModel):
    """The parameters of a stage; the fields are the API's `params` and the command's options."""

    model_config = ConfigDict(extra="forbid")
    # the folder check_paths accepted, for the job's worker (never an API or command-line field)
    _checked: CheckedFolder | None = PrivateAttr(None)

    def check_paths(self, roots: tuple[Path, ...] | None) -> None:
        """Check the folders this job touches against the server's file system and the allowed
        roots; raise PathProblem. Run by the API's route, which knows the service's roots."""

    @property
    def checked_folder(self) -> CheckedFolder | None:
        """The folder `check_paths` accepted (real path, identity, roots), if the job has one."""
        return self._checked

    def settings_overrides(self) -> dict[str, Any]:
        """Settings these parameters set for the stage's process (None: keep the configured)."""
        return {}

    @classmethod
    def in_pipeline(cls, pipeline: PipelineParams) -> StageParams:
        """This stage's parameters when it runs inside `cobranza pipeline`: its defaults."""
        return cls.model_construct()

    def cli_args(self) -> list[str]:
        """The command and its arguments for these parameters (a list: no shell ever sees it)."""
        return cli_args(self)


Dialect = Literal["standard", "bank-latin1"]
Engine = Literal["duckdb", "spark"]


class IngestParams(StageParams):
    extract_dir: Annotated[
        str,
        Cli(
            type=Path,
            argument=True,
            path=True,
            help="Folder with the nine CSV files (and manifest.json).",
        ),
    ] = Field(..., min_length=1, max_length=1000, description="Extract folder on the server.")
    dialect: Annotated[
        Dialect, Cli(type=str, help="standard, bank-latin1 or a dialect .toml file.")
    ] = Field("standard", description="CSV dialect of the extract.")

    _check_dir = field_validator("extract_dir")(_no_nul)

    def check_paths(self, roots: tuple[Path, ...] | None) -> None:
        # the roots first: outside them, an existing and a missing folder get the same answer
        path = _resolve(self.extract_dir)
        if not within_roots(path, roots):
            raise PathProblem("extract_dir", OUTSIDE_ROOTS)
        if not path.is_dir():
            raise PathProblem("extract_dir", "is not an existing folder on the server")
        self.extract_dir = str(path)
        self._checked = CheckedFolder.of(path, roots)

    @classmethod
    def in_pipeline(cls, pipeline: PipelineParams) -> IngestParams:
        return cls.model_construct(
            extract_dir=pipeline.extract or DEFAULT_EXTRACT, dialect=pipeline.dialect
        )


class EtlParams(StageParams):
    engine: Annotated[Engine | None, Cli(type=str | None, help="duckdb (default) or spark.")] = (
        Field(None, description="Transform engine.")
    )
    horizon: int | None = Field(None, ge=1, le=120, description="Target horizon in days.")

    def settings_overrides(self) -> dict[str, Any]:
        return {"engine": self.engine, "horizon_days": self.horizon}


class TrainParams(StageParams):
    tune: Annotated[int | None, Cli(min=1)] = Field(
        None, ge=1, le=200, description="Optuna trials for LightGBM."
    )


class ScoreParams(StageParams):
    as_of: date | None = Field(None, description="Cut date to score (default the latest).")
    engine: Annotated[Engine | None, Cli(type=str | None, help="duckdb (default) or spark.")] = (
        Field(None, description="Scoring engine (the same rows either way).")
    )

    def settings_overrides(self) -> dict[str, Any]:
        return {"engine": self.engine}


class ImpactParams(StageParams):
    """Impact reads the champion and the current gold and results."""

    sensitivity: Annotated[
        bool, Cli(help="Also value the decisions over a grid of the cost parameters.")
    ] = Field(False, description="Net value over a grid of provision steps and action costs.")


class MonitorParams(StageParams):
    """Monitoring has no parameters: it reads the champion and the current gold and results."""


class ExperimentParams(StageParams):
    mde: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Minimum detectable effect on the roll rate for the sample size (absolute; "
        "default the settings' experiment.mde).",
    )
    population: Literal["eligible", "all"] = Field(
        "eligible", description="Rows compared: eligible ones (the model's population) or all."
    )


class PipelineParams(StageParams):
    # the command's arguments follow this order: the always-present ones first
    months: Annotated[int, Cli(help="Months of simulated history.")] = Field(
        24, ge=4, le=120, description="Months of simulated history."
    )
    dialect: Annotated[Dialect, Cli(type=str, help="Dialect of the extract.")] = Field(
        "standard", description="CSV dialect of the extract."
    )
    seed: int = Field(42, ge=0, le=2**31 - 1, description="Simulator seed.")
    extract: Annotated[str | None, Cli(type=Path | None, path=True)] = Field(
        None, max_length=1000, description="Extract folder to ingest (or simulate into)."
    )
    simulate_clients: Annotated[int | None, Cli()] = Field(
        None, ge=50, le=200_000, description="Simulate an extract of this many clients first."
    )
    engine: Annotated[Engine | None, Cli(type=str | None, help="duckdb or spark.")] = Field(
        None, description="Transform engine."
    )

    _check_extract = field_validator("extract")(_no_nul)

    def check_paths(self, roots: tuple[Path, ...] | None) -> None:
        """Ingesting: an existing folder. Simulating: a new or empty folder or an earlier simulator
        output (the simulator overwrites its files). Without `extract`, the CLI's default
        `extract` folder under the service's working directory, checked the same way."""
        # the simulator (numpy, pyarrow) only when the API's route checks a pipeline job: this
        # module is read by `cobranza --help` and by the lake
        from cobranza.simulate import check_output_folder

        path = _resolve(self.extract or DEFAULT_EXTRACT)
        if not within_roots(path, roots):
            raise PathProblem("extract", OUTSIDE_ROOTS)
        if path.exists() and not path.is_dir():
            raise PathProblem("extract", "exists on the server and is not a folder")
        if self.simulate_clients:
            try:
                check_output_folder(path)
            except CobranzaError:
                raise PathProblem(
                    "extract",
                    "is an existing folder that is not empty and is not an earlier simulator "
                    "output; to simulate, give a new or empty folder",
                ) from None
        elif not path.is_dir():
            raise PathProblem("extract", "is not an existing folder on the server")
        self.extract = str(path)
        self._checked = CheckedFolder.of(path, roots)

    def settings_overrides(self) -> dict[str, Any]:
        return {"engine": self.engine}


class PruneParams(StageParams):
    keep: Annotated[
        int, Cli(min=1, help="Newest complete versions kept per zone (raw, silver, gold).")
    ] = Field(3, ge=1, le=100, description="Newest complete versions kept per zone.")
    dry_run: Annotated[bool, Cli(help="Say what would go, remove nothing.")] = Field(
        False, description="Report what would be removed, remove nothing."
    )


# ---- stages ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One stage: a command, an API job type (`job`) and possibly a step of the pipeline."""

    name: str
    params: type[StageParams]
    reads: tuple[str, ...]  # zones (and REGISTRY) it reads
    writes: tuple[str, ...]  # zones and resources it writes: two jobs writing one never run at once
    run: str  # "module:function", called as function(settings, params, ui) -> Summary
    help: str
    command: tuple[str, ...] = ()  # the CLI's words; default (name,)
    pipeline: bool = False  # a step of `cobranza pipeline`, in the order of STAGES
    job: bool = True  # an API job type
    role: str = "operator"  # the API role that may start it
    holds_lake: bool = True  # the command holds the lake's in-use lock (prune takes it itself)
    # the command may start a new lake; the others refuse a lake folder that does not exist (a
    # mistyped --lake), which they would otherwise create empty
    creates_lake: bool = False
    cli_settings: tuple[CliSetting, ...] = field(default_factory=tuple)
    cli_options: tuple[CliOption, ...] = field(default_factory=tuple)
    # "module:function", called as function(result, **cli_options) -> the command's exit code
    exit_code: str | None = None

    @property
    def words(self) -> tuple[str, ...]:
        return self.command or (self.name,)

    @property
    def title(self) -> str:
        """The command as people write it after `cobranza`."""
        return " ".join(self.words)

    def runner(self) -> Callable[[Settings, StageParams, UI | None], Summary]:
        """The stage's function, imported now (see the module docstring)."""
        return _imported(self.run)

    def exit_coder(self) -> Callable[..., int] | None:
        """The function giving the command's exit code from its result and `cli_options`."""
        return _imported(self.exit_code) if self.exit_code else None


def _imported(name: str) -> Any:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


_MAIN_JOB = (
    Stage(
        "ingest",
        IngestParams,
        reads=(),
        writes=("raw",),
        run="cobranza.runs:ingest",
        help="Validate an extract against the contract and publish a new raw version (bad rows "
        "quarantined).",
        pipeline=True,
        creates_lake=True,
    ),
    Stage(
        "etl",
        EtlParams,
        reads=("raw",),
        writes=("silver", "gold"),
        run="cobranza.runs:etl",
        help="Build silver and gold from the current raw version.",
        pipeline=True,
        cli_settings=(CliSetting("spark_master", str | None, "Spark master URL, e.g. local[*]."),),
    ),
    Stage(
        "train",
        TrainParams,
        reads=("gold",),
        writes=(REGISTRY,),
        run="cobranza.runs:train",
        help="Train LightGBM and the logistic baseline on gold, evaluate, log to MLflow, "
        "register, gate.",
        pipeline=True,
    ),
    Stage(
        "score",
        ScoreParams,
        reads=("gold", REGISTRY),
        writes=("results",),
        run="cobranza.runs:score",
        help="Score the early-delinquency population with the champion and decide ASSIGN / "
        "NO_ASSIGN.",
        pipeline=True,
        cli_settings=(CliSetting("spark_master", str | None, "Spark master URL, e.g. local[*]."),),
    ),
    Stage(
        "impact",
        ImpactParams,
        # appends its own files to ml_metadata (one per run), like monitor; not an API job
        reads=("gold", "results", REGISTRY),
        writes=(),
        run="cobranza.runs:impact",
        help="Business impact of the policy on out-of-time data and on the current population.",
        pipeline=True,
        job=False,
    ),
)


def _union(groups: Iterator[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(z for group in groups for z in group))


STAGES: tuple[Stage, ...] = (
    *_MAIN_JOB,
    Stage(
        "pipeline",
        PipelineParams,
        reads=(),
        writes=_union(s.writes for s in _MAIN_JOB),
        run="cobranza.pipeline:run",
        help="The main job end to end: [simulate →] " + " → ".join(s.name for s in _MAIN_JOB) + ".",
        creates_lake=True,
    ),
    Stage(
        "monitor",
        MonitorParams,
        reads=("gold", "results", REGISTRY),
        writes=(MONITORING,),
        run="cobranza.runs:monitor",
        help="Feature and score drift of the latest cut against the training window, and "
        "realized performance.",
        cli_options=(
            CliOption(
                "fail_on",
                "never",
                ("never", "alert", "warn", "insufficient_data"),
                "Exit with code 3 when the run's status is ALERT (alert), WARN or worse (warn), or "
                "also when there were too few rows to judge (insufficient_data); never: exit 0.",
            ),
        ),
        exit_code="cobranza.monitoring.monitor:exit_code",
    ),
    Stage(
        "experiment",
        ExperimentParams,
        reads=("gold",),
        writes=(),  # a read-only report; the API serves it as GET /v1/experiments, not as a job
        run="cobranza.runs:experiment",
        help="The randomized holdout's report: by closed cut and arm the cure, roll and cost "
        "figures, HOLDOUT - ASSIGNED with 95% intervals and p-values, the sample size needed.",
        command=("experiment", "report"),
        job=False,
    ),
    Stage(
        "prune",
        PruneParams,
        reads=(),
        writes=(WHOLE_LAKE,),
        run="cobranza.runs:prune",
        help="Free the space of old raw, silver and gold versions; keeps current ones, their "
        "lineage, every registered model's training gold and all results (docs/lake.md).",
        command=("lake", "prune"),
        role="admin",  # deletes data: more than running the pipeline
        holds_lake=False,
    ),
)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(name)


def pipeline_stages() -> tuple[Stage, ...]:
    """The steps of `cobranza pipeline`, in order."""
    return tuple(s for s in STAGES if s.pipeline)


def job_stages() -> tuple[Stage, ...]:
    """The stages the API runs as jobs."""
    return tuple(s for s in STAGES if s.job)


JOB_TYPES = tuple(s.name for s in job_stages())
JobType = Literal[JOB_TYPES]  # type: ignore[valid-type]


def publisher(zone: str) -> str:
    """The command that publishes a zone (the first stage writing it), for messages."""
    for s in STAGES:
        if zone in s.writes:
            return f"cobranza {s.title}"
    raise KeyError(zone)


def _stage_of(params: StageParams) -> Stage:
    for s in STAGES:
        if type(params) is s.params:
            return s
    raise KeyError(type(params).__name__)


def option_name(name: str) -> str:
    """The command-line option of a parameter: `--as-of` for `as_of`."""
    return "--" + name.replace("_", "-")


def cli_meta(params: type[StageParams], name: str) -> Cli:
    """The `Cli` metadata of a parameter (an empty one when it reads as on the API)."""
    for meta in params.model_fields[name].metadata:
        if isinstance(meta, Cli):
            return meta
    return Cli()


def cli_args(params: StageParams) -> list[str]:
    """The command for these parameters: its words, positional arguments, then each option set
    (None and False are left out: they are the command's defaults)."""
    s = _stage_of(params)
    args = list(s.words)
    options: list[str] = []
    for name in type(params).model_fields:
        value = getattr(params, name)
        meta = cli_meta(type(params), name)
        if value is None or value is False:
            continue
        if meta.path:  # absolute, never resolved again: the API resolved and checked it
            value = Path(os.path.abspath(value))
        if meta.argument:
            args.append(str(value))
        elif value is True:
            options.append(option_name(name))
        else:
            text = value.isoformat() if isinstance(value, date) else str(value)
            options += [option_name(name), text]
    return args + options
