"""Hand-built tiny extracts: every file valid, so each test adds only the defect it checks."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import pytest

from cobranza.config import load_settings
from cobranza.contract import FILES, Dialect, files_for

HEADERS = {f.stem: list(f.column_names) for f in files_for(1)}
HEADERS_V2 = {f.stem: list(f.column_names) for f in FILES}

# One valid row per file and column order, standard dialect (ISO dates, '.' decimals).
BASE_ROWS: dict[str, list[list[str]]] = {
    "clients": [
        [
            "C1",
            "CC",
            "1001",
            "Ana Pérez",
            "1980-05-01",
            "F",
            "Bogotá",
            "Cundinamarca",
            "MASS",
            "SALARIED",
            "3500000.50",
            "2015-01-10",
            "ana@example.com",
            "3001234567",
        ],
        [
            "C2",
            "CE",
            "1002",
            "Luis Gómez",
            "1975-02-11",
            "M",
            "Medellín",
            "Antioquia",
            "AFFLUENT",
            "INDEPENDENT",
            "8000000",
            "2012-03-15",
            "",
            "",
        ],
        ["C3", "NIT", "1003", "", "", "", "", "", "SME", "", "", "2020-07-01", "", ""],
    ],
    "obligations": [
        [
            "O1",
            "C1",
            "CONSUMER_LOAN",
            "2023-01-15",
            "2026-01-15",
            "12000000",
            "24.5",
            "36",
            "480000",
            "15",
            "ACTIVE",
            "",
        ],
        [
            "O2",
            "C2",
            "CREDIT_CARD",
            "2022-06-01",
            "",
            "5000000",
            "32.1",
            "",
            "150000",
            "5",
            "ACTIVE",
            "",
        ],
        [
            "O3",
            "C3",
            "VEHICLE",
            "2021-03-01",
            "2026-03-01",
            "60000000",
            "14",
            "60",
            "1300000",
            "1",
            "ACTIVE",
            "",
        ],
    ],
    "debit_mandates": [
        ["M1", "O1", "A1", "SAVINGS", "OWN", "2023-01-15", "", "ACTIVE", "FULL"],
        [
            "M2",
            "O2",
            "A2",
            "CHECKING",
            "OTHER",
            "2022-06-01",
            "2024-01-01",
            "CANCELLED",
            "PARTIAL_ALLOWED",
        ],
    ],
    "installments": [
        ["O1", "1", "2023-02-15", "480000"],
        ["O1", "2", "2023-03-15", "480000"],
        ["O3", "1", "2021-04-01", "1300000"],
    ],
    "payments": [
        ["P1", "O1", "2023-02-15 08:00:00", "480000", "RECURRING_DEBIT"],
        ["P2", "O3", "2021-04-03 14:30:00", "1300000", "BRANCH"],
    ],
    "debit_attempts": [
        ["D1", "M1", "2023-02-15 06:00:00", "480000", "480000", "SUCCESS", ""],
        ["D2", "M2", "2023-02-05 06:00:00", "150000", "0", "REJECTED", "INSUFFICIENT_FUNDS"],
    ],
    "account_monthly": [
        ["A1", "2023-01-01", "1200000.5", "-20000", "900000", "3000000", "2500000", "3", "2800000"],
        ["A2", "2023-01-01", "50000", "0", "40000", "100000", "0", "1", "110000"],
    ],
    "portfolio_cuts": [
        ["2023-02-28", "O1", "0", "0", "11500000"],
        ["2023-03-31", "O1", "12", "480000", "11100000"],
        ["2023-03-31", "O2", "5", "150000", "2000000"],
    ],
    "collection_actions": [
        ["X1", "O1", "2023-04-02 10:00:00", "CALL", "CONTACTED", "8000"],
    ],
}


# Version 2: payments gain `reversed_ts` (empty here) and the assignment file arrives; both early
# delinquency rows of BASE_ROWS are at the latest cut, 2023-03-31.
BASE_ROWS_V2: dict[str, list[list[str]]] = {
    **BASE_ROWS,
    "payments": [[*r, ""] for r in BASE_ROWS["payments"]],
    "collection_assignments": [
        ["O1", "2023-03-31", "ASSIGNED", "bau-2023"],
        ["O2", "2023-03-31", "HOLDOUT", "holdout-2023"],
    ],
}


def to_dialect(value: str, column_type: str, dialect: Dialect) -> str:
    """Spell a standard-dialect value in another dialect (dates, timestamps, decimals)."""
    if not value:
        return value
    try:
        if column_type == "date" and dialect.date_format != "%Y-%m-%d":
            return date.fromisoformat(value).strftime(dialect.date_format)
        if column_type == "timestamp" and dialect.timestamp_format != "%Y-%m-%d %H:%M:%S":
            return datetime.fromisoformat(value).strftime(dialect.timestamp_format)
    except ValueError:
        return value  # a deliberately bad value stays as written
    if column_type == "decimal" and dialect.decimal != ".":
        return value.replace(".", dialect.decimal)
    return value


def render(rows: list[list[str]], dialect: Dialect, header: list[str]) -> bytes:
    def cell(v: str) -> str:
        if dialect.delimiter in v or '"' in v or "\n" in v:
            return '"' + v.replace('"', '""') + '"'
        return v

    text = "".join(dialect.delimiter.join(cell(v) for v in r) + "\n" for r in [header, *rows])
    return text.encode(dialect.encoding)


def write_extract(
    root: Path,
    dialect: Dialect | None = None,
    rows: dict[str, list[list[str]]] | None = None,
    manifest: bool = True,
    as_of: str = "2023-04-30",
    version: int = 1,
    gzipped: tuple[str, ...] = (),
) -> Path:
    """Write the files of a contract version (rows per stem default to BASE_ROWS, or BASE_ROWS_V2)
    and, optionally, the manifest; the stems in `gzipped` are delivered as NAME.csv.gz."""
    dialect = dialect or Dialect()
    root.mkdir(parents=True, exist_ok=True)
    base = BASE_ROWS_V2 if version >= 2 else BASE_ROWS
    files = {}
    for spec in files_for(version):
        data = (rows or {}).get(spec.stem, base[spec.stem])
        types = [c.type for c in spec.columns]
        spelled = [
            [to_dialect(v, types[i], dialect) if i < len(types) else v for i, v in enumerate(r)]
            for r in data
        ]
        body = render(spelled, dialect, list(spec.column_names))
        name = spec.filename
        if spec.stem in gzipped:
            body, name = gzip.compress(body, mtime=0), spec.gzip_name
        (root / name).write_bytes(body)
        files[name] = {"rows": len(data), "sha256": hashlib.sha256(body).hexdigest()}
    if manifest:
        data = {"as_of": as_of, "files": files}
        if version >= 2:
            data["contract_version"] = version
        (root / "manifest.json").write_text(json.dumps(data))
    return root


def rewrite_manifest(root: Path) -> None:
    """Recompute the manifest after a test edited a file by hand (rows = data records)."""
    data = json.loads((root / "manifest.json").read_text())
    for name, entry in data["files"].items():
        body = (root / name).read_bytes()
        entry["sha256"] = hashlib.sha256(body).hexdigest()
    (root / "manifest.json").write_text(json.dumps(data))


@pytest.fixture
def settings(tmp_path):
    return load_settings(lake=tmp_path / "lake", duckdb_memory_limit="512MB", duckdb_threads=1)


@pytest.fixture
def published(tmp_path, settings):
    """A first good ingest: its version must stay current after each failing run."""
    from cobranza.contract import STANDARD
    from cobranza.ingest import ingest_extract
    from cobranza.lake import Lake

    ingest_extract(settings, write_extract(tmp_path / "good"), STANDARD)
    return Lake(settings.lake).current_version("raw")


def fails_publishing_nothing(settings, extract, match: str, published: str, dialect=None) -> str:
    """The run fails with a message matching `match`; the previous version stays current, the
    failed run leaves no version folder and no working folder. Returns the message."""
    from cobranza.contract import STANDARD
    from cobranza.ingest import IngestError, ingest_extract
    from cobranza.lake import Lake

    with pytest.raises(IngestError, match=match) as err:
        ingest_extract(settings, extract, dialect or STANDARD)
    lake = Lake(settings.lake)
    assert lake.current_version("raw") == published
    assert [v["version"] for v in lake.versions("raw")] == [published]
    versions = list((lake.zone_dir("raw") / "versions").iterdir())
    assert [v.name for v in versions] == [published]  # the failed run left no folder
    assert not (lake.root / "_tmp").exists() or not list((lake.root / "_tmp").iterdir())
    message = str(err.value)
    assert "\n" not in message  # one line
    return message
