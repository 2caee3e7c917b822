"""The lake's locks: working folders of dead runs go and live ones stay, the DuckDB spill lives in
the lake's private `_tmp`, and a command waits while a prune holds the lake."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from cobranza.config import load_settings
from cobranza.contract import STANDARD
from cobranza.lake import Lake
from cobranza.ml.lineage import prune
from tests.lake.lakes import (
    KILL_HOOK,
    WIDE,
    flat,
    pair,
    python,
)


def test_a_finished_work_dir_leaves_the_tmp_folder_for_the_next_run(tmp_path):
    """`_tmp` stays once empty: a run may be creating its own folder in it at that moment."""
    lake = Lake(tmp_path / "lake").ensure()
    with lake.work_dir("a") as a:
        assert a.path.is_dir()
    assert (lake.root / "_tmp").is_dir() and not list((lake.root / "_tmp").iterdir())
    with lake.work_dir("b") as b:
        assert b.path.is_dir()


def test_working_folders_of_killed_runs_are_removed_and_live_ones_kept(tmp_path, sim_extract):
    from cobranza.ingest import ingest_extract

    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    # a real ingest SIGKILLed once its raw version folder is being created (staging under way)
    when = "event == 'os.mkdir' and '/raw/versions/' in str(args[0])"
    proc = python(
        KILL_HOOK.format(when=when)
        + textwrap.dedent(
            f"""
            from cobranza.config import load_settings
            from cobranza.contract import STANDARD
            from cobranza.ingest import ingest_extract
            ingest_extract(load_settings(lake={str(lake.root)!r}), {str(sim_extract)!r}, STANDARD)
            """
        )
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (dead,) = [p for p in (lake.root / "_tmp").iterdir() if not p.name.startswith(".")]
    assert dead.name.startswith("ingest-")

    # a live run's folder, held by another process
    live = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys; from cobranza.lake import Lake\n"
            f"w = Lake({str(lake.root)!r}).work_dir('live-run'); print('ok', flush=True)\n"
            "sys.stdin.read(); w.close()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout.readline().strip() == "ok"
        ingest_extract(settings, sim_extract, STANDARD)  # the next ingest removes the dead one
        assert not dead.exists()
        assert (lake.root / "_tmp" / "live-run").is_dir()
        assert prune(settings, keep=1).tmp_removed == []
    finally:
        live.stdin.close()
        live.wait(timeout=30)
    assert not (lake.root / "_tmp").exists() or not list((lake.root / "_tmp").iterdir())


def test_prune_removes_a_dead_runs_working_folder(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    proc = python(
        "import os, signal\nfrom cobranza.lake import Lake\n"
        f"w = Lake({str(lake.root)!r}).work_dir('ingest-x')\n"
        "(w.path / 'spill.tmp').write_text('personal data')\n"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    assert proc.returncode == -signal.SIGKILL
    assert (lake.root / "_tmp" / "ingest-x" / "spill.tmp").exists()
    assert prune(settings).tmp_removed == [str(lake.root / "_tmp" / "ingest-x")]
    assert not list((lake.root / "_tmp").iterdir())


def test_duckdb_etl_spills_into_the_lakes_private_tmp(tmp_path):
    import stat

    from cobranza.transforms.engines import DuckDBEngine

    settings = load_settings(lake=tmp_path / "lake")
    eng = DuckDBEngine(settings)
    try:
        spill = eng.con.raw_sql("SELECT current_setting('temp_directory')").fetchone()[0]
        assert Path(spill).parent == Path(settings.lake).resolve() / "_tmp"
        assert stat.S_IMODE(Path(spill).parent.stat().st_mode) == 0o700
        assert Path(spill).is_dir()
    finally:
        eng.close()
    assert not Path(spill).exists()


def test_a_command_waits_while_a_prune_holds_the_lake(tmp_path):
    """The command says it is waiting while the lock is held, and runs once it is released."""
    lake = Lake(tmp_path / "lake").ensure()
    pair(lake)
    waiting = "waiting for `cobranza lake prune` to finish"
    with lake.exclusive("test"):
        proc = subprocess.Popen(
            ["cobranza", "--lake", str(lake.root), "catalog"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=WIDE,
        )
        said = ""
        deadline = time.monotonic() + 120  # the child's start-up is slow on a loaded machine
        while waiting not in flat(said) and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 1.0)
            if ready:
                line = proc.stderr.readline()
                if not line:
                    break
                said += line
        assert waiting in flat(said), said
        assert proc.poll() is None
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, said + rest
