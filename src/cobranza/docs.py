"""Generated documentation: the contract (from `contract.py`) and the features (from the registry).

Docs generated from code cannot drift from it; a test regenerates them and compares with the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cobranza import contract


def contract_markdown() -> str:
    lines = [
        f"# Raw extract contract, version {contract.CONTRACT_VERSION}",
        "",
        "Generated from `src/cobranza/contract.py` by `cobranza docs`; do not edit by hand. The prose",
        "(target definition, bad-input rules) is in `../shared/contract/raw-extract.md`.",
        "",
        "Dialects: "
        + ", ".join(
            f"`{d.name}` (delimiter `{d.delimiter}`, {d.encoding}, decimal `{d.decimal}`, dates `{d.date_format}`)"
            for d in contract.DIALECTS.values()
        )
        + ".",
        "",
        "Values: surrounding spaces are trimmed and an empty cell is a missing value. Allowed values",
        "are matched exactly (upper case). Dates and timestamps carry a four-digit year from",
        f"{contract.YEAR_MIN} to {contract.YEAR_MAX}. An integer is digits with an optional leading "
        f"`-` (at most {contract.MAX_INTEGER_DIGITS} digits);",
        "a decimal is digits with an optional leading `-` and at most one decimal separator of the",
        "dialect followed by digits: no exponent, no `+`, no thousands separator.",
        "",
        *_version_rules(),
    ]
    for spec in contract.FILES:
        tags = [f"version {spec.since}"] if spec.since > 1 else []
        tags += ["contains personal data"] if spec.personal else []
        lines += [
            f"## {spec.filename}" + (f" ({', '.join(tags)})" if tags else ""),
            "",
        ]
        lines += [f"Key: `{', '.join(spec.key)}`.", ""]
        lines += [
            "| column | type | required | allowed / range | references | notes |",
            "|---|---|---|---|---|---|",
        ]
        for c in spec.columns:
            rng = ", ".join(c.allowed) if c.allowed else _range(c)
            ref = f"{c.references[0]}.{c.references[1]}" if c.references else ""
            since = f"version {c.since}" if c.since > spec.since else ""
            notes = "; ".join(
                x for x in (since, c.notes, "personal data" if c.personal else "") if x
            )
            lines.append(
                f"| {c.name} | {c.type} | {'yes' if c.required else 'no'} | {rng} | {ref} | {notes} |"
            )
        lines.append("")
    return "\n".join(lines)


def _version_rules() -> list[str]:
    """What version 2 adds, and how the ingestion and the transforms read its rules."""
    from cobranza.ingest.assignments import NOT_EARLY, V1_WARNING

    a = contract.COLLECTION_ASSIGNMENTS
    versions = " or ".join(str(v) for v in contract.CONTRACT_VERSIONS)
    return [
        "## Versions",
        "",
        f'`manifest.json` may carry `"contract_version"` ({versions}); without it, or without a',
        "manifest, the extract is version 1. Version 2 adds `collection_assignments.csv` and the",
        "`payments.reversed_ts` column, and lets any file be delivered gzip-compressed.",
        "",
        f"- **Version 1** still ingests: no `{a.csv_name}` (one in a version-1 extract is refused,",
        "  not ignored), so raw gets an empty `collection_assignments` table, every",
        "  early-delinquency row is treated as ASSIGNED and the run warns once:",
        f'  "{V1_WARNING}".',
        f"- **Version 2** without `{a.csv_name}` is refused (missing file, named).",
        "  `reversed_ts` is optional in both versions.",
        f"- **Compressed files**: any file may come as `NAME.csv{contract.GZIP_SUFFIX}`. It is",
        "  read as a stream (never decompressed to disk or whole into memory); line numbers count",
        "  the lines of its text. The manifest names the file as delivered and its sha256 covers",
        "  the delivered (compressed) bytes. `NAME.csv` and `NAME.csv.gz` both present is fatal; a",
        "  damaged or truncated gzip file is fatal, one line naming it.",
        "- **Assignments** are validated and quarantined like every file (types, allowed values,",
        "  references, keys, duplicates). A row must also match an early-delinquency row",
        f"  ({contract.EARLY_DPD_MIN} <= days_past_due <= {contract.EARLY_DPD_MAX}) of the "
        "accepted `portfolio_cuts` at the same cut;",
        f'  one that does not is quarantined with the reason "{NOT_EARLY}", column',
        f"  `{', '.join(a.key)}` and the key as the file spelled it.",
        "- **Reported** by every run (summary, `--json`, log, and `assignments` in the raw",
        "  version's `_run.json`): rows per arm; early-delinquency rows at past cuts with no",
        "  assignment (counted, treated as ASSIGNED); those at the latest cut, today's decision not",
        "  yet taken (counted apart, not as missing); and contamination: collection actions dated",
        "  in the horizon (d, d + H] of a HOLDOUT or RULE row (H = `horizon_days`), counted and",
        "  kept.",
        "- **Reversals.** A payment whose `reversed_ts` falls (by its date) on or before the end",
        "  of a horizon, d + H, does not exist for that horizon: it neither covers the amount past",
        "  due nor breaks the condition that every payment is RECURRING_DEBIT (so a reversed",
        "  branch payment beside a debit that covers the amount leaves a self-cure). The same",
        "  holds for `cure_any` and `amount_recovered`. A payment reversed after d + H counts for",
        "  that horizon; one dated on or before d is not a horizon payment, whenever it is",
        "  reversed. Features at d see a reversal only from its date on: a payment reversed",
        "  after d still counts as paid in the features at d.",
        "",
    ]


def _range(c: contract.Column) -> str:
    parts = []
    if c.minimum is not None:
        parts.append(f"{'>' if c.exclusive_minimum else '>='} {c.minimum:g}")
    if c.maximum is not None:
        parts.append(f"<= {c.maximum:g}")
    return " and ".join(parts)


def write_docs(out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    (out / "contract.md").write_text(contract_markdown(), encoding="utf-8")
    written.append(str(out / "contract.md"))
    try:
        from cobranza.transforms.features import write_features_doc
    except ImportError:
        write_features_doc = None
    if write_features_doc is not None:
        write_features_doc(out / "features.md")
        written.append(str(out / "features.md"))
    return {"written": written}
