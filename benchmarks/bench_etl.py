"""ETL time and memory: the transform part of the 1M clients x 24 months target, and Spark's time.

Simulates an extract (not timed), ingests it (timed) and runs `run_etl` on DuckDB (timed, peak RSS
of this process sampled, DuckDB included) and optionally on Spark (timed; peak RSS of the JVM child
added). Writes `benchmarks/results/etl.json` (one entry per tier run, see `save`) with seconds per
stage, gold rows per second and the linear extrapolation to 1M clients, both from wall time and
from CPU time over 2 cores (the machine is shared, so wall time overstates what an idle machine
would see).
`--cluster` also runs `cobranza etl` as CLI processes on the same lake with DuckDB, Spark
`local[2]` and Spark on a standalone cluster started for it (`engines_cli` in the tier).
Run: `python3 -m uv run python -m benchmarks.bench_etl [CLIENTS] [MONTHS] [--spark] [--cluster]
[--lake DIR]`
(`--lake DIR` reuses an already ingested lake and skips simulate + ingest; `--extract DIR` reuses
an already simulated extract, ingested and transformed in one timed run, and keeps it).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import PeakRSS, cpu_seconds

RESULTS = Path(__file__).parent / "results"
TARGET_CLIENTS = 1_000_000
TARGET_SECONDS_INGEST_AND_ETL = 600.0
TARGET_PEAK_GIB = 6.0


def _child_cpu() -> float:
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(Exception):
            t = child.cpu_times()
            total += t.user + t.system
    return total


def _timed(fn, *args, **kwargs) -> tuple[dict, float, float, int]:
    with PeakRSS() as mem:
        cpu0, kid0 = cpu_seconds(), _child_cpu()
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0 + max(_child_cpu() - kid0, 0.0)
    return out, seconds, cpu, mem.peak


def save(result: dict) -> dict:
    """Write `etl.json`: the latest run, and every tier run so far (keyed clients x months).

    Tiers accumulate so the 1M-extrapolation tier (DuckDB) and the Spark tier can be run
    separately; a tier rerun replaces its own entry only.
    """
    path = RESULTS / "etl.json"
    tiers: dict = {}
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if "tiers" in old:
            tiers = old["tiers"]
        elif "clients" in old:
            tiers = {f"{old['clients']}x{old['months']}": old}
    key = f"{result['clients']}x{result['months']}"
    previous = tiers.get(key, {})
    # a rerun of part of a tier (DuckDB only...) keeps the tier's other figures (Spark, floor)
    tiers[key] = {**previous, **result}
    out = {"latest": key, "tiers": dict(sorted(tiers.items(), key=lambda kv: kv[1]["clients"]))}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


CLUSTER_WORKER_MEMORY = "2g"
CLUSTER_EXECUTOR_MEMORY = "1536m"
LOCAL_DRIVER_MEMORY = "3g"


def engines_side_by_side(lake: Path, work: Path) -> dict:
    """`cobranza etl` as a user runs it (a CLI process each) on the same raw version: DuckDB,
    Spark `local[2]`, and Spark on a standalone cluster of two one-core workers on loopback
    (`tests/scale/spark_cluster.py`), started before and stopped after its run (not timed).
    """
    from tests.scale.spark_cluster import SparkStandalone

    from benchmarks.bench_floor import measured

    cobranza = str(Path(sys.executable).with_name("cobranza"))
    base = [cobranza, "--lake", str(lake), "--json", "etl"]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    out: dict = {}

    def record(name: str, m: dict) -> None:
        summary = m.pop("output") or {}
        out[name] = {**m, "stages": summary.get("seconds"), "gold": summary.get("gold")}
        if name != "duckdb":
            out[name]["gold_equal_counts"] = summary.get("gold") == out["duckdb"]["gold"]

    record("duckdb", measured([*base, "--engine", "duckdb"], env=env))
    local_env = {**env, "COBRANZA_SPARK_DRIVER_MEMORY": LOCAL_DRIVER_MEMORY}
    record(
        "spark_local2",
        measured([*base, "--engine", "spark", "--spark-master", "local[2]"], env=local_env),
    )
    out["spark_local2"]["setup"] = f"local[2], driver {LOCAL_DRIVER_MEMORY}"
    cluster_env = {
        **env,
        "COBRANZA_SPARK_DRIVER_MEMORY": "1g",
        "COBRANZA_SPARK_CONF": json.dumps({"spark.executor.memory": CLUSTER_EXECUTOR_MEMORY}),
    }
    t0 = time.perf_counter()
    with SparkStandalone(work / "cluster", worker_memory=CLUSTER_WORKER_MEMORY) as cluster:
        start = round(time.perf_counter() - t0, 2)
        cmd = [*base, "--engine", "spark", "--spark-master", cluster.master_url]
        pids = tuple(p.pid for p in cluster.procs.values())
        record("spark_standalone", measured(cmd, also=pids, env=cluster_env))
        apps = cluster.state()["completedapps"]
    out["spark_standalone"].update(
        setup=f"master + 2 workers x 1 core x {CLUSTER_WORKER_MEMORY} on loopback, executors "
        f"{CLUSTER_EXECUTOR_MEMORY}, driver 1g",
        cluster_start_seconds=start,
        applications=[{k: a[k] for k in ("name", "state", "cores", "duration")} for a in apps],
        peak_note="peak RSS counts the driver, the master, the workers and the executors",
    )
    return out


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    flags = {a for a in argv if a.startswith("--")}
    lake_arg = extract_arg = None
    if "--lake" in argv:
        lake_arg = Path(argv[argv.index("--lake") + 1])
        flags.discard("--lake")
    if "--extract" in argv:
        extract_arg = Path(argv[argv.index("--extract") + 1])
        flags.discard("--extract")
    positional = [
        a for a in argv if not a.startswith("--") and Path(a) not in (lake_arg, extract_arg)
    ]
    clients = int(positional[0]) if positional else 20_000
    months = int(positional[1]) if len(positional) > 1 else 24
    with_spark = "--spark" in flags
    with_cluster = "--cluster" in flags

    from cobranza.config import load_settings
    from cobranza.contract import STANDARD
    from cobranza.ingest import ingest_extract
    from cobranza.ingest.budget import ingest_workers
    from cobranza.lake import Lake
    from cobranza.simulate import SimulationConfig, simulate
    from cobranza.transforms import run_etl

    if with_cluster and lake_arg is not None:
        work = Path(tempfile.mkdtemp(prefix="bench-etl-"))
        try:
            runs = engines_side_by_side(lake_arg, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        save(
            {
                "clients": clients,
                "months": months,
                "engines_cli": {**runs, "load_average_1m": round(os.getloadavg()[0], 2)},
            }
        )
        print(", ".join(f"{k} {v['seconds']}s" for k, v in runs.items()))
        return runs

    memory_limit = os.environ.get("BENCH_DUCKDB_MEMORY", "4GB")
    work = Path(tempfile.mkdtemp(prefix="bench-etl-"))
    result: dict = {"clients": clients, "months": months, "duckdb_memory_limit": memory_limit}
    try:
        if lake_arg is None:
            lake = work / "lake"
            extract = extract_arg or work / "extract"
            if extract_arg is None:
                t0 = time.perf_counter()
                simulate(extract, SimulationConfig(clients=clients, months=months, seed=11))
                result["simulate_seconds"] = round(time.perf_counter() - t0, 2)
            else:
                result["extract"] = str(extract)
            settings = load_settings(lake=lake, duckdb_memory_limit=memory_limit)
            report, secs, cpu, peak = _timed(ingest_extract, settings, extract, STANDARD)
            result["csv_rows"] = report["rows_read"]
            result["ingest"] = {
                "seconds": round(secs, 2),
                "cpu_seconds": round(cpu, 2),
                "peak_rss_mb": round(peak / 2**20),
                "workers": ingest_workers(settings),
                "rows_per_second": round(report["rows_read"] / secs),
                "files": Lake(lake).run_info("raw").get("timings", {}),
            }
            if extract_arg is None:
                shutil.rmtree(extract, ignore_errors=True)
        else:
            lake = lake_arg
            result["lake"] = str(lake)

        settings = load_settings(lake=lake, engine="duckdb", duckdb_memory_limit=memory_limit)
        summary, secs, cpu, peak = _timed(run_etl, settings)
        result["duckdb"] = {
            "seconds": round(secs, 2),
            "cpu_seconds": round(cpu, 2),
            "peak_rss_mb": round(peak / 2**20),
            "stages": summary["seconds"],
            "silver_rows": summary["silver_rows"],
            "gold": summary["gold"],
            "gold_rows_per_second": round(summary["gold"]["rows"] / secs),
            "event_rows_per_second": round(
                sum(summary["silver_rows"].values()) / max(summary["seconds"]["total"], 1e-9)
            ),
        }
        if "ingest" in result:
            total = result["ingest"]["seconds"] + secs
            result["ingest_plus_etl"] = {
                "seconds": round(total, 2),
                "peak_rss_mb": max(
                    result["ingest"]["peak_rss_mb"], result["duckdb"]["peak_rss_mb"]
                ),
                "csv_rows_per_second": round(result["csv_rows"] / total),
            }
        scale = TARGET_CLIENTS / clients
        ingest_secs = result.get("ingest", {}).get("seconds")
        ingest_cpu = result.get("ingest", {}).get("cpu_seconds")
        if clients >= TARGET_CLIENTS and "ingest_plus_etl" in result:
            both = result["ingest_plus_etl"]
            result["target_met"] = {  # measured at the target's own size: no extrapolation
                "seconds": both["seconds"] < TARGET_SECONDS_INGEST_AND_ETL,
                "peak_memory": both["peak_rss_mb"] < TARGET_PEAK_GIB * 1024,
            }
        else:
            result["extrapolated_1m"] = {
                "etl_seconds_wall": round(secs * scale),
                "etl_seconds_from_cpu_2_cores": round(cpu * scale / 2),
                "ingest_plus_etl_seconds_wall": round((secs + ingest_secs) * scale)
                if ingest_secs
                else None,
                "ingest_plus_etl_seconds_from_cpu_2_cores": round((cpu + ingest_cpu) * scale / 2)
                if ingest_cpu
                else None,
                "note": "linear in clients; peak memory is bounded by duckdb_memory_limit (DuckDB "
                "spills to its temp folder), not extrapolated",
            }
        if with_spark:
            s_settings = load_settings(
                lake=lake, engine="spark", spark_master="local[2]", spark_driver_memory="3g"
            )
            s_summary, s_secs, s_cpu, s_peak = _timed(run_etl, s_settings)
            result["spark"] = {
                "master": "local[2]",
                "seconds": round(s_secs, 2),
                "cpu_seconds": round(s_cpu, 2),
                "peak_rss_mb_with_jvm": round(s_peak / 2**20),
                "stages": s_summary["seconds"],
                "gold_equal_counts": s_summary["gold"] == summary["gold"],
            }
        if with_cluster:
            result["engines_cli"] = engines_side_by_side(lake, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result["target"] = (
        f"DuckDB ingest + ETL of {TARGET_CLIENTS:,} clients x 24 months < "
        f"{TARGET_SECONDS_INGEST_AND_ETL:.0f}s and < {TARGET_PEAK_GIB:.0f} GiB"
    )
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    save(result)
    d = result["duckdb"]
    line = (
        f"etl duckdb: {clients:,} clients x {months} months, gold {d['gold']['rows']:,} rows in "
        f"{d['seconds']:.1f}s (CPU {d['cpu_seconds']:.1f}s), peak RSS {d['peak_rss_mb']:,} MB"
    )
    if "extrapolated_1m" in result:
        x = result["extrapolated_1m"]
        line += (
            f"; 1M clients extrapolated: ETL {x['etl_seconds_wall']:,}s wall, "
            f"{x['etl_seconds_from_cpu_2_cores']:,}s from CPU"
        )
    if "ingest" in result:
        line += f"; ingest {result['ingest']['seconds']:.1f}s"
    if "target_met" in result:
        line += f"; target met: {result['target_met']}"
    if "spark" in result:
        line += f"; spark local[2] {result['spark']['seconds']:.1f}s"
    for name, run in result.get("engines_cli", {}).items():
        if isinstance(run, dict) and "seconds" in run:
            line += f"; cli {name} {run['seconds']:.1f}s"
    print(line)
    return result


if __name__ == "__main__":
    main()
