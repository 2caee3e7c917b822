"""The data-quality report of an ingest run: the quarantine by file, column and reason, in HTML and
CSV with the raw version, the same through `cobranza quarantine`, and never a refused value."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from cobranza.config import load_settings
from cobranza.ingest.quality import (
    CSV_FILE,
    HTML_FILE,
    REPORT_DIR,
    load_report,
    reason_words,
    to_csv,
)
from cobranza.lake import Lake
from cobranza.runs import IngestResult, ingest
from cobranza.stages import IngestParams

# a record with one field too many: the quarantine keeps its whole text as the refused value
SECRETS = ("Maria Secreta Lopez", "maria.secreta@example.com", "98765432101", "3151234567")
MALFORMED = "C99999999,CC,{2},{0},1990-01-01,F,Cali,Valle,MASS,SALARIED,100,2020-01-01,{1},{3},X\n"


def extract_with_personal_data_refused(source: Path, out: Path) -> Path:
    """A copy of a simulated extract whose clients.csv ends with a malformed record holding a
    name, an e-mail, a document number and a phone (the manifest updated to match)."""
    shutil.copytree(source, out)
    clients = out / "clients.csv"
    with clients.open("a", encoding="utf-8") as fh:
        fh.write(MALFORMED.format(*SECRETS))
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["files"]["clients.csv"]
    entry["rows"] += 1
    entry["sha256"] = hashlib.sha256(clients.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def ingested(tmp_path: Path, sim_extract: Path) -> tuple[IngestResult, Path]:
    extract = extract_with_personal_data_refused(sim_extract, tmp_path / "extract")
    settings = load_settings(lake=tmp_path / "lake", duckdb_threads=1)
    return ingest(settings, IngestParams.model_construct(extract_dir=str(extract))), tmp_path


@pytest.fixture(scope="module")
def run(tmp_path_factory, sim_extract):
    return ingested(tmp_path_factory.mktemp("quality"), sim_extract)


def _quarantine(lake: Lake, version: str) -> list[tuple]:
    glob = str(lake.version_dir("raw", version) / "quarantine" / "*.parquet")
    return duckdb.sql(
        f"SELECT file, line, \"column\", value, reason FROM read_parquet('{glob}')"
    ).fetchall()


def _kind(reason: str) -> str:
    """The reason as the report groups it (written here independently of the report's SQL)."""
    general = re.sub(r"\s*\(lines? [^)]*\)", "", reason)
    general = re.sub(r": [0-9]+ rows share it", "", general)
    masked = re.sub(r"[^\s@]+@[^\s@]+", "[redacted]", general)
    return re.sub(r"[0-9]{6,}", "[redacted]", masked)


def test_the_report_is_written_with_the_raw_version_and_named_in_the_summary(run):
    result, root = run
    lake = Lake(root / "lake")
    folder = lake.version_dir("raw", result.version) / REPORT_DIR
    assert result.extra["quality_report"] == {
        "html": str(folder / HTML_FILE),
        "csv": str(folder / CSV_FILE),
    }
    assert result.to_json()["quality_report"]["csv"] == str(folder / CSV_FILE)
    report = load_report(lake, result.version)
    assert (folder / CSV_FILE).read_bytes() == to_csv(report)  # the file is the report read back
    assert "_quality" not in lake.tables("raw")  # a folder of the version, not a table
    titles = [heading for heading, _, _ in result.sections()]
    assert "data-quality report (quarantine by file and reason)" in titles


def test_groups_count_every_refused_cell_by_file_column_and_reason(run):
    result, root = run
    lake = Lake(root / "lake")
    rows = _quarantine(lake, result.version)
    lines: dict[tuple, set[int]] = {}
    for file, line, column, _value, reason in rows:
        key = (file, column, _kind(reason))
        lines.setdefault(key, set()).add(line)
    expected = {key: len(found) for key, found in lines.items()}
    report = load_report(lake, result.version)
    got = {(g.file, g.column, g.reason): g.rows for g in report.groups}
    assert got == expected
    for g in report.groups:
        first = sorted(lines[(g.file, g.column, g.reason)])[:5]
        assert g.first_lines == first
    assert report.rows_quarantined == result.rows_quarantined > 0
    malformed = [g for g in report.groups if g.file == "clients.csv" and g.column == "*"]
    assert malformed and malformed[0].reason.startswith("expected 14 fields")


def test_no_refused_value_of_personal_data_reaches_the_report(run):
    result, root = run
    lake = Lake(root / "lake")
    report = load_report(lake, result.version)
    folder = lake.version_dir("raw", result.version) / REPORT_DIR
    texts = [
        (folder / HTML_FILE).read_text(encoding="utf-8"),
        (folder / CSV_FILE).read_text(encoding="utf-8"),
        json.dumps(report.to_json()),
    ]
    refused = {
        value
        for file, _line, _column, value, _reason in _quarantine(lake, result.version)
        if file == "clients.csv" and value and len(value) >= 6
    }
    assert any(SECRETS[0] in v for v in refused)  # the malformed record was kept whole in raw
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
        for value in refused:
            assert value not in text


def test_quarantine_command_prints_the_report_as_tables_json_and_csv(run, capsys):
    from cobranza.cli import run as cli

    result, root = run
    lake = root / "lake"
    assert cli(["--lake", str(lake), "quarantine"]) == 0
    out = capsys.readouterr().out
    assert f"raw version {result.version}" in out and "expected 14 fields" in out
    assert cli(["--lake", str(lake), "--json", "quarantine", result.version]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == load_report(Lake(lake), result.version).to_json()
    assert cli(["--lake", str(lake), "quarantine", "--csv"]) == 0
    folder = Lake(lake).version_dir("raw", result.version) / REPORT_DIR
    assert capsys.readouterr().out.encode("utf-8") == (folder / CSV_FILE).read_bytes()
    assert cli(["--lake", str(lake), "quarantine", "20990101T000000000000-deadbeef"]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.browser
def test_the_html_report_opens_in_a_browser(run):
    from playwright.sync_api import sync_playwright

    from tests.api.test_dashboard import ARGS, CHROMIUM

    result, root = run
    lake = Lake(root / "lake")
    report = load_report(lake, result.version)
    page_file = lake.version_dir("raw", result.version) / REPORT_DIR / HTML_FILE
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing ({CHROMIUM}): run `make setup`")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            # the run's language, Spanish by default; reasons worded in it
            assert page.title() == f"Cuarentena de la versión raw {result.version}"
            tables = page.locator("table")
            assert tables.count() == 2
            assert tables.nth(0).locator("tbody tr").count() == len(result.files)
            assert tables.nth(1).locator("tbody tr").count() == len(report.groups)
            cells = tables.nth(1).locator("tbody tr").first.locator("td").all_inner_texts()
            first = report.groups[0]
            assert cells[:2] == [first.file, first.column]
            assert cells[3] == reason_words(first.reason)
        finally:
            browser.close()


def _every_reason() -> list[str]:
    """Every reason text ingest writes, for each built-in dialect, as the report groups it."""
    from cobranza.contract import DIALECTS, FILES, ID_PATTERN_TEXT
    from cobranza.ingest.assignments import NOT_EARLY
    from cobranza.ingest.quality import reason_kind
    from cobranza.ingest.rules import reference_reason, type_reason, year_reasons

    reasons = ["missing required value", NOT_EARLY, f"not a valid identifier ({ID_PATTERN_TEXT})"]
    reasons += ["expected 14 fields as in the header, found 15"]
    reasons += [
        "duplicate key with different values: 3 rows share it (lines 2, 3, 4)",
        "duplicate key with different values: 3 rows share it (lines 2, 3, 4), "
        "1 of them an exact copy, collapsed",
        "duplicate key with different values: 4 rows share it (lines 2, 3, 4, 5), "
        "2 of them exact copies, collapsed",
    ]
    for dialect in DIALECTS.values():
        for spec in FILES:
            for col in spec.columns:
                if col.type != "string":
                    reasons.append(type_reason(col, dialect))
                if col.type in ("date", "timestamp"):
                    reasons += year_reasons(col, dialect)
                if col.allowed:
                    reasons.append(f"not an allowed value (allowed: {', '.join(col.allowed)})")
            for _col, parent, pcol in spec.references:
                reasons.append(reference_reason(parent, pcol))
    reasons += ["must be greater than 0", "below the minimum 0", "above the maximum 31"]
    con = duckdb.connect()
    return [
        con.execute(f"SELECT {reason_kind('?')}", [r]).fetchone()[0] for r in dict.fromkeys(reasons)
    ]


def test_every_quarantine_reason_has_spanish_words_and_english_stays_as_written():
    english = re.compile(r"\b(not|valid|missing|expected|references|duplicate|year|allowed)\b")
    for reason in _every_reason():
        spanish = reason_words(reason)
        assert spanish != reason and not english.search(spanish), (reason, spanish)
        assert reason_words(reason, "en") == reason
    assert reason_words("a reason without words") == "a reason without words"
    assert (
        reason_words("references obligations.obligation_id that is missing or was quarantined")
        == "referencia un obligations.obligation_id que no existe o quedó en cuarentena"
    )


def test_the_html_report_is_in_spanish_by_default_and_english_on_request(run):
    from cobranza.ingest.quality import to_html

    result, root = run
    report = load_report(Lake(root / "lake"), result.version)
    written = Lake(root / "lake").version_dir("raw", result.version) / REPORT_DIR / HTML_FILE
    page = written.read_text(encoding="utf-8")
    assert '<html lang="es">' in page  # the run's default language, Spanish
    assert f"<title>Cuarentena de la versión raw {result.version}</title>" in page
    assert "primeras líneas" in page and "first lines" not in page
    for group in report.groups:
        assert html.escape(reason_words(group.reason)) in page
    english = to_html(report, "en")
    assert '<html lang="en">' in english
    assert f"<title>Quarantine of raw version {result.version}</title>" in english
    assert "se esperaban 14 campos" not in english and "expected 14 fields" in english
    with pytest.raises(ValueError, match="unknown language"):
        to_html(report, "fr")
