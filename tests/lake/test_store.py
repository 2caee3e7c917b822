"""Versioned atomic publishing: a failed run leaves the previous version current and readable."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cobranza.lake import Lake
from cobranza.lake.retention import clean_orphans


def _write(pub, table, values):
    pq.write_table(pa.table({"x": values}), pub.table_dir(table) / "part-0.parquet")


def test_publish_switches_pointer_and_records_run(tmp_path):
    lake = Lake(tmp_path).ensure()
    with lake.publish("silver", inputs={"raw": "v1"}) as pub:
        _write(pub, "clients", [1, 2, 3])
    info = lake.run_info("silver")
    assert info["tables"]["clients"]["rows"] == 3
    assert info["inputs"] == {"raw": "v1"}
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    assert con.execute("SELECT count(*) FROM silver.clients").fetchone()[0] == 3
    assert con.execute("SELECT count(*) FROM ml_metadata.lake_runs").fetchone()[0] == 1


def test_failed_run_keeps_previous_version(tmp_path):
    lake = Lake(tmp_path).ensure()
    with lake.publish("gold") as pub:
        _write(pub, "t", [1])
    first = lake.current_version("gold")
    with pytest.raises(RuntimeError), lake.publish("gold") as pub:
        _write(pub, "t", [1, 2])
        raise RuntimeError("boom")
    assert lake.current_version("gold") == first
    assert [v["version"] for v in lake.versions("gold")] == [first]
    assert len(list((tmp_path / "gold" / "versions").iterdir())) == 1


def test_sigkill_mid_publication_keeps_previous_version(tmp_path):
    lake = Lake(tmp_path).ensure()
    with lake.publish("gold") as pub:
        _write(pub, "t", [1])
    first = lake.current_version("gold")
    script = textwrap.dedent(
        f"""
        import os, signal, pyarrow as pa, pyarrow.parquet as pq
        from cobranza.lake import Lake
        lake = Lake({str(tmp_path)!r})
        with lake.publish("gold") as pub:
            pq.write_table(pa.table({{"x": [9, 9]}}), pub.table_dir("t") / "part-0.parquet")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert lake.current_version("gold") == first
    con = duckdb.connect()
    assert (
        con.execute(
            f"SELECT sum(x) FROM read_parquet('{lake.table_glob('gold', 't')}')"
        ).fetchone()[0]
        == 1
    )
    removed = clean_orphans(lake)
    assert len(removed) == 1 and not removed[0].exists()
    assert json.loads((tmp_path / "gold" / "CURRENT").read_text())["version"] == first
    assert os.path.isdir(lake.version_dir("gold"))


def test_history_tables_union_all_versions(tmp_path):
    lake = Lake(tmp_path).ensure()
    for values in ([1, 2], [3]):
        with lake.publish("results") as pub:
            _write(pub, "scores", values)
            _write(pub, "latest", values)
            pub.history_tables.add("scores")
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    assert con.execute("SELECT count(*) FROM results.scores").fetchone()[0] == 3
    assert con.execute("SELECT count(*) FROM results.latest").fetchone()[0] == 1


def test_transaction_switches_every_zone_together_or_none(tmp_path):
    lake = Lake(tmp_path).ensure()
    with lake.transaction() as tx:
        with tx.publish("silver") as s:
            _write(s, "t", [1])
        with tx.publish("gold", inputs={"silver": s.version}) as g:
            _write(g, "t", [1])
        # Written but not current until the transaction ends.
        assert lake.current_version("silver") is None and lake.current_version("gold") is None
    assert lake.current_version("silver") == s.version
    assert lake.current_version("gold") == g.version
    assert lake.run_info("gold")["inputs"] == {"silver": s.version}
    assert lake.run_info("silver")["run_id"] == lake.run_info("gold")["run_id"]

    with pytest.raises(RuntimeError), lake.transaction() as tx:
        with tx.publish("silver") as s2:
            _write(s2, "t", [1, 2])
        with tx.publish("gold") as g2:
            _write(g2, "t", [1, 2])
            raise RuntimeError("gold failed after silver was written")
    assert lake.current_version("silver") == s.version
    assert lake.current_version("gold") == g.version
    assert [p.name for p in (tmp_path / "silver" / "versions").iterdir()] == [s.version]
    assert [p.name for p in (tmp_path / "gold" / "versions").iterdir()] == [g.version]


def test_raw_tmp_and_control_are_owner_only(tmp_path):
    """The zone with personal data, the ingest's working copy and the API's secrets: 0700."""
    import stat
    import tempfile

    lake = Lake(tmp_path / "lake").ensure()
    for name in ("raw", "_tmp", "control"):
        assert stat.S_IMODE((lake.root / name).stat().st_mode) == 0o700, name
    with lake.publish("raw") as pub:
        _write(pub, "clients", [1])
    with lake.publish("gold") as pub:
        _write(pub, "obligation_snapshots", [1])
    if os.geteuid() != 0:
        return  # only root can run the check below as another user; the modes above are the rule
    # as another user (nobody), the gold zone reads and raw refuses
    shared = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        other = Lake(shared / "lake").ensure()
        with other.publish("raw") as pub:
            _write(pub, "clients", [1])
        with other.publish("gold") as pub:
            _write(pub, "obligation_snapshots", [1])
        probe = textwrap.dedent(
            f"""
            import os, sys
            os.setgid(65534); os.setuid(65534)
            root = {str(other.root)!r}
            open(os.path.join(root, "gold", "CURRENT")).read()
            try:
                open(os.path.join(root, "raw", "CURRENT")).read()
            except PermissionError:
                sys.exit(0)
            sys.exit(3)
            """
        )
        proc = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
