"""Results of the commands that are not stages (`cobranza models`, `cobranza quarantine`), typed
like a stage's: one JSON form for `--json`, short tables for people (`Summary.sections`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cobranza.summary import Section, Summary

if TYPE_CHECKING:
    from cobranza.ingest.quality import QualityReport


def number(value: Any, digits: int = 3) -> str:
    """A figure for a table cell: rounded, or empty when missing."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


@dataclass
class ModelList(Summary):
    """The registered model versions, oldest first (`cobranza.ml.registry.list_models`)."""

    models: list[dict[str, Any]]

    def sections(self) -> list[Section]:
        if not self.models:
            return [("no model registered yet; run `cobranza train`", None, [])]
        rows = []
        notes = []
        for m in self.models:
            gate = {True: "passed", False: "failed", None: ""}[m.get("gate_passed")]
            rows.append(
                (
                    m["version"],
                    ", ".join(m.get("aliases") or []),
                    str(m.get("created_at") or "")[:16].replace("T", " "),
                    m.get("training_status") or "",
                    gate,
                    number(m.get("oot_auc")),
                    number(m.get("oracle_oot_auc")),
                    number(m.get("oot_ece")),
                    number(m.get("psi")),
                    m.get("gold_version") or "",
                )
            )
            for key in ("gate_reason", "training_error", "promoted_reason"):
                if m.get(key):
                    who = f" by {m['promoted_by']}" if key == "promoted_reason" else ""
                    notes.append((m["version"], key.replace("_", " ") + who, str(m[key])))
        columns = [
            "version",
            "aliases",
            "created (UTC)",
            "training",
            "gate",
            "OOT AUC",
            "oracle AUC",
            "OOT ECE",
            "PSI",
            "gold",
        ]
        out: list[Section] = [("registered versions", columns, rows)]
        if notes:
            out.append(("notes", ["version", "what", "text"], notes))
        return out


@dataclass
class QuarantineView(Summary):
    """An ingest run's quarantine by file, column and reason (`cobranza.ingest.quality`)."""

    report: QualityReport

    def to_json(self) -> dict[str, Any]:
        return self.report.to_json()

    def sections(self) -> list[Section]:
        r = self.report
        heading = (
            f"raw version {r.raw_version} (as of {r.as_of}): "
            f"{r.rows_quarantined:,} row(s) quarantined"
        )
        if not r.groups:
            return [(heading + "; nothing to show", None, [])]
        rows = [
            (
                g.file,
                g.column + (" (personal)" if g.personal else ""),
                g.reason,
                f"{g.rows:,}",
                ", ".join(str(n) for n in g.first_lines),
            )
            for g in r.groups
        ]
        return [(heading, ["file", "column", "reason", "rows", "first lines"], rows)]
