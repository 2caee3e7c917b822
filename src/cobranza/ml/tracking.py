"""MLflow wiring (store inside the lake, quiet, no autologging), the pyfunc wrapper, and the
`ml_metadata` Parquet mirror that the DuckDB catalog exposes to BI.

MLflow's tracking store is SQLite at `<lake>/ml_metadata/mlflow.db` unless `mlflow_tracking_uri`
says otherwise; artifacts go to `<lake>/ml_metadata/artifacts`. The mirror tables are folders of
one Parquet file per run or event under `<lake>/ml_metadata/<table>/`, each written to a temporary
name first and renamed, so a reader never sees half a file.

The lake can be moved or copied. MLflow stores absolute artifact URIs (the experiment's
artifact_location, each run's artifact_uri, each model version's storage_location), so:
- reading: an artifact URI into another lake's `ml_metadata/artifacts/` is read at the same relative
  path under this lake when it is there (`lake_artifact_uri`);
- writing: when the experiment named after the model keeps its artifacts outside this lake,
  trainings use an experiment of this lake, `<model_name>@<hash of the artifacts folder>` (created
  with its artifact_location in this lake), so nothing is ever written outside the lake.

A training holds a lock file `<lake>/ml_metadata/training/<token>.lock` (flock) from its start to
its end, and tags its model version with the token: a version still tagged `training_status=running`
whose lock is no longer held was left by a process that died (`training_alive`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import subprocess
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cobranza.config import Settings, masked_uri
from cobranza.errors import CobranzaError, first_line
from cobranza.lake import Lake

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_TRACKING_TELEMETRY_DISABLED", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow
from mlflow.entities import ViewType
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from sqlalchemy.exc import SQLAlchemyError  # MLflow's SQL store raises these

CHAMPION = "champion"
CHALLENGER = "challenger"
# The experiment tag MLflow's UI reads to open an experiment in its classic machine-learning view
# (runs, metrics, models) rather than the GenAI one (traces, evaluations): the UI's experiment
# kinds, `custom_model_development` labelled "Machine learning" (mlflow/server/js in 3.x).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MACHINE_LEARNING_KIND = "custom_model_development"
# What the pyfunc needs at inference; pinned from the installed versions (no inference by MLflow).
# The wrapped model's classes live in the `cobranza` package, which must be importable too.
RUNTIME_PACKAGES = ("mlflow", "lightgbm", "scikit-learn", "scipy", "numpy", "pandas", "cloudpickle")


log = logging.getLogger(__name__)
# MLflow's SQL store logs every database error with its SQLAlchemy traceback (and retries with the
# statement text) at ERROR / WARNING on its own stderr handler; the error itself is raised and
# becomes one line of ours, so these records are kept at debug level only.
_STORE_LOGGERS = (
    "mlflow.store.db.utils",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
)


class _StoreNoiseToDebug(logging.Filter):
    """Re-log MLflow's database errors and any MLflow record with a traceback at debug level."""

    def filter(self, record: logging.LogRecord) -> bool:
        noisy = record.name.startswith("mlflow.store.db") or record.name in _STORE_LOGGERS
        if (noisy or record.exc_info) and record.levelno < logging.CRITICAL:
            log.debug("%s: %s", record.name, record.getMessage(), exc_info=record.exc_info)
            return False
        return True


_NOISE_FILTER = _StoreNoiseToDebug()


def quiet_logs() -> None:
    for name in ("mlflow", "alembic", "optuna", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # on the loggers that emit the records, and on MLflow's handler (shared by its loggers)
    for name in _STORE_LOGGERS:
        logger = logging.getLogger(name)
        if _NOISE_FILTER not in logger.filters:
            logger.addFilter(_NOISE_FILTER)
    for handler in logging.getLogger("mlflow").handlers:
        if _NOISE_FILTER not in handler.filters:
            handler.addFilter(_NOISE_FILTER)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """MLflow's advisory warnings and printed notices (registered model...) stay off the terminal.

    Errors still raise; the notices are kept in the log at debug level.
    """
    buffer = io.StringIO()
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    mlflow_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(buffer):
            warnings.simplefilter("ignore")
            yield
    finally:
        mlflow_logger.setLevel(level)
        if buffer.getvalue():
            logging.getLogger(__name__).debug("mlflow: %s", buffer.getvalue().strip())


STORE_ERRORS = (mlflow.exceptions.MlflowException, OSError, SQLAlchemyError)


class TrackingError(CobranzaError):
    """The MLflow store cannot be opened or written (bad URI, locked or corrupt database...)."""


def client(settings: Settings) -> MlflowClient:
    """A client on the lake's store, with the global URIs pointed there too (for `models:/`)."""
    quiet_logs()
    uri = settings.tracking_uri
    try:
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:///file:"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    except STORE_ERRORS as exc:
        raise TrackingError(
            f"the MLflow store {masked_uri(uri)} cannot be opened: {first_line(exc)}"
        ) from None


# ---- a relocatable lake -------------------------------------------------------------------------
ARTIFACTS_SUFFIX = ("ml_metadata", "artifacts")


def artifacts_dir(settings: Settings) -> Path:
    """This lake's MLflow artifact root (not created)."""
    return Path(settings.lake).resolve().joinpath(*ARTIFACTS_SUFFIX)


def _local_path(uri: str) -> Path | None:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None


def _same_path(a: Path, b: Path) -> bool:
    return os.path.normpath(a.resolve()) == os.path.normpath(b.resolve())


def _inside_artifacts(path: Path) -> tuple[Path, Path] | None:
    """(artifact root, relative part) when `path` lies in some lake's ml_metadata/artifacts."""
    parts = path.parts
    for i in range(len(parts) - 2, -1, -1):  # the last occurrence: the lake's own
        if parts[i : i + 2] == ARTIFACTS_SUFFIX:
            return Path(*parts[: i + 2]), Path(*parts[i + 2 :])
    return None


def lake_artifact_uri(settings: Settings, uri: str) -> str:
    """`uri` read from this lake: a local artifact URI into another lake's `ml_metadata/artifacts/`
    (the lake was moved or copied) becomes the same relative path under this lake when that path
    exists here; anything else (this lake's own, a remote store, absent in both) is returned as is.
    """
    path = _local_path(uri)
    found = _inside_artifacts(path) if path is not None else None
    if found is None:
        return uri
    root, rel = found
    here = artifacts_dir(settings)
    if _same_path(root, here):
        return uri
    candidate = here / rel
    return candidate.as_uri() if candidate.exists() else uri


def _is_lake_location(location: str | None, here: Path) -> bool:
    path = _local_path(location or "")
    return path is not None and _same_path(path, here)


def _lake_experiment(mlflow_client: MlflowClient, name: str, here: Path) -> Any:
    """The experiment this lake's trainings log to: `name` when its artifacts are in this lake,
    else (the lake was moved or copied) `name@<hash>` whose artifact_location is this lake's."""

    def create(exp_name: str, tags: dict[str, str] | None = None) -> Any | None:
        error = None
        try:
            mlflow_client.create_experiment(exp_name, artifact_location=here.as_uri(), tags=tags)
        except mlflow.exceptions.MlflowException as exc:
            error = exc  # a race with another process, or the name is taken: look again
        exp = mlflow_client.get_experiment_by_name(exp_name)
        if exp is None and error is not None:
            raise error  # not a race: a real failure
        return exp if exp is not None and _is_lake_location(exp.artifact_location, here) else None

    base = mlflow_client.get_experiment_by_name(name)
    if base is None:
        exp = create(name)
        if exp is None:
            raise TrackingError(f"the MLflow experiment {name!r} cannot be created")
        return exp
    if _is_lake_location(base.artifact_location, here):
        return base
    for exp in mlflow_client.search_experiments(view_type=ViewType.ALL, max_results=1000):
        if exp.name.startswith(f"{name}@") and _is_lake_location(exp.artifact_location, here):
            if exp.lifecycle_stage == "deleted":
                mlflow_client.restore_experiment(exp.experiment_id)
            return mlflow_client.get_experiment(exp.experiment_id)
    digest = hashlib.sha256(str(here).encode()).hexdigest()[:8]
    tags = {
        "cobranza.base_experiment": name,
        "cobranza.base_artifact_location": str(base.artifact_location),
        "cobranza.reason": "the lake was moved or copied: the base experiment's artifacts are "
        "outside it",
    }
    for n in range(1, 100):
        exp = create(f"{name}@{digest}" + ("" if n == 1 else f"-{n}"), tags)
        if exp is not None:
            log.info(
                "experiment %s keeps its artifacts at %s; this lake's runs go to %s",
                name,
                base.artifact_location,
                exp.name,
            )
            return exp
    raise TrackingError(f"no MLflow experiment for this lake's artifacts ({here}) can be created")


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the lake's store and at an experiment whose artifacts are in this lake,
    tagged as a classic machine-learning experiment (`EXPERIMENT_KIND_TAG`)."""
    lake = Lake(settings.lake).ensure()
    mlflow_client = client(settings)
    mlflow.autolog(disable=True)
    here = lake.metadata_dir / "artifacts"
    try:
        experiment = _lake_experiment(mlflow_client, settings.model_name, here)
        if experiment.tags.get(EXPERIMENT_KIND_TAG) != MACHINE_LEARNING_KIND:
            mlflow_client.set_experiment_tag(
                experiment.experiment_id, EXPERIMENT_KIND_TAG, MACHINE_LEARNING_KIND
            )
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
    except STORE_ERRORS as exc:
        raise TrackingError(
            f"the MLflow store {masked_uri(settings.tracking_uri)} cannot be used: "
            f"{first_line(exc)}"
        ) from None
    return mlflow_client


def download_run_artifact(
    settings: Settings, mlflow_client: MlflowClient, run_id: str, path: str
) -> str:
    """A local copy of one artifact of a run, read from this lake when the lake was moved."""
    root = lake_artifact_uri(settings, mlflow_client.get_run(run_id).info.artifact_uri)
    return mlflow.artifacts.download_artifacts(artifact_uri=f"{root.rstrip('/')}/{path}")


# ---- training lock --------------------------------------------------------------------------
def training_lock_path(settings: Settings, token: str) -> Path:
    return Path(settings.lake).resolve() / "ml_metadata" / "training" / f"{token}.lock"


class TrainingLock:
    """Held (flock) by a training process for its whole life; see the module docstring."""

    def __init__(self, settings: Settings):
        self.token = uuid.uuid4().hex
        self.keep = False  # set when the outcome could not be recorded on the version
        self.path = training_lock_path(settings, self.token)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self, remove: bool = True) -> None:
        """Unlock; keep the file (`remove=False`) when the version could not be tagged with the
        outcome, so that listings tell it was interrupted."""
        if self._fd is None:
            return
        if remove:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def training_alive(settings: Settings, token: str | None) -> bool | None:
    """True while the training that holds `token` runs, False when it died, None when unknown."""
    if not token or "/" in token:
        return None
    path = training_lock_path(settings, token)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # finished (the file is removed), or another lake's training
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)
    return False


def pip_requirements() -> list[str]:
    out = []
    for name in RUNTIME_PACKAGES:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


class SelfCurePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc over a fitted SelfCureModel: predict returns calibrated P(self-cure) without
    management; the roll model and the naive model travel with it for scoring and impact.

    The DataFrame type hint tells MLflow not to infer a schema from hints (the signature logged
    with the model is explicit).
    """

    def __init__(self, model: Any, roll: Any = None, naive: Any = None):
        self.model = model
        self.roll = roll  # ml.causal.RollModel: the roll with and without management
        self.naive = naive  # the self-cure model that ignores the treatment, for comparison

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = pd.DataFrame(model_input)
        return self.model.predict_proba(frame)[:, 1].astype(np.float64)


def model_signature(features: list[str], categorical: list[str]) -> Any:
    """Explicit signature: numbers as optional doubles (integers upcast safely, nulls allowed),
    categories as optional strings; the output is the probability of self-cure."""
    inputs = Schema(
        [
            ColSpec("string" if name in categorical else "double", name, required=False)
            for name in features
        ]
    )
    outputs = Schema([ColSpec("double", "p_self_cure")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(X: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """A few rows in the signature's types (doubles and strings)."""
    out = X.copy()
    for name in out.columns:
        if name in categorical:
            out[name] = out[name].astype(object).where(out[name].notna(), None)
        else:
            out[name] = pd.to_numeric(out[name], errors="coerce").astype(np.float64)
    return out


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
