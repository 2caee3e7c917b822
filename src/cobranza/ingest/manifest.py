"""The optional `manifest.json` of an extract: contract version, as_of date, rows and sha256 per file.

When present it is binding: a file whose hash or row count differs, or that it does not list,
fails the run (an incomplete or altered extract is never ingested). Files are listed by the name
they were delivered under (`NAME.csv` or `NAME.csv.gz`), and the hash covers the delivered bytes.
Every entry is checked for shape before any file is read: an entry without a usable count or
hash would silently skip the very check the manifest exists for. Without `contract_version` (or
without a manifest) the extract is version 1.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

from cobranza.contract import CONTRACT_VERSIONS, GZIP_SUFFIX, MANIFEST
from cobranza.ingest.errors import IngestError
from cobranza.ingest.source import ExtractFolder, open_raw

DEFAULT_VERSION = 1  # an extract that does not say otherwise


@dataclass(frozen=True)
class Manifest:
    as_of: date | None
    files: dict[str, dict]  # file name as delivered -> {"rows": int, "sha256": str}
    contract_version: int = DEFAULT_VERSION

    def entry(self, filename: str) -> dict:
        try:
            return self.files[filename]
        except KeyError:
            other = (
                filename.removesuffix(GZIP_SUFFIX)
                if filename.endswith(GZIP_SUFFIX)
                else filename + GZIP_SUFFIX
            )
            hint = f" (it lists {other}: name the file as delivered)" if other in self.files else ""
            raise IngestError(
                f"{filename}: not listed in {MANIFEST}{hint}; the manifest must list every "
                "contract file"
            ) from None

    def check_entries(self, filenames: list[str]) -> None:
        """Every delivered file listed, each entry with a usable count and hash; else fatal."""
        for name in filenames:
            _check_entry(name, self.entry(name))

    def check_hash(self, filename: str, sha256: str) -> None:
        expected = self.entry(filename)["sha256"].lower()
        if expected != sha256:
            raise IngestError(
                f"{filename}: sha256 {sha256[:12]}… differs from {MANIFEST} "
                f"({expected[:12]}…): the file is incomplete or was altered"
            )

    def check_rows(self, filename: str, rows: int) -> None:
        expected = self.entry(filename)["rows"]
        if expected != rows:
            raise IngestError(
                f"{filename}: {rows} data rows read but {MANIFEST} says {expected}: "
                "the file is incomplete or was altered"
            )


_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _check_entry(filename: str, entry: object) -> None:
    """Each listed file needs an integer `rows` >= 0 and a 64-hex `sha256`; else fatal."""
    where = f"{MANIFEST}: the entry of {filename}"
    if not isinstance(entry, dict):
        raise IngestError(f"{where} must be an object with rows and sha256 (got {_kind(entry)})")
    rows = entry.get("rows")
    if "rows" not in entry:
        raise IngestError(f"{where} has no rows")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise IngestError(f"{where}: rows must be an integer >= 0 (got {_kind(rows)})")
    if "sha256" not in entry:
        raise IngestError(f"{where} has no sha256")
    sha = entry.get("sha256")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise IngestError(f"{where}: sha256 must be 64 hexadecimal digits (got {_kind(sha)})")


def _kind(value: object) -> str:
    """What a manifest value is, for a message: its JSON type, and small scalars in full."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"a string of {len(value)} characters" if value else "an empty string"
    return "an array" if isinstance(value, list) else "an object"


MAX_MANIFEST_BYTES = 16 << 20  # a manifest lists ten files: anything near this is not one


def load_manifest(folder: ExtractFolder) -> Manifest | None:
    path = folder.file(MANIFEST)
    if path is None:
        return None
    try:
        with open_raw(path) as fh:
            data = json.loads(fh.read(MAX_MANIFEST_BYTES).decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the top level must be an object")
        files = data.get("files", {})
        if not isinstance(files, dict):
            raise ValueError("'files' must be an object")
        as_of = date.fromisoformat(data["as_of"]) if data.get("as_of") else None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise IngestError(f"{MANIFEST}: cannot be read ({exc})") from None
    except OSError as exc:
        raise IngestError(f"{MANIFEST}: cannot be read ({exc.strerror or exc})") from None
    version = data.get("contract_version", DEFAULT_VERSION)
    if type(version) is not int or version not in CONTRACT_VERSIONS:
        allowed = " or ".join(str(v) for v in CONTRACT_VERSIONS)
        raise IngestError(f"{MANIFEST}: contract_version must be {allowed} (got {_kind(version)})")
    return Manifest(as_of=as_of, files=files, contract_version=version)
