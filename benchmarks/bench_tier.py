"""A book tier end to end on one machine: simulate, the floor, ingest, ETL, train on a sample, score.

Each stage runs as the CLI a user runs (`cobranza simulate --compress`, `ingest`, `etl`, `train`,
`score`), in its own process, measured by `bench_floor.measured` (wall and CPU seconds, peak RSS of
the process tree sampled every 0.1 s), with the disk the extract and the lake take after it and
the load average of the machine (shared: wall times grow with it, CPU seconds much less). The
floor (`bench_floor.floor`: plain DuckDB, CSV to Parquet and one SQL of the core gold) runs on the
same extract before ingest, so `floor_seconds`, `project_seconds` (ingest + etl) and their ratio
come from the same run; they go into the tier of `etl.json` as well.

DuckDB's budget is `--memory` (default 8GB, `COBRANZA_DUCKDB_MEMORY_LIMIT`); it spills to
`<lake>/_tmp`. Training reads the labeled rows of `--train-clients` clients (default 200,000,
`COBRANZA_TRAIN_SAMPLE_CLIENTS`), split as the whole book would be. The tier's extract and lake
are deleted at the end unless `--keep`. Results: `benchmarks/results/scale.json`, one entry per
tier. Never part of the test suite: `make bench-scale TIER=10m` runs it under `nice` and `ionice`.

Run: `python -m benchmarks.bench_tier CLIENTS [MONTHS] [--work DIR] [--extract DIR] [--memory 8GB]
[--train-clients N] [--keep] [--drop-extract]` (`--extract` reuses a simulated extract, plain or
gzip, and keeps it unless `--drop-extract`, which deletes the extract after ingest, for the disk).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_floor import REPO, RESULTS, measured
from benchmarks.bench_floor import save as save_floor

TIERS = {"100k": 100_000, "1m": 1_000_000, "3m": 3_000_000, "10m": 10_000_000}
MIN_FREE_GB = 15.0


def disk_gb(path: Path) -> float:
    """Bytes on disk under a folder (du), in GB."""
    if not path.exists():
        return 0.0
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return round(int(out.stdout.split()[0]) * 1024 / 1e9, 2)


def free_gb(path: Path) -> float:
    return round(shutil.disk_usage(path).free / 1e9, 1)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_tier")
    p.add_argument("clients", help="clients, or a tier name: " + ", ".join(TIERS))
    p.add_argument("months", nargs="?", type=int, default=24)
    p.add_argument("--work", type=Path, default=REPO / "bench-tier")
    p.add_argument("--extract", type=Path, default=None)
    p.add_argument("--memory", default="8GB")
    p.add_argument("--train-clients", type=int, default=200_000)
    p.add_argument("--keep", action="store_true")
    p.add_argument(
        "--drop-extract",
        action="store_true",
        help="delete the extract (simulated, or the one given) once ingest has validated it into "
        "the raw zone (a 10M book's gzip extract, 22 GB, and its lake do not fit the disk "
        "together)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    clients = TIERS.get(args.clients.lower()) or int(args.clients)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    extract = args.extract.resolve() if args.extract else work / "extract"
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    cobranza = str(Path(sys.executable).with_name("cobranza"))
    env = {
        **os.environ,
        "COBRANZA_DUCKDB_MEMORY_LIMIT": args.memory,
        "COBRANZA_TRAIN_SAMPLE_CLIENTS": str(args.train_clients),
        "COLUMNS": "200",
    }
    entry: dict = {
        "clients": clients,
        "months": args.months,
        "duckdb_memory_limit": args.memory,
        "train_sample_clients": args.train_clients,
        "ingest_workers": os.environ.get("COBRANZA_INGEST_WORKERS", "cores"),
        "machine": {"cpus": os.cpu_count(), "free_disk_gb_at_start": free_gb(work)},
        "stages": {},
    }
    stages = entry["stages"]

    def stage(name: str, cmd: list[str], **kw) -> dict:
        load_before = round(os.getloadavg()[0], 2)
        try:
            m = measured(cmd, env=env, cwd=REPO, **kw)
        except RuntimeError as exc:  # the stage failed: say which and why, keep what was measured
            stages[name] = {"failed": str(exc)[-1500:]}
            _save(clients, args.months, entry)
            raise
        m.pop("output", None)
        m.update(
            load_average_1m_before=load_before,
            load_average_1m_after=round(os.getloadavg()[0], 2),
            extract_gb=disk_gb(extract),
            lake_gb=disk_gb(lake),
            free_disk_gb=free_gb(work),
        )
        stages[name] = m
        print(
            f"{name}: {m['seconds']} s, CPU {m['cpu_seconds']} s, peak {m['peak_rss_mb']} MB, "
            f"lake {m['lake_gb']} GB, load {m['load_average_1m_after']}",
            flush=True,
        )
        _save(clients, args.months, entry)
        if m["free_disk_gb"] < MIN_FREE_GB:
            raise SystemExit(f"stopping: {m['free_disk_gb']} GB free, below {MIN_FREE_GB} GB")
        return m

    try:
        if args.extract is None:
            shutil.rmtree(extract, ignore_errors=True)
            stage(
                "simulate",
                [
                    cobranza,
                    "simulate",
                    "--out",
                    str(extract),
                    "--clients",
                    str(clients),
                    "--months",
                    str(args.months),
                    "--seed",
                    "11",
                    "--compress",
                ],
            )
        if not any(extract.glob("*.csv.gz")):
            floor_out = work / "floor"
            shutil.rmtree(floor_out, ignore_errors=True)
            stage(
                "floor",
                [
                    sys.executable,
                    "-m",
                    "benchmarks.bench_floor",
                    "--floor",
                    str(extract),
                    str(floor_out),
                ],
            )
            shutil.rmtree(floor_out, ignore_errors=True)
        base = [cobranza, "--lake", str(lake), "--json"]
        ingest = stage("ingest", [*base, "ingest", str(extract)])
        if args.drop_extract:
            shutil.rmtree(extract, ignore_errors=True)
            entry["extract_dropped_after_ingest_gb"] = ingest["extract_gb"]
        etl = stage("etl", [*base, "etl"])
        stage("train", [*base, "train"])
        stage("score", [*base, "score"])
    finally:
        if not args.keep:
            shutil.rmtree(lake, ignore_errors=True)
            if args.extract is None:
                shutil.rmtree(extract, ignore_errors=True)
    peak = max(s["peak_rss_mb"] for s in stages.values())
    entry["peak_rss_mb"] = peak
    entry["peak_under_20_gib"] = peak < 20 * 1024
    if "floor" in stages:
        project = round(ingest["seconds"] + etl["seconds"], 2)
        project_cpu = round(ingest["cpu_seconds"] + etl["cpu_seconds"], 2)
        floor = stages["floor"]
        ratios = {
            "floor_seconds": floor["seconds"],
            "project_seconds": project,
            "ratio": round(project / floor["seconds"], 2),
            "floor_cpu_seconds": floor["cpu_seconds"],
            "project_cpu_seconds": project_cpu,
            "cpu_ratio": round(project_cpu / floor["cpu_seconds"], 2),
            "floor_load_average_1m": floor["load_average_1m_after"],
            "project_load_average_1m": etl["load_average_1m_after"],
            "floor_source": "benchmarks/bench_tier.py (scale.json), one run of each",
        }
        entry.update(ratios)
        save_floor(
            f"{clients}x{args.months}", {"clients": clients, "months": args.months, **ratios}
        )
    _save(clients, args.months, entry)
    return entry


def _save(clients: int, months: int, entry: dict) -> None:
    path = RESULTS / "scale.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"tiers": {}}
    data["tiers"][f"{clients}x{months}"] = {**entry, "recorded": time.strftime("%Y-%m-%d %H:%M")}
    data["tiers"] = dict(sorted(data["tiers"].items(), key=lambda kv: kv[1]["clients"]))
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
