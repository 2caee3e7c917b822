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
    ]
    for spec in contract.FILES:
        lines += [
            f"## {spec.filename}" + (" (contains personal data)" if spec.personal else ""),
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
            notes = "; ".join(x for x in (c.notes, "personal data" if c.personal else "") if x)
            lines.append(
                f"| {c.name} | {c.type} | {'yes' if c.required else 'no'} | {rng} | {ref} | {notes} |"
            )
        lines.append("")
    return "\n".join(lines)


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
