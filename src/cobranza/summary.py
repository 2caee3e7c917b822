"""What a stage returns: a typed result with one JSON form, for `--json`, the API's job results and
the pipeline's summary alike.

A stage's result is a dataclass deriving from `Summary`. `to_json()` gives its fields in order as
JSON keys (nested summaries as objects); a field marked `FLAT` is a nested summary whose keys are
written into its parent's (left out when it is None), a field marked `OMIT_NONE` is left out when
it is None, and a field marked `EXTRA` holds keys beyond the declared ones, written as they are.
`sections()` gives the short tables people read instead of the flat summary, when a stage has them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# heading, column names (None: no header row), rows of text
Section = tuple[str, list[str] | None, list[tuple[str, ...]]]

FLAT = {"json": "flat"}
OMIT_NONE = {"json": "omit_none"}
EXTRA = {"json": "extra"}


@dataclass
class Summary:
    """Base of every stage's result."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            how = f.metadata.get("json")
            if how == "extra":
                out.update(value or {})
            elif how == "flat":
                if value is not None:
                    out.update(value.to_json())
            elif how == "omit_none" and value is None:
                continue
            else:
                out[f.name] = jsonable(value)
        return out

    def sections(self) -> list[Section] | None:
        """Short titled tables for people; None: the flat table of `to_json()` is shown."""
        return None


def jsonable(value: Any) -> Any:
    """A field's value in the JSON form: summaries as objects, containers element by element."""
    if isinstance(value, Summary):
        return value.to_json()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
