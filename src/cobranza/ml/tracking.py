"""MLflow wiring (store inside the lake, quiet, no autologging), the pyfunc wrapper, and the
`ml_metadata` Parquet mirror that the DuckDB catalog exposes to BI.

MLflow's tracking store is SQLite at `<lake>/ml_metadata/mlflow.db` unless `mlflow_tracking_uri`
says otherwise; artifacts go to `<lake>/ml_metadata/artifacts`. The mirror tables are folders of
one Parquet file per run or event under `<lake>/ml_metadata/<table>/`, each written to a temporary
name first and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cobranza.errors import CobranzaError
from cobranza.lake import Lake

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_TRACKING_TELEMETRY_DISABLED", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError  # MLflow's SQL store raises these

CHAMPION = "champion"
CHALLENGER = "challenger"
# What the pyfunc needs at inference; pinned from the installed versions (no inference by MLflow).
# The wrapped model's classes live in the `cobranza` package, which must be importable too.
RUNTIME_PACKAGES = ("mlflow", "lightgbm", "scikit-learn", "scipy", "numpy", "pandas", "cloudpickle")


def quiet_logs() -> None:
    for name in ("mlflow", "alembic", "optuna", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.WARNING)


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


def client(settings: Any) -> MlflowClient:
    """A client on the lake's store, with the global URIs pointed there too (for `models:/`)."""
    quiet_logs()
    uri = settings.tracking_uri
    try:
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    except STORE_ERRORS as exc:
        raise TrackingError(f"the MLflow store {uri} cannot be opened: {exc}") from None


def configure(settings: Any) -> MlflowClient:
    """Point MLflow at the lake's store, create the experiment with its artifacts in the lake."""
    lake = Lake(settings.lake).ensure()
    mlflow_client = client(settings)
    mlflow.autolog(disable=True)
    try:
        if mlflow_client.get_experiment_by_name(settings.model_name) is None:
            location = (lake.metadata_dir / "artifacts").as_uri()
            try:
                mlflow_client.create_experiment(settings.model_name, artifact_location=location)
            except mlflow.exceptions.MlflowException:
                if mlflow_client.get_experiment_by_name(settings.model_name) is None:
                    raise  # not a race with another process: a real failure
        mlflow.set_experiment(settings.model_name)
    except STORE_ERRORS as exc:
        raise TrackingError(
            f"the MLflow store {settings.tracking_uri} cannot be used: {exc}"
        ) from None
    return mlflow_client


def pip_requirements() -> list[str]:
    out = []
    for name in RUNTIME_PACKAGES:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


class SelfCurePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc over a fitted SelfCureModel: predict returns calibrated P(self-cure).

    The DataFrame type hint tells MLflow not to infer a schema from hints (the signature logged
    with the model is explicit).
    """

    def __init__(self, model: Any):
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = pd.DataFrame(model_input)
        return self.model.predict_proba(frame)[:, 1].astype(np.float64)


def model_signature(features: list[str], categorical: list[str]) -> Any:
    """Explicit signature: numbers as optional doubles (integers upcast safely, nulls allowed),
    categories as optional strings; the output is the probability of self-cure."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

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
