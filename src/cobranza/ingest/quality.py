"""The data-quality report of an ingest run: what was quarantined, by file, column and reason.

Written with each raw version, in its folder under `_quality/` (raw is owner-only), as
`quarantine.html` for people and `quarantine.csv` for tools; read back for `cobranza quarantine`
and `GET /v1/ingest/{run}/quarantine`. Like the `bi.quarantine` view, it never holds a refused
value (it may be a name or a document number): only whether the cell had one, whether the column
is personal data in the contract, the line numbers, and the reason with e-mails and digit runs of
six or more masked (`cobranza.sql.masked`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from cobranza.contract import PERSONAL_COLUMNS
from cobranza.export import csv_bytes
from cobranza.sql import literal, masked

REPORT_DIR = "_quality"
HTML_FILE, CSV_FILE = "quarantine.html", "quarantine.csv"
SAMPLE_LINES = 5  # line numbers listed per file, column and reason
QUARANTINE_TABLE = "quarantine"


def reason_kind(column: str) -> str:
    """SQL of a reason without what is particular to one row (the lines of a duplicate key and
    how many share it), so the same problem is one group; then masked (`cobranza.sql.masked`)."""
    general = (
        f"regexp_replace(regexp_replace({column}, '\\s*\\(lines? [^)]*\\)', '', 'g'), "
        "': [0-9]+ rows share it', '')"
    )
    return masked(general)


def _personal_list() -> str:
    names = [f"{stem}.{col}" for stem, cols in PERSONAL_COLUMNS.items() for col in cols]
    return "[" + ", ".join(literal(n) for n in names) + "]::VARCHAR[]"


def _groups_sql(source: str) -> str:
    """One row per file, column and masked reason: rows, cells with a value, first lines."""
    stem = "regexp_replace(file, '\\.csv(\\.gz)?$', '')"
    return f"""
SELECT file, "column",
       coalesce(list_contains({_personal_list()}, {stem} || '.' || "column"), FALSE) AS personal,
       {reason_kind("reason")} AS reason,
       count(DISTINCT line) AS rows,
       count(*) FILTER (WHERE value IS NOT NULL AND value <> '') AS with_value,
       list(DISTINCT line ORDER BY line)[1:{SAMPLE_LINES}] AS first_lines
FROM {source}
GROUP BY ALL
ORDER BY file, rows DESC, "column", reason
"""


@dataclass
class QuarantineGroup:
    """The cells of one file and column refused for one reason."""

    file: str
    column: str  # "*" for a problem of the whole row
    personal: bool  # the column is personal data in the contract
    reason: str
    rows: int
    with_value: int  # refused cells that held a value (the value itself is never kept here)
    first_lines: list[int]


@dataclass
class QualityReport:
    """A raw version's quarantine by file, column and reason, with its files' counts."""

    raw_version: str
    as_of: str | None
    files: dict[str, dict[str, int]]  # per file: rows_read, rows_accepted, rows_quarantined...
    groups: list[QuarantineGroup] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return sum(c.get("rows_quarantined", 0) for c in self.files.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "raw_version": self.raw_version,
            "as_of": self.as_of,
            "rows_quarantined": self.rows_quarantined,
            "files": self.files,
            "groups": [g.__dict__ for g in self.groups],
        }


def groups(con: duckdb.DuckDBPyConnection, source: str) -> list[QuarantineGroup]:
    """The groups of a quarantine table (`source`: a table name or `read_parquet(...)`)."""
    rows = con.execute(_groups_sql(source)).fetchall()
    return [
        QuarantineGroup(f, c, bool(p), r, int(n), int(v), [int(x) for x in lines])
        for f, c, p, r, n, v, lines in rows
    ]


def write_report(report: QualityReport, folder: Path) -> dict[str, str]:
    """`quarantine.html` and `quarantine.csv` in `folder`; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = folder / HTML_FILE, folder / CSV_FILE
    html_path.write_text(to_html(report), encoding="utf-8")
    csv_path.write_bytes(to_csv(report))
    return {"html": str(html_path), "csv": str(csv_path)}


CSV_HEADER = (
    "raw_version",
    "file",
    "column",
    "personal_column",
    "reason",
    "rows",
    "cells_with_value",
    "first_lines",
)


def to_csv(report: QualityReport) -> bytes:
    """One line per file, column and reason (first lines separated by spaces)."""
    rows = [
        (
            report.raw_version,
            g.file,
            g.column,
            "yes" if g.personal else "no",
            g.reason,
            g.rows,
            g.with_value,
            " ".join(str(n) for n in g.first_lines),
        )
        for g in report.groups
    ]
    return csv_bytes(CSV_HEADER, rows)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:72rem}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #c8c8c8;padding:.3rem .6rem}
th{background:#eef1f5;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555}
"""


def to_html(report: QualityReport) -> str:
    """A self-contained page: the files' counts, then every group with its first lines."""
    e = html.escape
    file_rows = "".join(
        f"<tr><td>{e(name)}</td>"
        + "".join(
            f'<td class="n">{c.get(k, 0):,}</td>'
            for k in ("rows_read", "rows_accepted", "rows_quarantined", "duplicates_collapsed")
        )
        + "</tr>"
        for name, c in report.files.items()
    )
    group_rows = "".join(
        f"<tr><td>{e(g.file)}</td><td>{e(g.column)}</td>"
        f"<td>{'yes' if g.personal else 'no'}</td><td>{e(g.reason)}</td>"
        f'<td class="n">{g.rows:,}</td><td class="n">{g.with_value:,}</td>'
        f"<td>{e(', '.join(str(n) for n in g.first_lines))}</td></tr>"
        for g in report.groups
    )
    groups_part = (
        "<table><thead><tr><th>file</th><th>column</th><th>personal data</th><th>reason</th>"
        "<th>rows</th><th>cells with a value</th><th>first lines</th></tr></thead>"
        f"<tbody>{group_rows}</tbody></table>"
        if report.groups
        else "<p>Nothing was quarantined.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Quarantine of raw version {e(report.raw_version)}</title><style>{_STYLE}</style></head>
<body>
<h1>Data quality: raw version {e(report.raw_version)}</h1>
<p>Extract as of {e(report.as_of or "unknown")}: {report.rows_quarantined:,} row(s) quarantined.
Line numbers are those of the file as delivered (a header is line 1).</p>
<h2>Files</h2>
<table><thead><tr><th>file</th><th>read</th><th>accepted</th><th>quarantined</th>
<th>duplicates collapsed</th></tr></thead><tbody>{file_rows}</tbody></table>
<h2>Quarantined, by file, column and reason</h2>
{groups_part}
<p class="note">Refused values are not shown: they may be personal data. Find a line in the
delivered file, or query <code>raw.quarantine</code> (owner only) for its value.</p>
</body></html>
"""


def load_report(lake: Any, version: str | None = None) -> QualityReport:
    """The report of a raw version (default the current), from its quarantine table and record."""
    from cobranza.lake.layout import LakeError

    version = version or lake.require_version("raw")
    if version not in {v["version"] for v in lake.versions("raw")}:
        raise LakeError(f"raw version {version!r} does not exist (see `cobranza lake versions`)")
    info = lake.run_info("raw", version)
    table = lake.version_dir("raw", version) / QUARANTINE_TABLE
    if not table.is_dir():
        raise LakeError(f"raw version {version} has no quarantine table (pruned?)")
    source = f"read_parquet({literal(str(table / '*.parquet'))})"
    with duckdb.connect(":memory:") as con:
        found = groups(con, source)
    return QualityReport(version, info.get("as_of"), info.get("files") or {}, found)
