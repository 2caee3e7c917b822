"""Every command answers --help (through the installed `cobranza` entry point), fast and without error."""

import json
import os
import shutil
import subprocess
from contextlib import contextmanager

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
        "lake use",
        "experiment report",
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
    # a Parquet file that is not one is an unexpected failure: one line, exit code 2 (a broken
    # pointer or record is an actionable error naming the file: see below)
    from cobranza.lake import Lake

    lake = tmp_path / "lk"
    with Lake(lake).ensure().publish("gold", refresh=False) as pub:
        part = pub.table_dir("obligation_snapshots") / "part-0.parquet"
        part.write_bytes(b"PAR1 not a parquet file PAR1")
        pub.record("obligation_snapshots", rows=5)
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
    """`cobranza ingest DIR --json` and `--lake` anywhere on the line."""
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


WIDE = {**os.environ, "COLUMNS": "1000"}  # rich wraps error lines at the terminal width


def _cobranza(lake, *args, timeout=120):
    return subprocess.run(
        ["cobranza", "--lake", str(lake), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=WIDE,
    )


def _small_lake(root):
    """Two generations of raw -> silver + gold, published as ingest and etl do."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cobranza.lake import Lake

    lake = Lake(root).ensure()
    gens = []
    for i in range(2):
        with lake.publish("raw") as raw:
            pq.write_table(pa.table({"x": [i]}), raw.table_dir("clients") / "p.parquet")
        with lake.transaction() as tx:
            with tx.publish("silver", inputs={"raw": raw.version}) as s:
                pq.write_table(pa.table({"x": [i]}), s.table_dir("clients") / "p.parquet")
            with tx.publish("gold", inputs={"silver": s.version}) as g:
                pq.write_table(
                    pa.table({"x": [i]}), g.table_dir("obligation_snapshots") / "p.parquet"
                )
        gens.append({"silver": s.version, "gold": g.version})
    return lake, gens


def test_a_broken_pointer_is_one_message_naming_the_file_and_the_fix(tmp_path):
    """Every command reading the zone says which file is broken and how to repair it."""
    lake, gens = _small_lake(tmp_path / "lk")
    pointer = lake.root / "gold" / "CURRENT"
    pointer.write_text("garbage{")
    for command in (["catalog"], ["train"], ["score"], ["lake", "prune"]):
        out = _cobranza(lake.root, *command)
        text = " ".join(out.stderr.split())
        assert out.returncode == 1, (command, out.stderr)
        assert "Traceback" not in out.stderr + out.stdout
        assert f"{pointer} is broken" in text, (command, text)
        assert "cobranza lake use gold VERSION" in text, (command, text)
    assert pointer.read_text() == "garbage{"  # nothing wrote over it

    out = _cobranza(lake.root, "--json", "lake", "versions")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["state"] for r in rows if r["zone"] == "gold" and r["current"]] == ["pointer broken"]
    assert {r["version"] for r in rows if r["state"] == "complete"} >= {gens[1]["gold"]}

    out = _cobranza(lake.root, "lake", "use", "gold", gens[1]["gold"], "--reason", "repair")
    assert out.returncode == 0, out.stderr
    assert lake.current_version("gold") == gens[1]["gold"]
    assert "warning" not in out.stderr.lower()  # gold and silver come from each other again
    out = _cobranza(lake.root, "--json", "catalog")
    assert out.returncode == 0 and json.loads(out.stdout)["refreshed"] is True, out.stderr


@contextmanager
def _mounted(target, *options):
    """A real mount for the duration of the test (root only: skipped elsewhere)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a file system")
    done = subprocess.run(["mount", *options, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_read_only_lake_says_read_only_and_fails(tmp_path):
    lake, _ = _small_lake(tmp_path / "lk")
    with _mounted(lake.root, "--bind", "-o", "ro", str(lake.root)):
        assert not os.access(lake.root, os.W_OK)
        out = _cobranza(lake.root, "catalog")
        text = " ".join(out.stderr.split())
        assert out.returncode == 1, out.stderr
        assert "read-only" in text and "locked by another process" not in text
        for command in (["etl"], ["lake", "use", "gold", lake.current_version("gold")]):
            out = _cobranza(lake.root, *command)
            assert out.returncode == 1, (command, out.stderr)
            assert "Traceback" not in out.stderr and "failed unexpectedly" not in out.stderr
            assert "read-only" in out.stderr.lower(), (command, out.stderr)
        out = _cobranza(lake.root, "--json", "lake", "versions")  # reading still works
        assert out.returncode == 0, out.stderr


def test_a_full_disk_is_one_clear_line(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    with _mounted(disk, "-t", "tmpfs", "-o", "size=8m", "tmpfs"):
        lake, gens = _small_lake(disk / "lk")
        before = lake.current_version("gold")
        with open(disk / "filler", "wb") as fh:  # fill what is left
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        out = _cobranza(lake.root, "lake", "use", "gold", gens[0]["gold"])
        text = " ".join(out.stderr.split())
        assert out.returncode == 1, out.stderr
        assert "error: no space left on device while writing " + str(lake.root) in text
        assert text.endswith("nothing was published")
        assert "failed unexpectedly" not in text
        assert lake.current_version("gold") == before
