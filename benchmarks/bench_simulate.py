"""Simulator throughput and memory against the 1M clients x 24 months target (15 min, 4 GiB),
and the figures of the simulated world (self-cure rate, oracle AUC, holdout, effect on the roll).

Runs `cobranza.simulate.simulate` in a child process (so peak memory is the simulator's alone,
sampled with psutil and checked against the child's ru_maxrss), then writes
`benchmarks/results/simulate.json` with seconds, rows/s, peak RSS and the linear extrapolation to
1M clients. Default tier 100k clients x 24 months; `--full` runs the 1M target itself.
Run: `python3 -m uv run python -m benchmarks.bench_simulate [--clients N] [--months M] [--full]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).parent / "results"
TARGET_CLIENTS = 1_000_000
TARGET_SECONDS = 15 * 60
TARGET_PEAK_GIB = 4.0

CHILD = """
import json, sys
from pathlib import Path
from cobranza.simulate import SimulationConfig, simulate
summary = simulate(Path(sys.argv[1]), SimulationConfig(
    clients=int(sys.argv[2]), months=int(sys.argv[3]), seed=42, noise=0.002))
print(json.dumps(summary))
"""


def run(clients: int, months: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_simulate_"))
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(out / "extract"), str(clients), str(months)],
            stdout=subprocess.PIPE,
            text=True,
        )
        peak = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            child = psutil.Process(proc.pid)
            while not stop.is_set():
                try:
                    peak = max(peak, child.memory_info().rss)
                except psutil.Error:
                    return
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, _ = proc.communicate()
        stop.set()
        sampler.join()
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"simulate child failed with exit code {proc.returncode}")
        summary = json.loads(stdout.strip().splitlines()[-1])
        maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        size = sum(p.stat().st_size for p in (out / "extract").glob("*.csv*"))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    peak = max(peak, maxrss)
    scale = TARGET_CLIENTS / clients
    return {
        "clients": clients,
        "months": months,
        "wall_seconds": round(wall, 1),
        "simulate_seconds": summary["seconds"],
        "rows_total": summary["rows_total"],
        "rows_per_second": round(summary["rows_total"] / wall),
        "megabytes_written": round(size / 1e6, 1),
        "peak_rss_gib": round(peak / 2**30, 3),
        "self_cure_rate": summary["self_cure_rate"],
        "oracle_auc": summary["oracle_auc"],
        "holdout_share": summary["holdout_share"],
        "effect_on_roll_mean": summary["effect_on_roll_mean"],
        "effect_on_roll_sd": summary["effect_on_roll_sd"],
        "roll_rates": summary["roll_rates"],
        "extrapolated_1m_seconds": round(wall * scale, 1),
        "target_seconds": TARGET_SECONDS,
        "target_peak_gib": TARGET_PEAK_GIB,
        "note": "peak memory is bounded by the fixed chunk (25k clients) and does not grow "
        "with clients; time extrapolates linearly in clients",
        "machine": {"cpus": psutil.cpu_count(), "python": platform.python_version()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--full", action="store_true", help="the 1M clients target itself")
    args = parser.parse_args(argv)
    clients = TARGET_CLIENTS if args.full else args.clients
    result = run(clients, args.months)
    RESULTS.mkdir(exist_ok=True)
    name = "simulate_full.json" if args.full else "simulate.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"simulate {clients:,} clients x {args.months} months: {result['wall_seconds']}s, "
        f"{result['rows_per_second']:,} rows/s, peak {result['peak_rss_gib']} GiB; "
        f"1M extrapolated {result['extrapolated_1m_seconds']}s (target {TARGET_SECONDS}s, "
        f"{TARGET_PEAK_GIB} GiB)"
    )
    return result


if __name__ == "__main__":
    main()
