"""`cobranza --json ingest DIR` through the installed entry point: JSON on stdout, exit code."""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
from pathlib import Path

import duckdb

from cobranza.contract import files_for
from cobranza.ingest.assignments import V1_WARNING
from cobranza.lake import Lake
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
    # a version-1 extract: its nine files, and the one warning that no assignment file was given
    assert report["contract_version"] == 1
    assert set(report["files"]) == {f.filename for f in files_for(1)}
    assert report["warnings"] == [V1_WARNING]
    assert report["assignments"]["file"] is None
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


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["cobranza", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def _bad_dialects(tmp_path: Path) -> list[tuple[str, str]]:
    """(--dialect value, start of the one-line error) for each way a dialect can be wrong."""
    cases = {
        "unknown.toml": ('delimiter = ";"\nencodng = "latin-1"\n', "unknown dialect fields"),
        "syntax.toml": ('delimiter = "\n', "not valid TOML"),
        "two.toml": ('delimiter = ";;"\n', "dialect 'two': delimiter must be one ASCII"),
        "five.toml": ("delimiter = 5\n", "dialect 'five': delimiter must be a string"),
        "fmt.toml": ('date_format = "%Q"\n', "dialect 'fmt': date_format '%Q' has the directive"),
        "enc.toml": ('encoding = "klingon"\n', "dialect 'enc': unknown encoding 'klingon'"),
        "dec.toml": ('decimal = ";"\n', "dialect 'dec': decimal must be one of"),
    }
    out = []
    for name, (text, error) in cases.items():
        (tmp_path / name).write_text(text)
        out.append((str(tmp_path / name), error))
    out.append((str(tmp_path / "missing.toml"), "dialect file not found"))
    out.append(("bank_latin1", "unknown dialect 'bank_latin1' (did you mean 'bank-latin1'?)"))
    return out


def test_cli_bad_dialect_is_one_line_never_a_traceback(tmp_path):
    """D4: ingest, simulate and pipeline all load the dialect inside their error handling."""
    extract = write_extract(tmp_path / "x")
    cases = _bad_dialects(tmp_path)
    runs = [(["ingest", str(extract)], spec, error) for spec, error in cases]
    simulate = ["simulate", "--out", str(tmp_path / "sim"), "--clients", "5"]
    pipeline = ["pipeline", "--extract", str(extract)]
    runs += [(cmd, spec, error) for cmd in (simulate, pipeline) for spec, error in cases[::4]]
    for cmd, spec, error in runs:
        out = _run_cli("--lake", str(tmp_path / "lake"), "--json", *cmd, "--dialect", spec)
        assert out.returncode == 1, (cmd, spec, out.stderr)
        assert "Traceback" not in out.stderr + out.stdout
        assert error in json.loads(out.stdout)["error"], (cmd, spec, out.stdout)
    assert not (tmp_path / "lake" / "raw").exists()  # nothing was ingested
    assert not (tmp_path / "sim").exists()  # nor simulated


def test_cli_headerless_personal_file_keeps_personal_data_out(tmp_path):
    """D3 through the CLI: neither the JSON error nor the human one quotes the first row."""
    extract = write_extract(tmp_path / "x")
    path = extract / "clients.csv"
    path.write_text("\n".join(path.read_text().split("\n")[1:]))
    for flags in (["--json"], []):
        out = (
            _cli(tmp_path / "lake", str(extract))
            if flags
            else _run_cli("--lake", str(tmp_path / "lake"), "ingest", str(extract))
        )
        assert out.returncode == 1
        text = out.stdout + out.stderr
        assert "header row missing" in " ".join(text.split())
        for value in ("1001", "Ana", "ana@example.com", "3001234567", "C1,"):
            assert value not in text


def test_cli_refuses_a_symlinked_file_in_one_line(tmp_path):
    extract = write_extract(tmp_path / "x")
    outside = tmp_path / "outside.csv"
    (extract / "payments.csv").rename(outside)
    (extract / "payments.csv").symlink_to(outside)
    out = _cli(tmp_path / "lake", str(extract))
    assert out.returncode != 0
    assert "payments.csv: is a symbolic link" in out.stderr
    assert "Traceback" not in out.stderr and str(outside) not in out.stderr + out.stdout


def test_cli_prints_each_warning_once(tmp_path):
    """A warning is printed once, as a line of the run's log, not again in its report."""
    extract = write_extract(tmp_path / "x")  # version 1: the no-assignment-file warning
    out = subprocess.run(
        ["cobranza", "--lake", str(tmp_path / "lake"), "ingest", str(extract)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    printed = out.stdout + out.stderr
    assert V1_WARNING.startswith("no assignment file was given")
    assert printed.count("no assignment file was given") == 1
    assert "warning: no assignment file was given" in " ".join(out.stderr.split())


def _with_undecodable_record(extract: Path, good_line_too: bool = False) -> int:
    """clients.csv plus a record of too many fields holding a byte that is not UTF-8; returns
    its line. With `good_line_too`, a well-formed record at line 2 gets such a byte as well."""
    path = extract / "clients.csv"
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    if good_line_too:
        lines[1] = lines[1].replace(b"CC", b"C\xff", 1)
    lines.append(b"C9,CC,9009,Nombre \xff\xfe Privado,1990-01-01,F,Cali,Valle,MASS,x,y,z,w,v,u")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def test_cli_quarantines_a_malformed_record_with_undecodable_bytes_printing_nothing_else(
    tmp_path,
):
    """A record of the wrong field count is quarantined whatever its bytes: the run says file,
    line and column once, and nothing else reaches stdout or stderr (no decoder traceback)."""
    extract = write_extract(tmp_path / "x", manifest=False)
    line = _with_undecodable_record(extract)
    for gz in (False, True):
        if gz:  # the same record in a gzip-compressed file
            path = extract / "clients.csv"
            (extract / "clients.csv.gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
        lake = tmp_path / f"lake-{gz}"
        out = subprocess.run(
            ["cobranza", "--lake", str(lake), "ingest", str(extract)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        printed = out.stdout + out.stderr
        for noise in ("UnicodeDecodeError", "Traceback", "Exception ignored", "codec"):
            assert noise not in printed
        assert "Privado" not in printed  # the record's text stays in raw
        name = "clients.csv.gz" if gz else "clients.csv"
        log = " ".join(out.stderr.split())
        assert (
            f"{name}: 1 row(s) quarantined, first at line {line} column *: expected 14 fields"
            in log
        )
        rows = (
            duckdb.connect()
            .execute(
                'SELECT file, line, "column", reason FROM read_parquet(?)',
                [Lake(lake).table_glob("raw", "quarantine")],
            )
            .fetchall()
        )
        assert [r for r in rows if r[0] == name] == [
            (name, line, "*", "expected 14 fields as in the header, found 15")
        ]


def test_cli_undecodable_bytes_in_an_accepted_record_still_fail_the_file(tmp_path):
    """Quarantining the malformed record does not let undecodable bytes into accepted rows."""
    extract = write_extract(tmp_path / "x", manifest=False)
    _with_undecodable_record(extract, good_line_too=True)
    out = _cli(tmp_path / "lake", str(extract))
    assert out.returncode == 1
    error = json.loads(out.stdout)["error"]
    assert error.startswith("clients.csv: bytes that are not valid utf-8 at line 2;")
    for noise in ("UnicodeDecodeError", "Traceback", "Exception ignored"):
        assert noise not in out.stdout + out.stderr
    assert not (tmp_path / "lake" / "raw" / "CURRENT").exists()
