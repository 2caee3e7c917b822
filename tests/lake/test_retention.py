"""Retention: what prune keeps (current, newest, lineage, models' training gold, all results), what
it frees, and that it never touches a version being written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cobranza.config import load_settings
from cobranza.contract import STANDARD
from cobranza.lake import Lake, LakeError
from cobranza.lake.retention import clean_orphans, list_versions, plan_prune
from cobranza.ml.lineage import prune
from tests.lake.lakes import cli, flat, generations, held_shared


def _rec(version: str, **inputs: str) -> dict:
    return {"version": version, "inputs": inputs}


def test_plan_keeps_current_newest_lineage_and_model_gold():
    records = {
        "raw": [_rec("r1"), _rec("r2"), _rec("r3"), _rec("r4")],
        "silver": [_rec("s1", raw="r1"), _rec("s2", raw="r2"), _rec("s3", raw="r2")],
        "gold": [_rec("g1", silver="s1"), _rec("g2", silver="s2"), _rec("g3", silver="s3")],
        "results": [_rec("x1", gold_version="g1")],
    }
    current = {"raw": "r4", "silver": "s3", "gold": "g3", "results": "x1"}
    plan = plan_prune(records, current, keep=1, model_gold={"g1": ["2", "10"]})
    # gold: g3 current and newest, g1 trained models 2 and 10; g2 goes
    assert plan.prune["gold"] == ["g2"]
    assert plan.keep["gold"]["g1"] == ["trained model version 2, 10"]
    # silver: s3 (current), s1 (input of the kept g1); s2 goes although r2 stays for s3
    assert plan.prune["silver"] == ["s2"]
    assert plan.keep["silver"]["s1"] == ["input of gold g1"]
    # raw: r4 current, r2 behind s3, r1 behind s1; r3 goes
    assert plan.prune["raw"] == ["r3"]
    assert set(plan.keep["raw"]) == {"r1", "r2", "r4"}
    assert "results" not in plan.prune  # the decision history is never pruned


def test_plan_counts_keep_among_unpruned_and_needs_at_least_one():
    records = {"raw": [_rec("r1"), {**_rec("r2"), "pruned_at": "x"}, _rec("r3")]}
    plan = plan_prune(records, {"raw": "r3"}, keep=2, model_gold={})
    assert set(plan.keep["raw"]) == {"r1", "r3"} and plan.prune["raw"] == []
    with pytest.raises(LakeError, match="at least 1"):
        plan_prune(records, {"raw": "r3"}, keep=0, model_gold={})


def _table(pub, name: str, n: int) -> None:
    pq.write_table(pa.table({"x": list(range(n))}), pub.table_dir(name) / "part-0.parquet")


def _build(lake: Lake, generations: int) -> list[dict[str, str]]:
    """raw -> silver -> gold -> results, `generations` times, each with its lineage recorded."""
    out = []
    for i in range(generations):
        with lake.publish("raw") as raw:
            _table(raw, "clients", 1000 + i)
        with lake.transaction() as tx:
            with tx.publish("silver", inputs={"raw": raw.version}) as silver:
                _table(silver, "clients", 900 + i)
            with tx.publish("gold", inputs={"silver": silver.version}) as gold:
                _table(gold, "obligation_snapshots", 100 + i)
        with lake.publish("results", inputs={"gold_version": gold.version}) as res:
            _table(res, "scores", 10 + i)
            res.history_tables.add("scores")
        out.append(
            {"raw": raw.version, "silver": silver.version, "gold": gold.version, "res": res.version}
        )
    return out


def _register(settings, gold_version: str) -> str:
    """A real registered model version in the lake's MLflow store, tagged with its training gold."""
    from cobranza.ml.tracking import client

    mlc = client(settings)
    mlc.create_registered_model(settings.model_name)
    mv = mlc.create_model_version(settings.model_name, source=str(settings.lake / "model"))
    mlc.set_model_version_tag(settings.model_name, mv.version, "gold_version", gold_version)
    return str(mv.version)


def test_prune_frees_old_versions_and_keeps_what_is_needed(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = _build(lake, 4)
    model = _register(settings, gens[0]["gold"])  # a model trained on the oldest gold

    dry = prune(settings, keep=2, dry_run=True)
    assert dry.pruned == {
        "raw": [gens[1]["raw"]],
        "silver": [gens[1]["silver"]],
        "gold": [gens[1]["gold"]],
    }
    assert all(lake.table_dir("raw", "clients", g["raw"]).is_dir() for g in gens)  # nothing gone

    done = prune(settings, keep=2)
    assert done.pruned == dry.pruned and done.freed_mb >= 0
    assert done.kept["gold"][gens[0]["gold"]] == [f"trained model version {model}"]
    for zone, table in (
        ("raw", "clients"),
        ("silver", "clients"),
        ("gold", "obligation_snapshots"),
    ):
        gone = lake.version_dir(zone, gens[1][zone])
        assert not (gone / table).exists()
        assert json.loads((gone / "_run.json").read_text())["pruned_at"]
        for g in (gens[0], gens[2], gens[3]):  # model lineage, newest two
            assert (lake.version_dir(zone, g[zone]) / table).is_dir()
    # every results version stays: the scores history is whole
    con = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM results.scores").fetchone()[0] == sum(
            10 + i for i in range(4)
        )
        assert con.execute("SELECT count(*) FROM gold.obligation_snapshots").fetchone()[0] == 103
        runs = con.execute(
            "SELECT zone, version, pruned_at IS NOT NULL FROM ml_metadata.lake_runs"
        ).fetchall()
    finally:
        con.close()
    assert len(runs) == 16  # every version ever published is still listed
    assert {(z, v) for z, v, pruned in runs if pruned} == {
        (z, gens[1][z]) for z in ("raw", "silver", "gold")
    }
    states = {(r["zone"], r["version"]): r["state"] for r in list_versions(lake)}
    assert states[("gold", gens[1]["gold"])] == "pruned"
    assert states[("gold", gens[3]["gold"])] == "complete"
    assert prune(settings, keep=2).pruned_versions == 0  # nothing left to do


def test_prune_refuses_while_a_run_writes_and_removes_orphans_of_dead_runs(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    _build(lake, 2)
    script = textwrap.dedent(
        f"""
        import os, signal, pyarrow as pa, pyarrow.parquet as pq
        from cobranza.lake import Lake
        with Lake({str(lake.root)!r}).publish("raw") as pub:
            pq.write_table(pa.table({{"x": [1]}}), pub.table_dir("clients") / "part-0.parquet")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    (orphan,) = [r for r in list_versions(lake) if r["state"] == "orphan"]

    with lake.publish("gold") as pub:  # a run in progress in this very process
        _table(pub, "obligation_snapshots", 5)
        (writing,) = [r for r in list_versions(lake) if r["state"] == "writing"]
        assert writing["version"] == pub.version
        with pytest.raises(
            LakeError, match=f"a run is writing into the lake \\(gold {pub.version}"
        ):
            prune(settings, keep=1)
        assert clean_orphans(lake) == [lake.zone_dir("raw") / "versions" / orphan["version"]]
        assert pub.dir.is_dir()  # the live run's folder is untouched
    assert lake.current_version("gold") == pub.version
    assert not any(r["state"] in ("orphan", "writing") for r in list_versions(lake))
    assert not list((lake.zone_dir("raw") / "versions").glob(".*.lock"))


def test_prune_never_removes_the_current_version_without_its_record(tmp_path):
    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    gens = generations(lake, 2)
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
        out = cli(lake, *command)
        text = flat(out.stderr)
        assert out.returncode == 1, (command, out.stderr)
        assert "Traceback" not in out.stderr + out.stdout
        assert str(current / "_run.json") in text, (command, text)
        assert "cobranza lake use gold VERSION" in text, (command, text)
    assert (current / "obligation_snapshots").is_dir()

    # the repair: point gold at a complete version; recorded, with a lineage warning
    out = cli(lake, "--json", "lake", "use", "gold", gens[0]["gold"], "--reason", "test")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["previous_version"] == gens[1]["gold"]
    assert result["warnings"] and gens[0]["silver"] in result["warnings"][0]
    assert lake.current_version("gold") == gens[0]["gold"]
    assert cli(lake, "catalog").returncode == 0
    cat = duckdb.connect(str(lake.catalog_path), read_only=True)
    try:
        assert cat.execute("SELECT count(*) FROM gold.obligation_snapshots").fetchone()[0] == 5
        event = cat.execute(
            "SELECT zone, version, previous_version, reason FROM ml_metadata.lake_pointer_events"
        ).fetchall()
    finally:
        cat.close()
    assert event == [("gold", gens[0]["gold"], gens[1]["gold"], "test")]


def test_prune_refuses_while_train_reads_the_lake(tmp_path, sim_extract):
    """`train` running, a new `etl`, then `lake prune --keep 1`: refused until train ends, and
    then the gold it trained on is kept."""
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
        while not ((lake.root / ".lake.lock").exists() and held_shared(lake)):
            assert train.poll() is None, train.communicate()
            assert time.time() < deadline
            time.sleep(0.01)
        run_etl(settings)  # publishing beside a reader is fine; train reads one of the two
        with pytest.raises(LakeError, match="a cobranza run is using the lake"):
            prune(settings, keep=1)
        out = cli(lake, "lake", "prune", "--keep", "1")
        assert out.returncode == 1
        assert "a cobranza run is using the lake" in flat(out.stderr)
        assert "nothing was pruned" in flat(out.stderr)
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
