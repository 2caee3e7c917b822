"""Generated documentation: the contract (from `contract.py`) and gold's columns (from the feature
registry, the locales' reason wording and `transforms.schema`).

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
        f"Identifiers (every `*_id` column) match `{contract.ID_PATTERN}`: "
        f"{contract.ID_PATTERN_TEXT} characters.",
        "A value a spreadsheet would run as a formula (starting with `=`, `+`, `-` or `@`), a space,",
        "a quote or a control character in an identifier quarantines the row (file, line, column).",
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
            if c.pattern:
                rng = f"identifier: `{c.pattern}`"
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
        "  in the horizon (d, d + H] of a HOLDOUT or RULE row (H = `horizon_days`) and before",
        "  any later cut d' < action date that managed the obligation (ASSIGNED, or no assignment",
        "  at a past cut): an action belongs to the latest decision before it. Counted and kept.",
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


# What each column of gold that is not a feature says; a test checks every one is here.
NOT_FEATURES_DOC = {
    "obligation_id": ("string", "The obligation, as the bank names it."),
    "cut_date": ("date", "The cut d."),
    "client_key": ("string", "Keyed pseudonym of the bank's client_id."),
    "eligible": (
        "boolean",
        "A debit mandate covers d (for the latest cut also ACTIVE); ineligible rows are ASSIGN "
        "by rule.",
    ),
    "arm": (
        "string",
        "The bank's decision at d (collection_assignments.csv): ASSIGNED, HOLDOUT or RULE; a past "
        "cut the file does not cover (every row of a version-1 extract) is ASSIGNED; the latest "
        "cut, today's decision not yet taken, is null unless the file has it.",
    ),
    "assigned": ("boolean", "arm = ASSIGNED (null when arm is)."),
    "days_to_first_action": (
        "int64",
        "Days from d to the first collection action dated in (d, d + H]; null when none, and "
        "while the horizon is open.",
    ),
    "action_cost": (
        "float64",
        "Cost of the collection actions dated in (d, d + H], COP (0 when none); null while the "
        "horizon is open.",
    ),
    "self_cure_debit": (
        "int64",
        "The target: the amount past due at d covered in (d, d + H] by payments not reversed by "
        "d + H, every one of them RECURRING_DEBIT; null while the horizon is open.",
    ),
    "cure_any": (
        "int64",
        "The amount past due at d covered in (d, d + H] by payments of any channel not reversed "
        "by d + H; null while the horizon is open.",
    ),
    "roll_31_plus": (
        "int64",
        "1 when the obligation's next cut after d shows 31 or more days past due, or it was "
        "written off (closed_date, status WRITTEN_OFF) on or before that cut (the extract's next "
        "cut date when the obligation has no later cut); 0 otherwise; null at the latest cut and "
        "while the horizon is open.",
    ),
    "amount_recovered": (
        "float64",
        "Payments dated in (d, d + H] not reversed by d + H, any channel, COP; null while the "
        "horizon is open.",
    ),
    "split_hint": ("string", "Reserved for a split assignment; null."),
}


def features_markdown() -> str:
    """docs/features.md: gold's columns that are not features, then every feature."""
    from cobranza.decision import locales
    from cobranza.transforms.registry import FEATURES
    from cobranza.transforms.schema import NON_FEATURES

    lines = [
        "# Features of `gold.obligation_snapshots`",
        "",
        "Generated from `cobranza.transforms.registry.FEATURES`, the reason wording of",
        "`cobranza.decision.locales` and `cobranza.transforms.schema` (`cobranza docs`); do not",
        "edit by hand.",
        "",
        "One row per obligation and cut date d with 1-30 days past due. Every feature uses only data",
        'stamped on or before d. "n months" means the last n cut periods (period k holds the days',
        "in (cut k-1, cut k]; with month-end cuts these are calendar months, the current one",
        "included up to d). Account months count only once complete (last day on or before d).",
        "Before the first cut the periods go on back 12 months (month ends, or the first gap",
        "between cuts), so an n-month window at an early cut covers n months of history, no more.",
        "Past episodes count only when their outcome was fully observed by d. A reversed payment",
        "counts in the features at d until its `reversed_ts` (by date) is on or before d. The",
        "mandate's and the obligation's `status` describe the extract date only and are never",
        "features. There is no payroll day in the extract: `debit_success_day_12m` (mean day of",
        "month of successful debits) is the visible proxy for when funds arrive. Money (amounts,",
        "balances, inflows, outflows, costs) is summed exactly, as DECIMAL(38, 6) cast to a double",
        "once at the end, so the same silver gives the same gold bit for bit, run after run.",
        "",
        '## What stays "at extract"',
        "",
        "Where the history gives an attribute, it is taken at d from the history: the installment",
        "(`installment_amount`, a card's minimum payment changes month to month) is the one last",
        "due on or before d in installments.csv. The extract gives the rest only as of its date,",
        "so past rows see today's value if the bank overwrote them (ask for their history to fix",
        "it): the client's segment, employment type, declared income and birth date, the",
        "obligation's annual rate, due day, original amount (a card's limit) and maturity date, and",
        "the installment of an obligation with none due yet by d. The point-in-time test cuts a",
        "simulated extract at a date D and rebuilds gold: every feature and `eligible` at cuts",
        "on or before D are identical; these attributes are kept as delivered in the cut extract,",
        "since no file says what they were at D.",
        "",
        "## Columns that are not features",
        "",
        "The treatment (the decision taken at d and the actions that followed) and every label as",
        "it actually happened under the recorded arm: all of them at or after d, so never features",
        "(`transforms.schema.NON_FEATURES`). H is `horizon_days` (30 by default); the horizon is",
        "open while d + H is later than the extract's as_of.",
        "",
        "| column | type | what it says |",
        "|---|---|---|",
        *(
            f"| `{name}` | {NOT_FEATURES_DOC[name][0]} | {NOT_FEATURES_DOC[name][1]} |"
            for name in NON_FEATURES
        ),
        "",
        "## Features",
        "",
        "Reason texts in every language of `cobranza.decision.locales` (`reason_language`);",
        "Spanish writes numbers with Colombian separators and some category codes in words.",
        "",
    ]
    langs = locales.languages()
    heads = ["reason wording | when null"] + [f"reason ({c}) | when null ({c})" for c in langs[1:]]
    lines.append(f"| feature | type | group | window | meaning | {' | '.join(heads)} |")
    lines.append("|---|---|---|---|---|" + "---|---|" * len(langs))
    for f in FEATURES:
        kind = "categorical" if f.categorical else f.dtype
        meaning = f.meaning.replace("|", "/")
        words = []
        for lang in langs:
            reason, missing = f.wording(lang)
            words += [reason, missing or f"{f.name}: no data"]
        lines.append(
            f"| `{f.name}` | {kind} | {f.group} | {f.window} | {meaning} | {' | '.join(words)} |"
        )
    return "\n".join(lines) + "\n"


def write_docs(out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("contract.md", contract_markdown()), ("features.md", features_markdown())):
        (out / name).write_text(text, encoding="utf-8")
        written.append(str(out / name))
    return {"written": written}
