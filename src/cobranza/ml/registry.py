"""The model registry: the promotion gate, manual promotion, the list of versions, the champion.

The alias `champion` is what scoring uses. A new version takes it only when it passes the gate
(`ml/gate.py`, settings.gate): compared with the champion on the same out-of-time rows, a real
gain or non-inferiority within the stated margins (AUC and net value, with their intervals);
out-of-time ECE at most `max_ece`, score PSI (train -> OOT) at most `max_psi`; the first version,
with no champion to compare, needs only ECE and PSI. A version that fails stays registered with
the alias `challenger` and tags saying why (`gate_reason`, `gate_verdict` and the evidence).

ECE and sample size: on a small out-of-time sample ECE is mostly sampling noise (on the default
20k-client simulation, ~830 OOT rows, the simulator's true probabilities themselves show an ECE
of 0.028). So when the run reports `oot_ece_noise` (the 95th percentile of the ECE a perfectly
calibrated model would show on the same rows, see `metrics.ece_noise`), the ECE limit is
max(max_ece, oot_ece_noise): the gate refuses miscalibration it can measure, not noise. On large
samples oot_ece_noise is far below max_ece and the rule is plain `ECE <= max_ece`. Every registration and promotion is also an event row in
`ml_metadata.registry_events`.

A training registers its version with its lineage in the same write (`gold_version`, ...,
`training_status=running`), then evaluates the gate and tags the result, and moves the alias
(`champion` or `challenger`) only as its very last step, once the report, the `ml_metadata` mirror
and the catalog are written (`publish_version`, which also tags `training_status=succeeded`). A
training that fails after registering leaves its version without an alias, tagged
`training_status=failed` with `training_error` (`mark_failed`); one killed on the way stays
`running` and is listed as `interrupted` (its lock is no longer held). Such a version cannot be
promoted.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from cobranza.config import Settings
from cobranza.decision.policy import Policy
from cobranza.errors import CobranzaError, first_line
from cobranza.lake import Lake, refresh_catalog
from cobranza.lake.layout import metadata_stamp
from cobranza.ml import tracking
from cobranza.ml.gate import Comparison, GateResult, evaluate_gate
from cobranza.ml.model import SelfCureModel
from cobranza.ml.tracking import download_run_artifact, lake_artifact_uri, silenced, training_alive

log = logging.getLogger(__name__)
LISTED_TAGS = (
    "gate_passed",
    "gate_verdict",
    "gate_reason",
    "oot_auc",
    "oot_ece",
    "oot_ece_noise",
    "psi",
    "test_auc",
    "oracle_oot_auc",
    "gold_version",
    "promoted_by",
    "promoted_reason",
    "promoted_at",
    "training_status",
    "training_error",
)
PROMOTION_TAGS = ("promoted_by", "promoted_reason", "promoted_at")
# training_status of a version (tag); `interrupted` is derived by list_models, never written
RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"
INTERRUPTED_REASON = (
    "the training process stopped before it finished (killed or crashed); the version never "
    "took an alias"
)
NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class RegistryError(CobranzaError):
    """No champion, unknown version, or a registry that cannot be reached."""


@dataclass
class Champion:
    """What scoring needs: the calibrated model, where it came from, and its decision policy."""

    model: SelfCureModel
    version: str
    run_id: str
    policy: Policy
    features: list[str]
    roll: Any = None  # ml.causal.RollModel
    naive: Any = None


def _client(settings: Settings) -> MlflowClient:
    """Registry reads and alias moves need no experiment: a plain client on the store."""
    return tracking.client(settings)


def _store_error(settings: Settings, exc: BaseException) -> RegistryError:
    return RegistryError(
        f"the MLflow store {settings.tracking_uri} cannot be read or written: {first_line(exc)}"
    )


@contextlib.contextmanager
def _store(settings: Settings) -> Iterator[None]:
    """MLflow and SQLAlchemy errors of the store become one clear line (no SQL, no URL)."""
    try:
        yield
    except (MlflowException, SQLAlchemyError) as exc:
        raise _store_error(settings, exc) from None


def _champion_version(
    client: MlflowClient, name: str, alias: str = "champion"
) -> ModelVersion | None:
    """The champion's model version (or the version of `alias`); None only when there is none (a
    store that cannot be read raises: taking it for "no champion" would let any new version pass
    the gate as the first)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND_CODES:
            return None
        raise


def _aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """alias -> version of the registered model."""
    return {k: str(v) for k, v in (client.get_registered_model(name).aliases or {}).items()}


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def record_event(settings: Settings, event: dict[str, Any], refresh: bool = True) -> dict[str, Any]:
    """One row of ml_metadata.registry_events (one Parquet file per event)."""
    return _write_event(settings, event, refresh)[0]


def _write_event(
    settings: Settings, event: dict[str, Any], refresh: bool = True
) -> tuple[dict[str, Any], Path]:
    lake = Lake(settings.lake).ensure()
    row = {
        "event_id": uuid.uuid4().hex,
        "at": _now(),
        "model_name": settings.model_name,
        "version": None,
        "run_id": None,
        "event": None,
        "who": None,
        "reason": None,
        "previous_champion": None,
        "gate_passed": None,
        **event,
    }
    row = {
        k: (None if v is None else (v if isinstance(v, bool) else str(v))) for k, v in row.items()
    }
    stamp = metadata_stamp(row["at"])
    path = lake.write_metadata("registry_events", [row], f"{stamp}-{row['event_id'][:8]}")
    if refresh:
        refresh_catalog(lake)
    return row, path


def withdraw_events(paths: list[Path]) -> None:
    """Remove event files of a publication that did not happen (the views read the files)."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def register_version(
    settings: Settings, model_uri: str, lineage: dict[str, str], lock_token: str
) -> str:
    """Register the logged model as a new version, its lineage tags in the same write.

    A process killed at any point leaves either no version or one that carries `gold_version`
    (what `lake prune` keeps) and `training_status=running` (listed as interrupted once its
    training lock is free).
    """
    tags = {
        **{k: str(v) for k, v in lineage.items() if v is not None},
        "training_status": RUNNING,
        "training_lock": lock_token,
    }
    with _store(settings), silenced():
        mv = mlflow.register_model(model_uri, settings.model_name, tags=tags)
    return str(mv.version)


def gate_version(
    settings: Settings,
    version: str,
    run_id: str,
    metrics: dict[str, float],
    compare: Callable[[Champion], Comparison],
) -> GateResult:
    """Apply the gate against the current champion, compared on the same rows by
    `compare(champion)`, and tag the result and its evidence; moves no alias."""
    client = _client(settings)
    name = settings.model_name
    with _store(settings):
        current = _champion_version(client, name)
    comparison = None
    if current is not None:
        try:
            champion = load_champion(settings)
        except RegistryError as exc:
            comparison = Comparison(str(current.version), problem=f"cannot load it: {exc}")
        else:
            comparison = compare(champion)
    result = evaluate_gate(metrics, settings.gate, comparison)
    with _store(settings):
        for key in ("oot_auc", "oot_ece", "oot_ece_noise", "psi", "test_auc", "oracle_oot_auc"):
            if key in metrics and metrics[key] is not None and math.isfinite(metrics[key]):
                client.set_model_version_tag(name, version, key, repr(float(metrics[key])))
        for key, value in result.tags(settings.gate).items():
            client.set_model_version_tag(name, version, key, value)
        client.set_model_version_tag(name, version, "gate_passed", str(result.passed).lower())
        client.set_model_version_tag(name, version, "gate_reason", result.reason[:5000])
    return result


def describe_version(settings: Settings, version: str, description: str) -> None:
    """The version's description in the registry: what it is, for a person browsing MLflow."""
    with _store(settings):
        _client(settings).update_model_version(settings.model_name, version, description)


def _gate_who() -> str:
    return f"gate ({getpass.getuser()})"


def record_gate_events(
    settings: Settings, version: str, run_id: str, result: GateResult
) -> list[Path]:
    """The `registered` and `champion` / `challenger` rows of registry_events (no catalog
    refresh); returns the decision's file, to withdraw if the alias does not move after all."""
    common = {
        "version": version,
        "run_id": run_id,
        "who": _gate_who(),
        "reason": result.reason,
        "previous_champion": result.champion_version,
        "gate_passed": result.passed,
    }
    record_event(settings, {**common, "event": "registered"}, refresh=False)
    return [_write_event(settings, {**common, "event": result.alias}, refresh=False)[1]]


def publish_version(settings: Settings, version: str, result: GateResult) -> None:
    """The last step of a training: the promotion tags, then the alias, the one write that
    publishes (`champion` when the gate passed, else `challenger`), then `succeeded`.

    `succeeded` comes after the alias: a process killed between the two leaves a version that
    holds its alias and says `running`, which listings read as succeeded (the alias is the
    publication); one killed before the alias stays `running` and is listed interrupted.
    """
    client = _client(settings)
    name = settings.model_name
    with _store(settings):
        if result.passed:
            client.set_model_version_tag(name, version, "promoted_by", _gate_who())
            client.set_model_version_tag(name, version, "promoted_reason", result.reason)
            client.set_model_version_tag(name, version, "promoted_at", _now())
        settle_holder(settings, client, result.alias)
        client.set_registered_model_alias(name, result.alias, version)
        client.set_model_version_tag(name, version, "training_status", SUCCEEDED)


def settle_holder(settings: Settings, client: MlflowClient, alias: str) -> None:
    """Before an alias moves off a version still tagged `running` by a dead training: tag it
    `succeeded`. It holds the alias, so it was published, but once the alias is gone nothing
    else would tell (it would read as interrupted and could not be promoted again)."""
    name = settings.model_name
    holder = _aliases(client, name).get(alias)
    if holder is None:
        return
    tags = client.get_model_version(name, holder).tags
    if tags.get("training_status") == RUNNING and not training_alive(
        settings, tags.get("training_lock")
    ):
        client.set_model_version_tag(name, holder, "training_status", SUCCEEDED)


def holds_its_alias(settings: Settings, version: str, result: GateResult) -> bool:
    """Whether the alias of this training's outcome points at `version` (False when the store
    cannot tell): an interruption inside `publish_version` may come after the alias moved."""
    try:
        return _aliases(_client(settings), settings.model_name).get(result.alias) == str(version)
    except Exception:
        log.debug("cannot read the aliases of version %s", version, exc_info=True)
        return False


def mark_succeeded(settings: Settings, version: str) -> None:
    """Best effort `training_status=succeeded` (the alias already says it was published)."""
    try:
        _client(settings).set_model_version_tag(
            settings.model_name, version, "training_status", SUCCEEDED
        )
    except Exception:
        log.debug("cannot tag version %s succeeded", version, exc_info=True)


def mark_failed(settings: Settings, version: str, run_id: str, reason: str) -> str | None:
    """Tag a version whose training failed after registering it (best effort: the store may be
    the thing that failed). Returns None when tagged, else why it could not be."""
    name = settings.model_name
    problem = None
    try:
        client = _client(settings)
        with _store(settings):
            client.set_model_version_tag(name, version, "training_status", FAILED)
            client.set_model_version_tag(name, version, "training_error", reason[:5000])
            tags = client.get_model_version(name, version).tags
            for tag in PROMOTION_TAGS:
                if tag in tags:
                    client.delete_model_version_tag(name, version, tag)
    except Exception as exc:
        problem = first_line(exc)
        log.debug("cannot tag version %s as failed", version, exc_info=True)
    try:
        record_event(
            settings,
            {
                "version": version,
                "run_id": run_id,
                "event": "training_failed",
                "who": _gate_who(),
                "reason": reason[:2000],
            },
        )
    except Exception:
        log.debug("cannot record the training_failed event of version %s", version, exc_info=True)
    return problem


def _restore_tags(client: MlflowClient, name: str, version: str, before: dict[str, str]) -> None:
    """Best effort: the promotion tags as they were before a promotion that did not happen."""
    for tag in PROMOTION_TAGS:
        try:
            if tag in before:
                client.set_model_version_tag(name, version, tag, before[tag])
            else:
                client.delete_model_version_tag(name, version, tag)
        except Exception:
            log.debug("tag %s of version %s not restored", tag, version, exc_info=True)


def _training_state(
    settings: Settings, tags: dict[str, str], has_alias: bool = False
) -> tuple[str | None, str | None]:
    """(training_status, training_error) of a version; None for versions registered before
    trainings recorded it. A `running` version holding an alias was published (the alias is
    the last write but one, see `publish_version`)."""
    status, error = tags.get("training_status"), tags.get("training_error")
    if status == RUNNING and has_alias:
        return SUCCEEDED, error
    if status == RUNNING and training_alive(settings, tags.get("training_lock")) is False:
        return INTERRUPTED, error or INTERRUPTED_REASON
    return status, error


def promote(settings: Settings, version: str, who: str, reason: str) -> dict[str, Any]:
    """Make `version` the champion by hand; the gate is not applied, who and why are recorded.

    A version whose training did not finish (failed, interrupted, still running) is refused.
    The event row and catalog come first, the alias last: a failure leaves the champion as it was.
    """
    client = _client(settings)
    name = settings.model_name
    version = str(version).lstrip("v")
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code not in NOT_FOUND_CODES:
            raise _store_error(settings, exc) from None
        known = ", ".join(r["version"] for r in list_models(settings)) or "none"
        raise RegistryError(
            f"model {name!r} has no version {version!r} (registered versions: {known})"
        ) from None
    with _store(settings):
        has_alias = str(mv.version) in _aliases(client, name).values()
    status, error = _training_state(settings, mv.tags, has_alias)
    if status in (FAILED, INTERRUPTED, RUNNING):
        state = "is still running" if status == RUNNING else f"{status} ({error})"
        raise RegistryError(
            f"version {mv.version} cannot be promoted: its training {state}; it was never "
            "completely published. Run `cobranza train` again"
        )
    with _store(settings):
        previous = _champion_version(client, name)
        settle_holder(settings, client, "champion")
        at = _now()
        for tag, value in zip(PROMOTION_TAGS, (who, reason, at), strict=True):
            client.set_model_version_tag(name, mv.version, tag, value)
    try:
        event, path = _write_event(
            settings,
            {
                "version": mv.version,
                "run_id": mv.run_id,
                "event": "manual_promotion",
                "who": who,
                "reason": reason,
                "previous_champion": str(previous.version) if previous is not None else None,
                "gate_passed": mv.tags.get("gate_passed") == "true",
            },
        )
    except BaseException:
        _restore_tags(client, name, mv.version, mv.tags)
        raise
    try:
        with _store(settings):
            client.set_registered_model_alias(name, "champion", mv.version)
    except BaseException:
        withdraw_events([path])
        _restore_tags(client, name, mv.version, mv.tags)
        raise
    try:
        with _store(settings):
            if _aliases(client, name).get("challenger") == str(mv.version):
                client.delete_registered_model_alias(name, "challenger")
    except RegistryError:
        log.debug("challenger alias of version %s not removed", mv.version, exc_info=True)
    return {
        "model": name,
        "champion": str(mv.version),
        "previous_champion": event["previous_champion"],
        "who": who,
        "reason": reason,
        "at": at,
    }


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Registered versions, oldest first, with aliases, gate results and OOT metrics."""
    client = _client(settings)
    with _store(settings):
        versions = client.search_model_versions(f"name = '{settings.model_name}'")
        # search results do not carry aliases; the registered model has them all
        aliases = _aliases(client, settings.model_name) if versions else {}
    rows = []
    for mv in sorted(versions, key=lambda v: int(v.version)):
        row: dict[str, Any] = {
            "version": str(mv.version),
            "aliases": sorted(a for a, v in aliases.items() if v == str(mv.version)),
            "run_id": mv.run_id,
            "created_at": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(),
        }
        for tag in LISTED_TAGS:
            value = mv.tags.get(tag)
            if tag == "gate_passed":
                row[tag] = None if value is None else value == "true"
            elif tag in (
                "oot_auc",
                "oot_ece",
                "oot_ece_noise",
                "psi",
                "test_auc",
                "oracle_oot_auc",
            ):
                row[tag] = _float(value)
            else:
                row[tag] = value
        row["training_status"], row["training_error"] = _training_state(
            settings, mv.tags, bool(row["aliases"])
        )
        rows.append(row)
    return rows


def load_champion(settings: Settings) -> Champion:
    """The model behind the `champion` alias, with the policy logged by its training run.

    Artifacts are read from this lake when the stored URIs point into the lake's old place
    (a moved or copied lake, see `tracking.lake_artifact_uri`).
    """
    client = _client(settings)
    name = settings.model_name
    with _store(settings):
        mv = _champion_version(client, name)
    if mv is None:
        raise RegistryError(
            f"model {name!r} has no champion in {settings.tracking_uri}; run `cobranza train` "
            "(a version passing the gate becomes champion) or `cobranza promote VERSION`"
        )
    return _load_version(settings, client, mv, "champion")


def _load_version(
    settings: Settings, client: MlflowClient, mv: ModelVersion, alias: str
) -> Champion:
    """A registered version's model and the policy logged by its training run."""
    name = settings.model_name
    model_uri = f"models:/{name}/{mv.version}"
    with _store(settings):
        stored = client.get_model_version_download_uri(name, mv.version) or ""
    local = lake_artifact_uri(settings, stored) if stored else ""
    if local and local != stored:
        model_uri = local
    try:
        pyfunc = mlflow.pyfunc.load_model(model_uri)
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise RegistryError(
            f"{alias} v{mv.version}: its model cannot be loaded from {stored or model_uri} "
            f"(nor from this lake's ml_metadata/artifacts): {first_line(exc)}"
        ) from None
    python_model = pyfunc.unwrap_python_model()
    model = python_model.model
    try:
        path = download_run_artifact(settings, client, mv.run_id, "policy/policy.json")
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        raise RegistryError(
            f"{alias} v{mv.version} (run {mv.run_id}) has no policy/policy.json artifact: "
            f"{first_line(exc)}"
        ) from None
    with open(path, encoding="utf-8") as fh:
        policy = Policy.from_dict(json.load(fh))
    return Champion(
        model=model,
        version=str(mv.version),
        run_id=mv.run_id,
        policy=policy,
        features=list(model.feature_names_),
        roll=getattr(python_model, "roll", None),
        naive=getattr(python_model, "naive", None),
    )


def challenger_version(settings: Settings) -> str | None:
    """The version behind the `challenger` alias when it is not the champion's, else None (one
    metadata query): the version scoring routes the experiment's CHALLENGER arm to."""
    with _store(settings):
        try:
            aliases = _aliases(_client(settings), settings.model_name)
        except MlflowException as exc:
            if exc.error_code not in NOT_FOUND_CODES:
                raise
            return None  # no model registered yet
    version = aliases.get("challenger")
    return None if version is None or version == aliases.get("champion") else version


def load_challenger(settings: Settings) -> Champion | None:
    """The model behind the `challenger` alias, loaded as the champion is; None when no version
    other than the champion holds it. A training that fails the gate leaves its version there."""
    version = challenger_version(settings)
    if version is None:
        return None
    client = _client(settings)
    with _store(settings):
        mv = client.get_model_version(settings.model_name, version)
    return _load_version(settings, client, mv, "challenger")


def champion_version(settings: Settings) -> str | None:
    """The version behind the `champion` alias, or None (one metadata query, no model loading)."""
    with _store(settings):
        mv = _champion_version(_client(settings), settings.model_name)
    return None if mv is None else str(mv.version)


def champion_oot_months(settings: Settings, run_id: str) -> list[str] | None:
    """The OOT cut months logged by a model's training run (param `oot_cut_months`)."""
    try:
        run = MlflowClient(tracking_uri=settings.tracking_uri).get_run(run_id)
    except Exception:  # an unreachable store only loses the exact months, not the figures
        return None
    value = run.data.params.get("oot_cut_months")
    return [m.strip() for m in value.split(",") if m.strip()] if value else None
