"""`cobranza --json ingest DIR` through the installed entry point: JSON on stdout, exit code."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

from cobranza.contract import FILES
from tests.ingest.conftest import BASE_ROWS, write_extract

REPO = Path(__file__).resolve().parents[2]
COUNTS = {"rows_read", "rows_accepted", "rows_quarantined", "duplicates_collapsed"}


def _cli(lake: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["cobranza", "--lake", str(lake), "--json", "ingest", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_cli_json_report_shape(tmp_path):
    rows = copy.deepcopy(BASE_ROWS)
    rows["clients"].append(["C9", "CC", "secret-doc-9", "Nombre Privado", *rows["clients"][0][4:]])
    rows["clients"][-1][8] = "GOLD"  # segment not allowed: line 5
    extract = write_extract(tmp_path / "x", rows=rows)
    out = _cli(tmp_path / "lake", str(extract))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["fatal"] is None
    assert set(report["files"]) == {f.filename for f in FILES}
    for counts in report["files"].values():
        assert set(counts) == COUNTS
        assert all(isinstance(v, int) for v in counts.values())
    assert report["files"]["clients.csv"] == {
        "rows_read": 4,
        "rows_accepted": 3,
        "rows_quarantined": 1,
        "duplicates_collapsed": 0,
    }
    assert report["as_of"] == "2023-04-30"
    # Personal data of the quarantined row never reaches the output.
    for text in (out.stdout, out.stderr):
        assert "secret-doc-9" not in text
        assert "Nombre Privado" not in text


def test_cli_fatal_prints_error_and_exits_1(tmp_path):
    extract = write_extract(tmp_path / "x")  # standard dialect, read as the bank's
    out = _cli(tmp_path / "lake", str(extract), "--dialect", "bank-latin1")
    assert out.returncode == 1
    error = json.loads(out.stdout)
    assert set(error) == {"error"}
    assert error["error"].startswith("clients.csv: the header has a single column")
    assert "--dialect standard" in error["error"]
    assert "Traceback" not in out.stderr
