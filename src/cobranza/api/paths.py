"""Server paths as the API shows them: relative to the lake or to the extract root they lie in.

Job params, results, errors and log lines, and error messages, name files of the server (the raw
version's quality report, a model's report, the extract folder). Where they lie is the server's
business: responses show `<lake>/raw/versions/...` and `<extracts>/2026-01` (with several extract
roots, `<extracts:2>/...` for the second of `COBRANZA_API_EXTRACT_ROOTS`). The absolute paths stay
in the control database and the server's own logs. A `file://` URI of such a path is shown the
same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LAKE = "<lake>"
EXTRACTS = "<extracts>"
_START = r"(?<![\w.-])"  # a path starts here, not inside a name (after a URI's slashes too)
# what may follow a whole path: its next part, the end, a delimiter, or a sentence's full stop
_END = r"(?=$|[/\s\"'`,;:)\]}]|\.(?:\s|$))"


def _spellings(path: Path) -> list[str]:
    """The ways a path may be written in output: as resolved and as made absolute (symlinks)."""
    out = {str(path.absolute()), str(path.resolve())}
    return [p.rstrip("/") for p in out if p.rstrip("/")]


class PathMasker:
    """Replaces the lake's and the extract roots' absolute paths by their short names."""

    def __init__(self, lake: str | Path, extract_roots: Iterable[Path] | None = None):
        names: dict[str, str] = {s: LAKE for s in _spellings(Path(lake))}
        roots = list(extract_roots or ())
        for i, root in enumerate(roots, start=1):
            name = EXTRACTS if len(roots) == 1 else f"<extracts:{i}>"
            for spelling in _spellings(Path(root)):
                names.setdefault(spelling, name)
        self.names = names
        # longest first, so a root inside another (an extract root in the lake) keeps its name;
        # a path only when whole: /srv/lake is not the start of /srv/lake2
        alternatives = "|".join(re.escape(p) for p in sorted(names, key=len, reverse=True))
        self._pattern = re.compile(f"{_START}(?:file://)?({alternatives}){_END}")

    def text(self, value: str) -> str:
        return self._pattern.sub(lambda m: self.names[m.group(1)], value)

    def value(self, value: Any) -> Any:
        """`text` over every string (keys too) of a JSON-like value."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
