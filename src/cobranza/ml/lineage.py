"""Lineage of the models: the gold version each one was trained on (`Lineage`, tagged on the run
and its registered version), and which gold versions the registered models need kept.

Retention keeps those versions (`lake.retention.prune` asks `training_gold`), so the data behind
any model in the registry can be read again. A registered version's gold is its `gold_version` tag;
a train killed between registering the version and tagging it leaves only its MLflow run's
`gold_version` tag and param; and `ml_metadata/model_runs` (the Parquet mirror of the training
runs) still lists the runs of a registry that was emptied or recreated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException

from cobranza.config import Settings
from cobranza.errors import first_line
from cobranza.lake import Lake, LakeError
from cobranza.lake.retention import PruneResult, TrainingGold
from cobranza.lake.retention import prune as prune_versions
from cobranza.ml.registry import list_models
from cobranza.ml.tracking import client


@dataclass
class Lineage:
    """Where the training data came from, tagged on the run and its registered version."""

    gold_version: str
    gold_run_id: str | None
    gold_inputs_sha256: str
    git_commit: str
    gold_inputs: dict[str, Any]

    @classmethod
    def of(cls, gold: dict[str, Any], commit: str | None) -> Lineage:
        """From the gold version's record and the code's git commit."""
        inputs = gold.get("inputs", {})
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode())
        return cls(
            gold_version=gold.get("version") or "",
            gold_run_id=gold.get("run_id"),
            gold_inputs_sha256=digest.hexdigest(),
            git_commit=commit or "unknown",
            gold_inputs=inputs,
        )

    def tags(self) -> dict[str, Any]:
        """The tags a registered version carries (what `lake prune` keeps gold by)."""
        return {
            "gold_version": self.gold_version,
            "gold_run_id": self.gold_run_id,
            "gold_inputs_sha256": self.gold_inputs_sha256,
            "git_commit": self.git_commit,
        }


def training_gold(settings: Settings, lake: Lake) -> TrainingGold:
    """gold version -> model versions trained on it, and the registered versions whose training
    gold cannot be told (with what to do about them).

    A registered version's gold is its `gold_version` tag; a train killed between registering the
    version and tagging it leaves only its MLflow run's `gold_version` tag and param, read next.
    Every row of `ml_metadata/model_runs` (the Parquet mirror of the training runs) counts too,
    also for versions the registry no longer knows (an emptied or recreated `mlflow.db`).
    """
    try:
        models = list_models(settings)
    except Exception as exc:
        raise LakeError(
            "cannot read the model registry, so cannot tell which gold versions trained a model; "
            f"nothing was pruned ({type(exc).__name__}: {first_line(exc, 200)})"
        ) from None
    mirror = _mirror_rows(lake)
    by_run = {r["run_id"]: r["gold_version"] for r in mirror if r.get("run_id")}
    out: dict[str, list[str]] = {}
    unknown: list[str] = []
    registered: dict[str, str] = {}  # run id -> registered version
    for m in models:
        version = str(m["version"])
        if m.get("run_id"):
            registered[m["run_id"]] = version
        gold = (
            m.get("gold_version")
            or _run_gold(settings, m.get("run_id"))
            or by_run.get(m.get("run_id"))
        )
        if gold:
            out.setdefault(gold, []).append(version)
        else:
            unknown.append(version)
    for r in mirror:  # a recreated registry numbers from 1 again: only the run id identifies
        gold = r.get("gold_version")
        if not gold:
            continue
        label = registered.get(r.get("run_id") or "") or (
            f"{r.get('model_version') or '?'} (in ml_metadata.model_runs, not in the registry)"
        )
        if label not in out.setdefault(gold, []):
            out[gold].append(label)
    warning = None
    if unknown:
        warning = (
            f"the training gold of registered model version {', '.join(unknown)} of "
            f"{settings.model_name!r} cannot be told (no gold_version tag on the version "
            "or its MLflow run, no row in ml_metadata.model_runs), so no gold version was "
            "pruned; tag the version with the gold it was trained on (MLflow "
            "`set_model_version_tag(name, version, 'gold_version', GOLD)`) or delete it "
            "from the registry, then prune again"
        )
    return TrainingGold(by_gold=out, unknown=unknown, warning=warning)


def _run_gold(settings: Settings, run_id: str | None) -> str | None:
    """The `gold_version` tag or param of a model version's MLflow run (None: no such run)."""
    if not run_id:
        return None
    try:
        run = client(settings).get_run(run_id)
    except MlflowException:
        return None  # the run was deleted: the mirror may still know
    except Exception as exc:
        raise LakeError(
            f"cannot read MLflow run {run_id}, so cannot tell which gold version it trained on; "
            f"nothing was pruned ({type(exc).__name__}: {first_line(exc, 200)})"
        ) from None
    return run.data.tags.get("gold_version") or run.data.params.get("gold_version") or None


def _mirror_rows(lake: Lake) -> list[dict[str, Any]]:
    """The rows of `ml_metadata/model_runs/*.parquet` (model_name, model_version, run_id, gold)."""
    folder = lake.metadata_dir / "model_runs"
    if not folder.is_dir():
        return []
    rows = []
    for path in sorted(folder.rglob("*.parquet")):
        if path.name.startswith("."):
            continue
        try:
            table = pq.read_table(path)
        except Exception as exc:
            raise LakeError(
                f"{path} cannot be read ({type(exc).__name__}: {first_line(exc, 200)}), "
                "so cannot tell which gold version that training run used; nothing was pruned. "
                "Restore the file or move it out of the lake"
            ) from None
        cols = [
            c
            for c in ("model_name", "model_version", "run_id", "gold_version")
            if c in table.column_names
        ]
        for row in table.select(cols).to_pylist():
            rows.append({k: (None if row.get(k) is None else str(row.get(k))) for k in cols})
    return rows


def prune(settings: Settings, keep: int = 3, dry_run: bool = False) -> PruneResult:
    """`cobranza lake prune`: free old raw, silver and gold versions, keeping the gold behind every
    registered model (and its lineage) besides what `lake.retention.prune` always keeps."""
    lake = Lake(settings.lake).ensure()  # completes a transaction a dead process left decided
    return prune_versions(lake, lambda: training_gold(settings, lake), keep=keep, dry_run=dry_run)
