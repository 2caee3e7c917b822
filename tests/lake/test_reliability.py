"""The lake under crashes, concurrent commands and damaged files (operations audit D1-D12).

Real files, real DuckDB, real MLflow, real `cobranza` subprocesses. A crash is a SIGKILL of a real
process at an exact point: an audit hook (`sys.addaudithook`, a CPython feature, no code of the
lake replaced) kills the process the moment it is about to rename or remove a given file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cobranza.config import load_settings
from cobranza.contract import STANDARD
from cobranza.lake import Lake, LakeError
from cobranza.lake.catalog import catalog_record, catalog_stale, refresh_if_stale
from cobranza.lake.retention import clean_orphans, list_versions
from cobranza.ml.lineage import prune

# Installed first in a child process: SIGKILL itself when `when(event, args)` is true.
KILL_HOOK = """
import os, signal, sys
def _kill_hook(event, args, _when=lambda event, args: {when}):
    if _when(event, args):
        os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(_kill_hook)
"""


def _table(pub, name: str, values: list[int]) -> None:
    pq.write_table(pa.table({"x": values}), pub.table_dir(name) / "part-0.parquet")


def _pair(lake: Lake, n: int = 1) -> tuple[str, str]:
    """A silver and a gold version built from it, published together (as `cobranza etl`)."""
    with lake.transaction() as tx:
        with tx.publish("silver") as s:
            _table(s, "t", list(range(n)))
        with tx.publish("gold", inputs={"silver": s.version}) as g:
            _table(g, "obligation_snapshots", list(range(n)))
    return s.version, g.version


def _build(lake: Lake, generations: int) -> list[dict[str, str]]:
    out = []
    for i in range(generations):
        with lake.publish("raw") as raw:
            _table(raw, "clients", list(range(10 + i)))
        with lake.transaction() as tx:
            with tx.publish("silver", inputs={"raw": raw.version}) as silver:
                _table(silver, "clients", list(range(9 + i)))
            with tx.publish("gold", inputs={"silver": silver.version}) as gold:
                _table(gold, "obligation_snapshots", list(range(5 + i)))
        out.append({"raw": raw.version, "silver": silver.version, "gold": gold.version})
    return out


WIDE = {**os.environ, "COLUMNS": "1000"}  # rich wraps error lines at the terminal width


def _cli(lake: Lake | Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    root = lake.root if isinstance(lake, Lake) else lake
    return subprocess.run(
        ["cobranza", "--lake", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=WIDE,
    )


def _python(script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, check=False
    )


def _flat(text: str) -> str:
    """stderr as one line (rich wraps long messages at the terminal width)."""
    return " ".join(text.split())


def _pointers(lake: Lake) -> dict[str, str | None]:
    return {z: lake.current_version(z) for z in ("silver", "gold")}


# ---- D4 + D9: silver and gold switch together, whatever moment the process dies -------------


TX_CHILD = """
import pyarrow as pa, pyarrow.parquet as pq
from cobranza.lake import Lake
lake = Lake({root!r})
with lake.transaction() as tx:
    with tx.publish("silver") as s:
        pq.write_table(pa.table({{"x": [7, 7]}}), s.table_dir("t") / "part-0.parquet")
    with tx.publish("gold", inputs={{"silver": s.version}}) as g:
        pq.write_table(pa.table({{"x": [7, 7]}}), g.table_dir("obligation_snapshots") / "p.parquet")
"""

KILL_POINTS = {
    # before the journal is written: nothing was decided, the old pair stays
    "writing the journal": (
        "old",
        "event == 'os.rename' and args[1].endswith('/.transaction.json')",
    ),
    # the journal is written: the pair is decided and completed by the next use of the lake
    "writing silver's record": (
        "new",
        "event == 'os.rename' and '/silver/versions/' in args[1] and args[1].endswith('/_run.json')",
    ),
    "switching silver": ("new", "event == 'os.rename' and args[1].endswith('/silver/CURRENT')"),
    "switching gold (silver already switched)": (
        "new",
        "event == 'os.rename' and args[1].endswith('/gold/CURRENT')",
    ),
    "deleting the journal": (
        "new",
        "event == 'os.remove' and str(args[0]).endswith('/.transaction.json')",
    ),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_any_point_of_a_transaction_switches_both_zones_or_neither(tmp_path, point):
    lake = Lake(tmp_path / "lake").ensure()
    old = _pair(lake)
    expect, when = KILL_POINTS[point]
    proc = _python(KILL_HOOK.format(when=when) + TX_CHILD.format(root=str(lake.root)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    if point.startswith("switching gold"):  # the state the audit found permanent
        assert lake.current_version("silver") != old[0]
        assert lake.current_version("gold") == old[1]
    # the next command that uses the lake completes (or never saw) the transaction
    out = _cli(lake, "--json", "lake", "versions")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    silver, gold = lake.current_version("silver"), lake.current_version("gold")
    if expect == "old":
        assert (silver, gold) == old
        assert clean_orphans(lake) and len(lake.versions("gold")) == 1
    else:
        assert silver != old[0] and gold != old[1]
        assert lake.run_info("gold")["inputs"]["silver"] == silver
        assert lake.run_info("gold")["run_id"] == lake.run_info("silver")["run_id"]
        assert lake.run_info("silver")["previous_version"] == old[0]
        con = duckdb.connect()
        glob = lake.table_glob("gold", "obligation_snapshots")
        assert con.execute(f"SELECT sum(x) FROM read_parquet('{glob}')").fetchone()[0] == 14
    assert not lake.journal_path.exists()
    states = {r["state"] for r in list_versions(lake)}
    assert states <= {"complete"}, states
    assert not list(lake.root.glob("*/versions/.*.lock"))
    # the catalog follows the pointers at the next command that can write it
    assert _cli(lake, "catalog").returncode == 0
    cat = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        sql = cat.execute(
            "SELECT sql FROM duckdb_views() WHERE schema_name = 'gold' "
            "AND view_name = 'obligation_snapshots'"
        ).fetchone()[0]
    finally:
        cat.close()
    assert gold in sql


INTERRUPT_AFTER_JOURNAL = """
import sys
_seen = []
def _hook(event, args):
    if event == "os.rename" and str(args[1]).endswith("/.transaction.json"):
        _seen.append(1)
    elif _seen == [1] and event == "open":  # the fsync of the lake folder, right after
        _seen.append(2)
        raise KeyboardInterrupt
sys.addaudithook(_hook)
"""


def test_an_interrupt_right_after_the_journal_is_renamed_leaves_nothing_decided(tmp_path):
    """Ctrl-C in the journal's folder fsync: the journal is in place, so it goes before the
    folders it names (audit 2, defect 2: they were removed under a live journal, and the next
    command rolled it forward onto half-deleted versions)."""
    lake = Lake(tmp_path / "lake").ensure()
    old = _pair(lake)
    proc = _python(INTERRUPT_AFTER_JOURNAL + TX_CHILD.format(root=str(lake.root)))
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr, proc.stderr
    assert not lake.journal_path.exists()
    assert _pointers(lake) == {"silver": old[0], "gold": old[1]}
    out = _cli(lake, "--json", "lake", "versions")
    assert out.returncode == 0, out.stderr
    assert _pointers(lake) == {"silver": old[0], "gold": old[1]}
    assert {r["state"] for r in list_versions(lake)} <= {"complete", "orphan"}
    clean_orphans(lake)
    assert [len(lake.versions(z)) for z in ("silver", "gold")] == [1, 1]


def test_a_journal_naming_a_version_with_lost_tables_is_undone(tmp_path, caplog):
    """Roll-forward checks every recorded table (folder and row count) before switching: a
    power cut may lose what the page cache held (audit 2, defect 3)."""
    lake = Lake(tmp_path / "lake").ensure()
    old = _pair(lake)
    when = "event == 'os.rename' and args[1].endswith('/silver/CURRENT')"
    proc = _python(KILL_HOOK.format(when=when) + TX_CHILD.format(root=str(lake.root)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert lake.journal_path.exists()
    (new_gold,) = [
        p
        for p in (lake.zone_dir("gold") / "versions").iterdir()
        if p.name not in (old[1],) and not p.name.startswith(".")
    ]
    for part in (new_gold / "obligation_snapshots").glob("*.parquet"):
        part.unlink()  # what an unsynced write loses
    with caplog.at_level("WARNING", logger="cobranza.lake.store"):
        assert lake.recover() == []
    assert "could not be completed" in caplog.text and "0 rows, 2 recorded" in caplog.text
    assert not lake.journal_path.exists()
    assert _pointers(lake) == {"silver": old[0], "gold": old[1]}
    assert not new_gold.exists()
    assert [len(lake.versions(z)) for z in ("silver", "gold")] == [1, 1]


def test_a_finished_work_dir_leaves_the_tmp_folder_for_the_next_run(tmp_path):
    """Removing `_tmp` when it looked empty raced with a run creating its folder (defect 6)."""
    lake = Lake(tmp_path / "lake").ensure()
    with lake.work_dir("a") as a:
        assert a.path.is_dir()
    assert (lake.root / "_tmp").is_dir() and not list((lake.root / "_tmp").iterdir())
    with lake.work_dir("b") as b:
        assert b.path.is_dir()


def test_real_etl_killed_between_the_two_switches_is_completed(tmp_path, sim_extract):
    """`cobranza etl` SIGKILLed right after silver/CURRENT changed (audit D4 a)."""
    from cobranza.ingest import ingest_extract
    from cobranza.transforms import run_etl

    settings = load_settings(lake=tmp_path / "lake")
    ingest_extract(settings, sim_extract, STANDARD)
    first = run_etl(settings)
    lake = Lake(settings.lake)
    when = "event == 'os.rename' and args[1].endswith('/gold/CURRENT')"
    argv = ["cobranza", "--lake", str(lake.root), "--quiet", "etl"]
    proc = _python(
        KILL_HOOK.format(when=when)
        + f"import sys\nsys.argv = {argv!r}\nfrom cobranza.cli import entry\nentry()"
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert lake.journal_path.exists()
    assert lake.current_version("gold") == first["gold_version"]  # silver moved, gold not yet

    # any command completes it, a listing too, and refreshes the views the dead run left behind
    out = _cli(lake, "lake", "versions", "--zone", "gold")
    assert out.returncode == 0, out.stderr
    assert "completed the publication" in _flat(out.stderr)
    silver, gold = lake.current_version("silver"), lake.current_version("gold")
    assert silver != first["silver_version"] and gold != first["gold_version"]
    assert lake.run_info("gold", gold)["inputs"]["silver"] == silver
    cat = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        views = dict(
            cat.execute(
                "SELECT schema_name || '.' || view_name, sql FROM duckdb_views() "
                "WHERE schema_name IN ('silver', 'gold')"
            ).fetchall()
        )
        assert cat.execute("SELECT count(*) FROM gold.obligation_snapshots").fetchone()[0] > 0
    finally:
        cat.close()
    assert gold in views["gold.obligation_snapshots"]
    assert all(silver in sql for name, sql in views.items() if name.startswith("silver."))


def test_commits_are_serialized_by_the_commit_lock(tmp_path):
    """Two `etl` at once (audit D4 b): a transaction waits while another one commits."""
    lake = Lake(tmp_path / "lake").ensure()
    old = _pair(lake)
    with lake.committing():  # as another process switching its pair would hold it
        proc = subprocess.Popen([sys.executable, "-c", TX_CHILD.format(root=str(lake.root))])
        deadline = time.time() + 60
        gold_versions = lake.zone_dir("gold") / "versions"
        while not any(gold_versions.glob("*/obligation_snapshots/p.parquet")):
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.02)
        time.sleep(0.5)
        assert proc.poll() is None  # written, waiting to commit
        assert _pointers(lake) == {"silver": old[0], "gold": old[1]}
        assert not lake.journal_path.exists()
    assert proc.wait(timeout=60) == 0
    silver, gold = lake.current_version("silver"), lake.current_version("gold")
    assert silver != old[0] and lake.run_info("gold", gold)["inputs"]["silver"] == silver


def test_a_failure_before_the_switch_leaves_no_version_behind(tmp_path):
    """Audit D9: a transaction failing once its versions are written (here: gold's pointer is
    broken) leaves no complete version that was never current, and no orphan folder."""
    lake = Lake(tmp_path / "lake").ensure()
    old = _pair(lake)
    pointer = lake.zone_dir("gold") / "CURRENT"
    saved = pointer.read_text()
    pointer.write_text("garbage{")
    with pytest.raises(LakeError, match=str(pointer)), lake.transaction() as tx:
        with tx.publish("silver") as s:
            _table(s, "t", [1])
        with tx.publish("gold") as g:
            _table(g, "obligation_snapshots", [1])
    pointer.write_text(saved)
    assert _pointers(lake) == {"silver": old[0], "gold": old[1]}
    for zone, version in zip(("silver", "gold"), old, strict=True):
        assert [p.name for p in (lake.zone_dir(zone) / "versions").iterdir()] == [version]
    assert not lake.journal_path.exists()


# ---- D1: the current version is never an orphan --------------------------------------------


def test_prune_never_removes_the_current_version_without_its_record(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = _build(lake, 2)
    current = lake.version_dir("gold")
    (current / "_run.json").unlink()
    two_hours_ago = time.time() - 7200
    os.utime(current, (two_hours_ago, two_hours_ago))

    rows = [r for r in list_versions(lake) if r["version"] == gens[1]["gold"]]
    assert [(r["state"], r["current"]) for r in rows] == [("current, record missing", True)]
    assert clean_orphans(lake) == []
    prune(settings, keep=1)
    assert (current / "obligation_snapshots").is_dir()
    assert lake.current_version("gold") == gens[1]["gold"]

    # every command reading it says which file is missing and what to do, without a traceback
    for command in (["catalog"], ["score"], ["train"]):
        out = _cli(lake, *command)
        text = _flat(out.stderr)
        assert out.returncode == 1, (command, out.stderr)
        assert "Traceback" not in out.stderr + out.stdout
        assert str(current / "_run.json") in text, (command, text)
        assert "cobranza lake use gold VERSION" in text, (command, text)
    assert (current / "obligation_snapshots").is_dir()

    # the repair: point gold at a complete version; recorded, with a lineage warning
    out = _cli(lake, "--json", "lake", "use", "gold", gens[0]["gold"], "--reason", "test")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["previous_version"] == gens[1]["gold"]
    assert result["warnings"] and gens[0]["silver"] in result["warnings"][0]
    assert lake.current_version("gold") == gens[0]["gold"]
    assert _cli(lake, "catalog").returncode == 0
    cat = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        assert cat.execute("SELECT count(*) FROM gold.obligation_snapshots").fetchone()[0] == 5
        event = cat.execute(
            "SELECT zone, version, previous_version, reason FROM ml_metadata.lake_pointer_events"
        ).fetchall()
    finally:
        cat.close()
    assert event == [("gold", gens[0]["gold"], gens[1]["gold"], "test")]


def test_lake_use_refuses_what_is_not_a_complete_unpruned_version(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = _build(lake, 3)
    prune(settings, keep=2)
    for version, message in (
        ("nope", "has no version 'nope'"),
        (gens[0]["gold"], "was pruned"),
        ("../silver", "has no version"),
    ):
        out = _cli(lake, "lake", "use", "gold", version)
        assert out.returncode == 1 and message in _flat(out.stderr), out.stderr
    assert lake.current_version("gold") == gens[2]["gold"]


# ---- D3: no prune while a command reads the lake -------------------------------------------


def _held_shared(lake: Lake) -> bool:
    fd = os.open(lake.root / ".lake.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_prune_refuses_while_train_reads_the_lake(tmp_path, sim_extract):
    """Audit D3: `train` running, a new `etl`, then `lake prune --keep 1`."""
    from cobranza.ingest import ingest_extract
    from cobranza.transforms import run_etl

    settings = load_settings(lake=tmp_path / "lake")
    ingest_extract(settings, sim_extract, STANDARD)
    run_etl(settings)
    lake = Lake(settings.lake)
    train = subprocess.Popen(
        ["cobranza", "--lake", str(lake.root), "--json", "train"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not ((lake.root / ".lake.lock").exists() and _held_shared(lake)):
            assert train.poll() is None, train.communicate()
            assert time.time() < deadline
            time.sleep(0.01)
        run_etl(settings)  # publishing beside a reader is fine; train reads one of the two
        with pytest.raises(LakeError, match="a cobranza run is using the lake"):
            prune(settings, keep=1)
        out = _cli(lake, "lake", "prune", "--keep", "1")
        assert out.returncode == 1
        assert "a cobranza run is using the lake" in _flat(out.stderr)
        assert "nothing was pruned" in _flat(out.stderr)
        stdout, stderr = train.communicate(timeout=300)
    finally:
        if train.poll() is None:
            train.kill()
            train.wait()
    assert train.returncode == 0, stderr
    trained_on = json.loads(stdout)["gold_version"]
    assert (lake.version_dir("gold", trained_on) / "obligation_snapshots").is_dir()
    done = prune(settings, keep=1)  # nobody reads now: the model's gold stays as its training data
    assert trained_on in done.kept["gold"]
    assert (lake.version_dir("gold", trained_on) / "obligation_snapshots").is_dir()


def test_a_command_waits_while_a_prune_holds_the_lake(tmp_path):
    lake = Lake(tmp_path / "lake").ensure()
    _pair(lake)
    with lake.exclusive("test"):
        proc = subprocess.Popen(
            ["cobranza", "--lake", str(lake.root), "catalog"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=WIDE,
        )
        time.sleep(3)
        assert proc.poll() is None
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "waiting for `cobranza lake prune` to finish" in _flat(stderr)


# ---- D5: a catalog held open by a client -----------------------------------------------------

HOLDER = """
import duckdb, sys
con = duckdb.connect({path!r}, read_only=True)
print("open", flush=True)
sys.stdin.read()
"""


def test_a_catalog_held_open_keeps_its_versions_until_it_is_refreshed(tmp_path, caplog):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = _build(lake, 2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(path=str(lake.catalog_path))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with caplog.at_level("WARNING"):
            new = _pair(lake, 3)  # the publication succeeds; the refresh cannot
        warning = " ".join(r.getMessage() for r in caplog.records)
        assert str(lake.catalog_path) in warning
        assert f"still show the previous versions (gold {gens[1]['gold']}" in warning
        assert "run `cobranza catalog` once that client has closed it" in warning
        assert lake.current_version("gold") == new[1]
        record = catalog_record(lake)
        assert record["stale"] and record["current"]["gold"] == gens[1]["gold"]
        assert catalog_stale(lake)

        done = prune(settings, keep=1)  # its refresh fails too: the views' versions stay
        assert gens[1]["gold"] not in done.pruned.get("gold", [])
        assert "read by the catalog" in done.kept["gold"][gens[1]["gold"]][0]
        assert (lake.version_dir("gold", gens[1]["gold"]) / "obligation_snapshots").is_dir()
        assert done.pruned["gold"] == [gens[0]["gold"]]

        out = _cli(lake, "catalog")  # refused while the client holds the file
        assert out.returncode == 1
        assert "held open by another DuckDB client" in _flat(out.stderr)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)

    # the next command that can refreshes it (here one that then fails for its own reason)
    out = _cli(lake, "ingest", str(tmp_path / "no-such-extract"))
    assert out.returncode == 1 and "does not exist" in out.stderr
    assert not catalog_stale(lake)
    cat = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        assert cat.execute("SELECT count(*) FROM gold.obligation_snapshots").fetchone()[0] == 3
    finally:
        cat.close()
    assert prune(settings, keep=1).pruned["gold"] == [gens[1]["gold"]]


def test_refresh_if_stale_is_a_no_op_on_a_fresh_catalog(tmp_path):
    lake = Lake(tmp_path / "lake").ensure()
    _pair(lake)
    assert not catalog_stale(lake)
    assert refresh_if_stale(lake) is None


# ---- D10: working folders of killed runs -----------------------------------------------------


def test_working_folders_of_killed_runs_are_removed_and_live_ones_kept(tmp_path, sim_extract):
    from cobranza.ingest import ingest_extract

    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    # a real ingest SIGKILLed once its raw version folder is being created (staging under way)
    when = "event == 'os.mkdir' and '/raw/versions/' in str(args[0])"
    proc = _python(
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
    proc = _python(
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


# ---- D2 + D12: the training gold of every model, whatever the registry lost -----------------


def _run_with_gold(settings, gold: str, how: str) -> str:
    """A real MLflow run carrying its gold version as a tag or a param (as `train` logs it)."""
    from cobranza.ml.tracking import client, configure

    configure(settings)
    mlc = client(settings)
    exp = mlc.get_experiment_by_name(settings.model_name)
    run = mlc.create_run(exp.experiment_id)
    if how == "tag":
        mlc.set_tag(run.info.run_id, "gold_version", gold)
    elif how == "param":
        mlc.log_param(run.info.run_id, "gold_version", gold)
    return run.info.run_id


def _register(settings, run_id: str | None, gold_tag: str | None = None) -> str:
    from mlflow.exceptions import MlflowException

    from cobranza.ml.tracking import client

    mlc = client(settings)
    with contextlib.suppress(MlflowException):  # already there
        mlc.create_registered_model(settings.model_name)
    mv = mlc.create_model_version(
        settings.model_name, source=str(settings.lake / "model"), run_id=run_id
    )
    if gold_tag:
        mlc.set_model_version_tag(settings.model_name, mv.version, "gold_version", gold_tag)
    return str(mv.version)


def test_prune_keeps_the_gold_of_a_version_registered_but_never_tagged(tmp_path):
    """Audit D2: train killed between registering the version and tagging it."""
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = _build(lake, 4)
    v1 = _register(settings, _run_with_gold(settings, gens[0]["gold"], "tag"))
    v2 = _register(settings, _run_with_gold(settings, gens[1]["gold"], "param"))
    done = prune(settings, keep=1)
    assert done.kept["gold"][gens[0]["gold"]] == [f"trained model version {v1}"]
    assert done.kept["gold"][gens[1]["gold"]] == [f"trained model version {v2}"]
    assert done.pruned["gold"] == [gens[2]["gold"]]
    for g in gens[:2]:
        assert (lake.version_dir("gold", g["gold"]) / "obligation_snapshots").is_dir()


def test_prune_keeps_the_gold_the_mirror_lists_when_the_registry_forgot(tmp_path):
    """Audit D12: the registry emptied or recreated; ml_metadata/model_runs still knows."""
    from cobranza.ml.tracking import client

    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = _build(lake, 3)
    run_id = _run_with_gold(settings, gens[0]["gold"], "none")
    version = _register(settings, run_id, gold_tag=gens[0]["gold"])
    lake.write_metadata(
        "model_runs",
        [
            {
                "run_id": run_id,
                "model_name": settings.model_name,
                "model_version": version,
                "gold_version": gens[0]["gold"],
            }
        ],
        run_id,
    )
    client(settings).delete_registered_model(settings.model_name)
    done = prune(settings, keep=1)
    assert done.kept["gold"][gens[0]["gold"]] == [
        f"trained model version {version} (in ml_metadata.model_runs, not in the registry)"
    ]
    assert done.pruned["gold"] == [gens[1]["gold"]]
    assert (lake.version_dir("gold", gens[0]["gold"]) / "obligation_snapshots").is_dir()


def test_prune_keeps_every_gold_when_a_models_gold_is_unknown(tmp_path, caplog):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = _build(lake, 3)
    version = _register(settings, _run_with_gold(settings, "", "none"))
    with caplog.at_level("WARNING"):
        done = prune(settings, keep=1)
    assert done.pruned == {}  # every gold kept, and with them their silver and raw
    assert all(
        (lake.version_dir("gold", g["gold"]) / "obligation_snapshots").is_dir() for g in gens
    )
    (warning,) = done.warnings
    assert f"registered model version {version}" in warning
    assert "no gold version was pruned" in warning
    assert warning in caplog.text
