"""Every command answers --help (through the installed `cobranza` entry point), fast and without error."""

import subprocess

import pytest

from cobranza.cli import app

COMMANDS = sorted(
    [c.name or c.callback.__name__ for c in app.registered_commands]
    + [
        f"{g.name} {c.name}"
        for g in app.registered_groups
        for c in g.typer_instance.registered_commands
    ]
)


def test_commands_are_the_documented_ones():
    for name in (
        "simulate",
        "ingest",
        "etl",
        "train",
        "promote",
        "models",
        "score",
        "impact",
        "serve",
        "pipeline",
        "keys create",
        "keys list",
        "keys revoke",
        "lake versions",
        "lake prune",
    ):
        assert name in COMMANDS


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help(command):
    out = subprocess.run(
        ["cobranza", *command.split(), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_lake_option_is_global(tmp_path):
    out = subprocess.run(
        ["cobranza", "--lake", str(tmp_path / "lk"), "--json", "catalog"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "lk" / "catalog.duckdb").exists()
    assert str(tmp_path / "lk") in out.stdout


def test_unexpected_error_is_one_line_without_traceback(tmp_path):
    # an empty gold zone is an actionable error; a corrupt pointer is a defect-like failure
    lake = tmp_path / "lk"
    (lake / "gold").mkdir(parents=True)
    (lake / "gold" / "CURRENT").write_text("not json")
    out = subprocess.run(
        ["cobranza", "--lake", str(lake), "train"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert "COBRANZA_DEBUG=1" in out.stderr


def test_global_options_may_follow_the_command(tmp_path):
    """`cobranza ingest DIR --json` as the issue writes it, and `--lake` anywhere."""
    import json

    out = subprocess.run(
        ["cobranza", "catalog", "--json", "--lake", str(tmp_path / "lk")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["catalog"] == str(tmp_path / "lk" / "catalog.duckdb")


def test_hoisting_keeps_everything_else_in_place():
    from cobranza.cli import hoist_global_options

    assert hoist_global_options(["ingest", "x", "--json", "--dialect", "bank-latin1"]) == [
        "--json",
        "ingest",
        "x",
        "--dialect",
        "bank-latin1",
    ]
    assert hoist_global_options(["score", "--lake=/l", "-q", "--", "--json"]) == [
        "--lake=/l",
        "-q",
        "score",
        "--",
        "--json",
    ]
    assert hoist_global_options(["--lake", "/l", "etl"]) == ["--lake", "/l", "etl"]
