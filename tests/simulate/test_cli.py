"""`cobranza simulate` on the command line: summary as JSON, actionable errors as one line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cobranza.cli import app
from cobranza.contract import MANIFEST
from cobranza.simulate import extract_files


def test_cli_writes_extract_and_prints_summary(tmp_path):
    out = tmp_path / "extract"
    args = ["--json", "simulate", "--out", str(out), "--clients", "150", "--months", "6"]
    result = CliRunner().invoke(app, [*args, "--seed", "5", "--dialect", "bank-latin1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dialect"] == "bank-latin1" and summary["as_of"] == "2026-10-31"
    assert summary["rows"]["clients.csv"] >= 150
    assert {p.name for p in out.glob("*.*")} == {s.filename for s in extract_files()} | {MANIFEST}
    assert (out / "clients.csv").read_bytes().startswith(b"client_id;document_type;")


def test_cli_bad_end_date_is_one_clear_line(tmp_path):
    args = ["simulate", "--out", str(tmp_path), "--clients", "10", "--end", "2026-02-15"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "month-end" in result.output and "Traceback" not in result.output


def test_cli_policy_scenario_and_compression_options(tmp_path):
    out = tmp_path / "extract"
    args = ["--json", "simulate", "--out", str(out), "--clients", "400", "--months", "8"]
    args += ["--scenario", "fee_hike", "--compress", "--legacy-rule", "--holdout-share", "0.3"]
    args += ["--holdout-months", "3", "--contamination", "0", "--without", "holidays"]
    result = CliRunner().invoke(app, [*args, "--without", "seasonality"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scenario"] == "fee_hike" and summary["contract_version"] == 2
    assert {p.name for p in out.glob("*.*")} == {s.filename + ".gz" for s in extract_files()} | {
        MANIFEST
    }
    assert summary["holdout_share"] > 0.15
    assert "RULE" in summary["roll_rates"]["history"]


def test_cli_unknown_scenario_is_one_clear_line(tmp_path):
    args = ["simulate", "--out", str(tmp_path / "x"), "--clients", "10", "--scenario", "storm"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "unknown scenario 'storm'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
