"""The data-quality report of an ingest run: what was quarantined, by file, column and reason.

Written with each raw version, in its folder under `_quality/` (raw is owner-only), as
`quarantine.html` for people and `quarantine.csv` for tools; read back for `cobranza quarantine`
and `GET /v1/ingest/{run}/quarantine`. Like the `bi.quarantine` view, it never holds a refused
value (it may be a name or a document number): only whether the cell had one, whether the column
is personal data in the contract, the line numbers, and the reason with e-mails and digit runs of
six or more masked (`cobranza.sql.masked`).

The HTML page is for people: in Spanish by default, or English, the language of
`reason_language` (`cobranza.labels`' languages, words as (Spanish, English) pairs like its own).
Reasons are kept in English in the data (the CSV, `raw.quarantine`, the JSON); the page words
them in its language (`reason_words`), a reason it has no words for shown as it is.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from cobranza import labels
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


def write_report(report: QualityReport, folder: Path, lang: str | None = None) -> dict[str, str]:
    """`quarantine.html` (in `lang`, default Spanish) and `quarantine.csv` in `folder`; paths."""
    folder.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = folder / HTML_FILE, folder / CSV_FILE
    html_path.write_text(to_html(report, lang), encoding="utf-8")
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


# key -> (Spanish, English), in the order of `labels.LANGUAGES`
WORDS: dict[str, tuple[str, str]] = {
    "title": ("Cuarentena de la versión raw {version}", "Quarantine of raw version {version}"),
    "heading": ("Calidad de datos: versión raw {version}", "Data quality: raw version {version}"),
    "summary": (
        "Extracto con fecha {as_of}: {rows} fila(s) en cuarentena. Los números de línea son los "
        "del archivo entregado (el encabezado es la línea 1).",
        "Extract as of {as_of}: {rows} row(s) quarantined. Line numbers are those of the file as "
        "delivered (a header is line 1).",
    ),
    "unknown": ("desconocida", "unknown"),
    "files": ("Archivos", "Files"),
    "file": ("archivo", "file"),
    "read": ("leídas", "read"),
    "accepted": ("aceptadas", "accepted"),
    "quarantined": ("en cuarentena", "quarantined"),
    "collapsed": ("duplicados unificados", "duplicates collapsed"),
    "groups": (
        "En cuarentena, por archivo, columna y motivo",
        "Quarantined, by file, column and reason",
    ),
    "column": ("columna", "column"),
    "personal": ("dato personal", "personal data"),
    "reason": ("motivo", "reason"),
    "rows": ("filas", "rows"),
    "with_value": ("celdas con valor", "cells with a value"),
    "first_lines": ("primeras líneas", "first lines"),
    "yes": ("sí", "yes"),
    "no": ("no", "no"),
    "nothing": ("No hubo nada en cuarentena.", "Nothing was quarantined."),
    "note": (
        "Los valores rechazados no se muestran: pueden ser datos personales. Busque la línea en "
        "el archivo entregado, o consulte <code>raw.quarantine</code> (solo el propietario) para "
        "ver su valor.",
        "Refused values are not shown: they may be personal data. Find a line in the delivered "
        "file, or query <code>raw.quarantine</code> (owner only) for its value.",
    ),
}

# The reasons of `ingest.rules`, `ingest.validate` and `ingest.assignments` (as `reason_kind`
# leaves them) in Spanish: (pattern of the English reason, Spanish with its groups).
_REASONS_ES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (r"missing required value", "falta un valor obligatorio"),
        (
            r"not a valid date \(expected (.+?) with a four-digit year\)",
            r"no es una fecha válida (se espera \1 con año de cuatro dígitos)",
        ),
        (r"not a valid date \(expected (.+)\)", r"no es una fecha válida (se espera \1)"),
        (
            r"not a valid timestamp \(expected (.+?) with a four-digit year\)",
            r"no es una fecha y hora válida (se espera \1 con año de cuatro dígitos)",
        ),
        (
            r"not a valid timestamp \(expected (.+)\)",
            r"no es una fecha y hora válida (se espera \1)",
        ),
        (
            r"not a valid decimal number \(decimal separator '(.)'; only digits, a leading '-' "
            r"and one separator between digits\)",
            r"no es un número decimal válido (separador decimal '\1'; solo dígitos, un '-' "
            r"inicial y un separador entre dígitos)",
        ),
        (
            r"not a valid integer \(only digits, at most (\d+), and a leading '-'\)",
            r"no es un entero válido (solo dígitos, máximo \1, y un '-' inicial)",
        ),
        (r"year outside (\d+)-(\d+)", r"año fuera de \1-\2"),
        (
            r"not a valid identifier \(letters, digits and - _ \. starting with a letter or "
            r"digit, at most (\d+)\)",
            r"no es un identificador válido (letras, dígitos y - _ . empezando por letra o "
            r"dígito, máximo \1)",
        ),
        (r"not an allowed value \(allowed: (.+)\)", r"no es un valor permitido (permitidos: \1)"),
        (r"must be greater than (.+)", r"debe ser mayor que \1"),
        (r"below the minimum (.+)", r"por debajo del mínimo \1"),
        (r"above the maximum (.+)", r"por encima del máximo \1"),
        (
            r"references (\S+) that is missing or was quarantined",
            r"referencia un \1 que no existe o quedó en cuarentena",
        ),
        (
            r"duplicate key with different values, 1 of them an exact copy, collapsed",
            "clave duplicada con valores distintos, 1 de ellas copia exacta, unificada",
        ),
        (
            r"duplicate key with different values, (\d+) of them exact copies, collapsed",
            r"clave duplicada con valores distintos, \1 de ellas copias exactas, unificadas",
        ),
        (r"duplicate key with different values", "clave duplicada con valores distintos"),
        (
            r"expected (\d+) fields as in the header, found (\d+)",
            r"se esperaban \1 campos como en el encabezado, hay \2",
        ),
        (r"not in early delinquency at that cut", "sin mora temprana en ese corte"),
    )
)


def reason_words(reason: str, lang: str | None = None) -> str:
    """A quarantine reason in `lang` (default Spanish); one without words is shown as it is."""
    if labels.check_language(lang) == "en":
        return reason
    for pattern, words in _REASONS_ES:
        if pattern.fullmatch(reason):
            return pattern.sub(words, reason)
    return reason


def to_html(report: QualityReport, lang: str | None = None) -> str:
    """A self-contained page in `lang` (default Spanish): the files' counts, then every group
    with its first lines."""
    lang = labels.check_language(lang)
    i = labels.LANGUAGES.index(lang)
    w = {key: pair[i] for key, pair in WORDS.items()}
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
        f"<td>{w['yes'] if g.personal else w['no']}</td><td>{e(reason_words(g.reason, lang))}</td>"
        f'<td class="n">{g.rows:,}</td><td class="n">{g.with_value:,}</td>'
        f"<td>{e(', '.join(str(n) for n in g.first_lines))}</td></tr>"
        for g in report.groups
    )
    head = "".join(
        f"<th>{w[k]}</th>"
        for k in ("file", "column", "personal", "reason", "rows", "with_value", "first_lines")
    )
    groups_part = (
        f"<table><thead><tr>{head}</tr></thead><tbody>{group_rows}</tbody></table>"
        if report.groups
        else f"<p>{w['nothing']}</p>"
    )
    files_head = "".join(
        f"<th>{w[k]}</th>" for k in ("file", "read", "accepted", "quarantined", "collapsed")
    )
    version = e(report.raw_version)
    summary = w["summary"].format(
        as_of=e(report.as_of or w["unknown"]), rows=f"{report.rows_quarantined:,}"
    )
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<title>{w["title"].format(version=version)}</title><style>{_STYLE}</style></head>
<body>
<h1>{w["heading"].format(version=version)}</h1>
<p>{summary}</p>
<h2>{w["files"]}</h2>
<table><thead><tr>{files_head}</tr></thead><tbody>{file_rows}</tbody></table>
<h2>{w["groups"]}</h2>
{groups_part}
<p class="note">{w["note"]}</p>
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
