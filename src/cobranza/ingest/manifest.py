"""The optional `manifest.json` of an extract: as_of date, and rows and sha256 per file.

When present it is binding: a file whose hash or row count differs, or that it does not list,
fails the run (an incomplete or altered extract is never ingested).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cobranza.contract import FILES, MANIFEST
from cobranza.ingest.reader import IngestError


@dataclass(frozen=True)
class Manifest:
    as_of: date | None
    files: dict[str, dict]  # file name -> {"rows": int, "sha256": str}

    def entry(self, filename: str) -> dict:
        try:
            return self.files[filename]
        except KeyError:
            raise IngestError(
                f"{filename}: not listed in {MANIFEST}; the manifest must list every contract file"
            ) from None

    def check_hash(self, filename: str, sha256: str) -> None:
        expected = str(self.entry(filename).get("sha256", "")).lower()
        if expected and expected != sha256:
            raise IngestError(
                f"{filename}: sha256 {sha256[:12]}… differs from {MANIFEST} "
                f"({expected[:12]}…): the file is incomplete or was altered"
            )

    def check_rows(self, filename: str, rows: int) -> None:
        expected = self.entry(filename).get("rows")
        if expected is not None and int(expected) != rows:
            raise IngestError(
                f"{filename}: {rows} data rows read but {MANIFEST} says {int(expected)}: "
                "the file is incomplete or was altered"
            )


def load_manifest(extract_dir: Path) -> Manifest | None:
    path = extract_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data.get("files", {})
        if not isinstance(files, dict):
            raise ValueError("'files' must be an object")
        as_of = date.fromisoformat(data["as_of"]) if data.get("as_of") else None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise IngestError(f"{MANIFEST}: cannot be read ({exc})") from None
    manifest = Manifest(as_of=as_of, files=files)
    for spec in FILES:
        manifest.entry(spec.filename)
    return manifest
