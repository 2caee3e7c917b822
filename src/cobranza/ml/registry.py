"""The model registry: the promotion gate, manual promotion, the list of versions, the champion.

The alias `champion` is what scoring uses. A new version takes it only when it passes the gate
(settings.gate): out-of-time AUC not below the champion's minus `auc_tolerance`, out-of-time ECE at
most `max_ece`, score PSI (train -> OOT) at most `max_psi`; the first version, with no champion to
compare, needs only ECE and PSI. A version that fails stays registered with the alias
`challenger` and tags saying why.

ECE and sample size: on a small out-of-time sample ECE is mostly sampling noise (on the default
20k-client simulation, ~830 OOT rows, the simulator's true probabilities themselves show an ECE
of 0.028). So when the run reports `oot_ece_noise` (the 95th percentile of the ECE a perfectly
calibrated model would show on the same rows, see `metrics.ece_noise`), the ECE limit is
max(max_ece, oot_ece_noise): the gate refuses miscalibration it can measure, not noise. On large
samples oot_ece_noise is far below max_ece and the rule is plain `ECE <= max_ece`. Every registration and promotion is also an event row in
`ml_metadata.registry_events`.
"""

from __future__ import annotations

import getpass
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cobranza.errors import CobranzaError
from cobranza.lake import Lake, refresh_catalog

GATE_METRICS = ("oot_auc", "oot_ece", "psi")
LISTED_TAGS = (
    "gate_passed",
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
)


class RegistryError(CobranzaError):
    """No champion, unknown version, or a registry that cannot be reached."""


@dataclass
class GateResult:
    passed: bool
    reason: str
    champion_version: str | None
    champion_oot_auc: float | None


@dataclass
class Champion:
    """What scoring needs: the calibrated model, where it came from, and its decision policy."""

    model: Any
    version: str
    run_id: str
    policy: Any
    features: list[str]


def evaluate_gate(
    candidate: dict[str, float],
    champion_oot_auc: float | None,
    gate: Any,
    champion_version: str | None = None,
) -> GateResult:
    """Pure gate rule on the candidate's `oot_auc`, `oot_ece`, `psi` (see module docstring)."""
    failures = []
    noise = candidate.get("oot_ece_noise")
    noise = noise if noise is not None and math.isfinite(noise) else None
    ece_limit = max(gate.max_ece, noise) if noise is not None else gate.max_ece
    ece_text = f"max_ece {gate.max_ece:.4f}"
    if noise is not None and noise > gate.max_ece:
        ece_text = f"{ece_limit:.4f} (sampling noise on this OOT size; max_ece {gate.max_ece:.4f})"
    for key in GATE_METRICS:
        if key not in candidate or not math.isfinite(candidate[key]):
            failures.append(f"{key} is missing")
    if not failures:
        if candidate["oot_ece"] > ece_limit:
            failures.append(f"OOT ECE {candidate['oot_ece']:.4f} > {ece_text}")
        if candidate["psi"] > gate.max_psi:
            failures.append(f"PSI {candidate['psi']:.4f} > max_psi {gate.max_psi:.4f}")
        if champion_oot_auc is not None:
            floor = champion_oot_auc - gate.auc_tolerance
            if candidate["oot_auc"] < floor:
                failures.append(
                    f"OOT AUC {candidate['oot_auc']:.4f} < champion v{champion_version} "
                    f"{champion_oot_auc:.4f} - tolerance {gate.auc_tolerance:.4f}"
                )
    if failures:
        return GateResult(False, "; ".join(failures), champion_version, champion_oot_auc)
    if champion_oot_auc is None:
        reason = (
            f"first champion: OOT ECE {candidate['oot_ece']:.4f} <= {ece_text}, "
            f"PSI {candidate['psi']:.4f} <= {gate.max_psi:.4f}"
        )
    else:
        reason = (
            f"OOT AUC {candidate['oot_auc']:.4f} >= champion v{champion_version} "
            f"{champion_oot_auc:.4f} - {gate.auc_tolerance:.4f}; ECE and PSI within limits"
        )
    return GateResult(True, reason, champion_version, champion_oot_auc)


def _client(settings: Any):
    """Registry reads and alias moves need no experiment: a plain client on the store."""
    from cobranza.ml.tracking import client

    return client(settings)


def _champion_version(client: Any, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None


def _aliases(client: Any, name: str) -> dict[str, str]:
    """alias -> version of the registered model."""
    return {k: str(v) for k, v in (client.get_registered_model(name).aliases or {}).items()}


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def record_event(settings: Any, event: dict[str, Any], refresh: bool = True) -> dict[str, Any]:
    """One row of ml_metadata.registry_events (one Parquet file per event)."""
    import uuid

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
    stamp = row["at"].replace(":", "").replace("-", "").replace("+", "_")
    lake.write_metadata("registry_events", [row], f"{stamp}-{row['event_id'][:8]}")
    if refresh:
        refresh_catalog(lake)
    return row


def register_and_gate(
    settings: Any, version: str, run_id: str, metrics: dict[str, float]
) -> GateResult:
    """Tag a freshly registered version, apply the gate, move `champion` or `challenger`."""
    client = _client(settings)
    name = settings.model_name
    current = _champion_version(client, name)
    champ_auc = _float(current.tags.get("oot_auc")) if current is not None else None
    result = evaluate_gate(
        metrics, champ_auc, settings.gate, str(current.version) if current is not None else None
    )
    for key in ("oot_auc", "oot_ece", "oot_ece_noise", "psi", "test_auc", "oracle_oot_auc"):
        if key in metrics and metrics[key] is not None and math.isfinite(metrics[key]):
            client.set_model_version_tag(name, version, key, repr(float(metrics[key])))
    client.set_model_version_tag(name, version, "gate_passed", str(result.passed).lower())
    client.set_model_version_tag(name, version, "gate_reason", result.reason)
    who = f"gate ({getpass.getuser()})"
    record_event(
        settings,
        {
            "version": version,
            "run_id": run_id,
            "event": "registered",
            "who": who,
            "reason": result.reason,
            "previous_champion": result.champion_version,
            "gate_passed": result.passed,
        },
        refresh=False,
    )
    if result.passed:
        client.set_registered_model_alias(name, "champion", version)
        client.set_model_version_tag(name, version, "promoted_by", who)
        client.set_model_version_tag(name, version, "promoted_reason", result.reason)
        client.set_model_version_tag(name, version, "promoted_at", _now())
        event = "champion"
    else:
        client.set_registered_model_alias(name, "challenger", version)
        event = "challenger"
    record_event(
        settings,
        {
            "version": version,
            "run_id": run_id,
            "event": event,
            "who": who,
            "reason": result.reason,
            "previous_champion": result.champion_version,
            "gate_passed": result.passed,
        },
    )
    return result


def promote(settings: Any, version: str, who: str, reason: str) -> dict[str, Any]:
    """Make `version` the champion by hand; the gate is not applied, who and why are recorded."""
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    name = settings.model_name
    version = str(version).lstrip("v")
    try:
        mv = client.get_model_version(name, version)
    except MlflowException:
        known = ", ".join(r["version"] for r in list_models(settings)) or "none"
        raise RegistryError(
            f"model {name!r} has no version {version!r} (registered versions: {known})"
        ) from None
    previous = _champion_version(client, name)
    client.set_registered_model_alias(name, "champion", mv.version)
    if _aliases(client, name).get("challenger") == str(mv.version):
        client.delete_registered_model_alias(name, "challenger")
    at = _now()
    client.set_model_version_tag(name, mv.version, "promoted_by", who)
    client.set_model_version_tag(name, mv.version, "promoted_reason", reason)
    client.set_model_version_tag(name, mv.version, "promoted_at", at)
    event = record_event(
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
    return {
        "model": name,
        "champion": str(mv.version),
        "previous_champion": event["previous_champion"],
        "who": who,
        "reason": reason,
        "at": at,
    }


def list_models(settings: Any) -> list[dict[str, Any]]:
    """Registered versions, oldest first, with aliases, gate results and OOT metrics."""
    client = _client(settings)
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
        rows.append(row)
    return rows


def load_champion(settings: Any) -> Champion:
    """The model behind the `champion` alias, with the policy logged by its training run."""
    import mlflow

    from cobranza.decision.policy import Policy

    client = _client(settings)
    name = settings.model_name
    mv = _champion_version(client, name)
    if mv is None:
        raise RegistryError(
            f"model {name!r} has no champion in {settings.tracking_uri}; run `cobranza train` "
            "(a version passing the gate becomes champion) or `cobranza promote VERSION`"
        )
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
    model = pyfunc.unwrap_python_model().model
    try:
        path = client.download_artifacts(mv.run_id, "policy/policy.json")
    except mlflow.exceptions.MlflowException as exc:
        raise RegistryError(
            f"champion v{mv.version} (run {mv.run_id}) has no policy/policy.json artifact: {exc}"
        ) from None
    with open(path, encoding="utf-8") as fh:
        policy = Policy.from_dict(json.load(fh))
    return Champion(
        model=model,
        version=str(mv.version),
        run_id=mv.run_id,
        policy=policy,
        features=list(model.feature_names_),
    )


def champion_version(settings: Any) -> str | None:
    """The version behind the `champion` alias, or None (one metadata query, no model loading)."""
    mv = _champion_version(_client(settings), settings.model_name)
    return None if mv is None else str(mv.version)
