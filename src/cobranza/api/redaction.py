"""Masking personal data in job output: a job's output leaves the service (responses, webhooks,
stored records), so anything shaped like an e-mail, a document or phone number or a bank client id
is masked, while ids, dates and counts stay readable.

The worker writes raw output while it runs (the service reads it only through `redact`); once it
has ended `scrub_job_files` rewrites its files masked, so nothing unmasked stays on disk.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REDACTED = "[redacted]"
# Shapes of personal data in free text (an ingest error may quote a data row). Alternatives are
# tried left to right at each position, so the `keep` shapes (lake version ids, dates) are consumed
# before a digit rule could mask part of them. Comma-grouped counts (12,104,152), decimals
# (0.8123) and short numbers match nothing and stay readable.
_PII = re.compile(
    r"(?P<keep>(?<!\w)(?:\d{8}T\d{6,}(?:-[0-9a-f]{8})?"  # version ids 20261201T080841985539-d87fc870
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)(?!\w))"  # dates, timestamps
    r"|(?P<email>(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<ident>(?<!\w)[A-Za-z]{1,3}\d{8,}(?!\w))"  # letter-prefixed ids: a bank client_id C00000000
    # digits in groups with one separator: documents 1.014.929.605, phones 328 219 8115 / 328-219-8115
    r"|(?P<grouped>(?<![\w.,])\d{1,4}(?P<sep>[. -])\d{2,7}(?:(?P=sep)\d{2,7}){0,4}(?![\w]|[.,]\d))"
    # 8+ digits, also before `,` or `.` (a CSV field, the end of a sentence); not a fraction's digits
    r"|(?P<digits>(?<!\w)(?<!\d\.)\d{8,}(?!\w))"
)
_MIN_GROUPED_DIGITS = 8


def _mask(match: re.Match) -> str:
    if match.group("keep"):
        return match.group(0)
    if match.group("grouped"):
        digits = sum(c.isdigit() for c in match.group(0))
        return REDACTED if digits >= _MIN_GROUPED_DIGITS else match.group(0)
    return REDACTED


def redact(text: str) -> str:
    """Job output leaves the service (responses, webhooks, stored records): mask anything shaped
    like an e-mail, a document or phone number or a bank client id, keep ids, dates and counts."""
    return _PII.sub(_mask, text)


def redact_value(value: Any) -> Any:
    """`redact` over every string (keys too) of a JSON-like value; numbers are left as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


SCRUBBED_MARKER = ".redacted"  # in a job's folder once its stored output holds only masked text


def scrub_job_files(jdir: Path) -> None:
    """Rewrite a finished job's stdout.json and stderr.log through `redact` (atomic replace).

    The worker writes raw output while it runs (the service reads it only through `redact`); once
    it has ended nothing unmasked stays on disk. stdout.json is re-serialised from its parsed JSON
    so that numbers (counts) stay numbers.
    """
    if not jdir.is_dir() or (jdir / SCRUBBED_MARKER).exists():
        return
    stdout = jdir / "stdout.json"
    if stdout.is_file():
        text = stdout.read_text(encoding="utf-8", errors="replace")
        parsed = parse_result(text)
        if parsed is None:
            clean = ""
        elif "unparsed_output" in parsed:
            clean = redact(text)
        else:
            clean = json.dumps(redact_value(parsed), default=str) + "\n"
        _replace(stdout, lambda out: out.write(clean.encode("utf-8")))
    stderr = jdir / "stderr.log"
    if stderr.is_file():

        def write_masked(out) -> None:
            with open(stderr, "rb") as src:
                for raw in src:
                    out.write(redact(raw.decode("utf-8", errors="replace")).encode("utf-8"))

        _replace(stderr, write_masked)
    (jdir / SCRUBBED_MARKER).touch()


def _replace(path: Path, write: Callable[[Any], None]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as out:
            write(out)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def redact_json(text: str | None) -> str | None:
    """Stored JSON through `redact_value`; the very same object back when nothing was masked."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        masked = redact(text)
        return text if masked == text else masked
    masked_value = redact_value(value)
    return text if masked_value == value else json.dumps(masked_value, default=str)


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The CLI prints one JSON document with --json; take the last one if several."""
    text = stdout.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        start = text.rfind("\n{")
        try:
            value = json.loads(text[start + 1 :] if start >= 0 else text)
        except json.JSONDecodeError:
            return {"unparsed_output": redact(text[-2000:])}
    return value if isinstance(value, dict) else {"value": value}
