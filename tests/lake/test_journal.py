"""A transaction of silver and gold switches both zones or neither, whatever moment its process
dies (a real SIGKILL at an exact rename or removal), is interrupted or fails; the next use of the
lake completes a decided journal, and undoes one whose tables a power cut lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import duckdb
import pytest

from cobranza.config import load_settings
from cobranza.contract import STANDARD
from cobranza.lake import Lake, LakeError
from cobranza.lake.retention import clean_orphans, list_versions
from tests.lake.lakes import (
    KILL_HOOK,
    cli,
    flat,
    pair,
    pointers,
    python,
    table,
)

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
    old = pair(lake)
    expect, when = KILL_POINTS[point]
    proc = python(KILL_HOOK.format(when=when) + TX_CHILD.format(root=str(lake.root)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    if point.startswith("switching gold"):  # new silver beside old gold, until completed
        assert lake.current_version("silver") != old[0]
        assert lake.current_version("gold") == old[1]
    # the next command that uses the lake completes (or never saw) the transaction
    out = cli(lake, "--json", "lake", "versions")
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
    assert cli(lake, "catalog").returncode == 0
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
    folders it names (a journal naming removed folders would be rolled forward onto them)."""
    lake = Lake(tmp_path / "lake").ensure()
    old = pair(lake)
    proc = python(INTERRUPT_AFTER_JOURNAL + TX_CHILD.format(root=str(lake.root)))
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr, proc.stderr
    assert not lake.journal_path.exists()
    assert pointers(lake) == {"silver": old[0], "gold": old[1]}
    out = cli(lake, "--json", "lake", "versions")
    assert out.returncode == 0, out.stderr
    assert pointers(lake) == {"silver": old[0], "gold": old[1]}
    assert {r["state"] for r in list_versions(lake)} <= {"complete", "orphan"}
    clean_orphans(lake)
    assert [len(lake.versions(z)) for z in ("silver", "gold")] == [1, 1]


def test_a_journal_naming_a_version_with_lost_tables_is_undone(tmp_path, caplog):
    """Roll-forward checks every recorded table (folder and row count) before switching: a
    power cut may lose what the page cache held."""
    lake = Lake(tmp_path / "lake").ensure()
    old = pair(lake)
    when = "event == 'os.rename' and args[1].endswith('/silver/CURRENT')"
    proc = python(KILL_HOOK.format(when=when) + TX_CHILD.format(root=str(lake.root)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert lake.journal_path.exists()
    (new_gold,) = [
        p
        for p in (lake.zone_dir("gold") / "versions").iterdir()
        if p.name not in (old[1],) and not p.name.startswith(".")
    ]
    for part in (new_gold / "obligation_snapshots").glob("*.parquet"):
        part.unlink()  # what an unsynced write loses
    with caplog.at_level("WARNING", logger="cobranza.lake.journal"):
        assert lake.recover() == []
    assert "could not be completed" in caplog.text and "0 rows, 2 recorded" in caplog.text
    assert not lake.journal_path.exists()
    assert pointers(lake) == {"silver": old[0], "gold": old[1]}
    assert not new_gold.exists()
    assert [len(lake.versions(z)) for z in ("silver", "gold")] == [1, 1]


def test_real_etl_killed_between_the_two_switches_is_completed(tmp_path, sim_extract):
    """`cobranza etl` SIGKILLed right after silver/CURRENT changed: any next command completes
    the pair and refreshes the views."""
    from cobranza.ingest import ingest_extract
    from cobranza.transforms import run_etl

    settings = load_settings(lake=tmp_path / "lake")
    ingest_extract(settings, sim_extract, STANDARD)
    first = run_etl(settings)
    lake = Lake(settings.lake)
    when = "event == 'os.rename' and args[1].endswith('/gold/CURRENT')"
    argv = ["cobranza", "--lake", str(lake.root), "--quiet", "etl"]
    proc = python(
        KILL_HOOK.format(when=when)
        + f"import sys\nsys.argv = {argv!r}\nfrom cobranza.cli import entry\nentry()"
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert lake.journal_path.exists()
    assert lake.current_version("gold") == first["gold_version"]  # silver moved, gold not yet

    # any command completes it, a listing too, and refreshes the views the dead run left behind
    out = cli(lake, "lake", "versions", "--zone", "gold")
    assert out.returncode == 0, out.stderr
    assert "completed the publication" in flat(out.stderr)
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
    """Two `etl` at once: a transaction waits while another one commits."""
    lake = Lake(tmp_path / "lake").ensure()
    old = pair(lake)
    with lake.committing():  # as another process switching its pair would hold it
        proc = subprocess.Popen([sys.executable, "-c", TX_CHILD.format(root=str(lake.root))])
        deadline = time.time() + 60
        gold_versions = lake.zone_dir("gold") / "versions"
        while not any(gold_versions.glob("*/obligation_snapshots/p.parquet")):
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.02)
        time.sleep(0.5)
        assert proc.poll() is None  # written, waiting to commit
        assert pointers(lake) == {"silver": old[0], "gold": old[1]}
        assert not lake.journal_path.exists()
    assert proc.wait(timeout=60) == 0
    silver, gold = lake.current_version("silver"), lake.current_version("gold")
    assert silver != old[0] and lake.run_info("gold", gold)["inputs"]["silver"] == silver


def test_a_failure_before_the_switch_leaves_no_version_behind(tmp_path):
    """A transaction failing once its versions are written (here: gold's pointer is broken)
    leaves no complete version that was never current, and no orphan folder."""
    lake = Lake(tmp_path / "lake").ensure()
    old = pair(lake)
    pointer = lake.zone_dir("gold") / "CURRENT"
    saved = pointer.read_text()
    pointer.write_text("garbage{")
    with pytest.raises(LakeError, match=str(pointer)), lake.transaction() as tx:
        with tx.publish("silver") as s:
            table(s, "t", [1])
        with tx.publish("gold") as g:
            table(g, "obligation_snapshots", [1])
    pointer.write_text(saved)
    assert pointers(lake) == {"silver": old[0], "gold": old[1]}
    for zone, version in zip(("silver", "gold"), old, strict=True):
        assert [p.name for p in (lake.zone_dir(zone) / "versions").iterdir()] == [version]
    assert not lake.journal_path.exists()
