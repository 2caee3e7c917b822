"""`cobranza score` on DuckDB beside Spark `local[2]`: the same cut, rows per second, peak memory.

On a copy of a lake with a champion (`--lake`, e.g. the lake of `make run` at 100k clients; without
it `cobranza pipeline --simulate-clients CLIENTS` builds one in `--work`), each engine scores the
latest cut as a user runs it (a CLI process each, `bench_floor.measured`: wall and CPU seconds and
peak RSS of the process tree, the JVM included), then the two results versions are compared row by
row. `--replicate K` also scores a cut K times larger: a gold version whose latest cut is that cut's
rows K times over (obligation ids suffixed `-r<i>`, same features), published in the copy only, to
see the rate at volume. Results: `benchmarks/results/score_spark.json`.

Run: `python -m benchmarks.bench_score_spark [--lake LAKE] [--clients 100000] [--replicate 50]`.
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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from benchmarks.bench_floor import REPO, RESULTS, measured

COBRANZA = str(Path(sys.executable).with_name("cobranza"))
DRIVER_MEMORY = "2g"
FLOATS = ("probability", "p_roll_no_action", "p_roll_action", "roll_loss", "expected_benefit")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_score_spark")
    p.add_argument("--lake", type=Path, default=None, help="a lake with a champion (copied)")
    p.add_argument("--clients", type=int, default=100_000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--work", type=Path, default=REPO / "benchmarks" / "work" / "score-spark")
    p.add_argument("--replicate", type=int, default=0)
    p.add_argument("--master", default="local[2]")
    return p.parse_args(argv)


def results_table(lake: Path, version: str) -> dict:
    from cobranza.lake import Lake

    table = ds.dataset(str(Lake(lake).table_dir("results", "latest", version))).to_table()
    return table.sort_by("obligation_id").to_pandas()


def agreement(lake: Path, duck: dict, spark: dict) -> dict:
    """How far the two engines' rows are apart: the largest float difference, mismatches."""
    a = results_table(lake, duck["results_version"])
    b = results_table(lake, spark["results_version"])
    same_ids = a["obligation_id"].tolist() == b["obligation_id"].tolist()
    out: dict = {"rows": len(a), "same_obligations": same_ids}
    if not same_ids:
        return out
    floats = [c for c in a.columns if c in FLOATS or c.endswith("_contribution")]
    out["max_abs_float_difference"] = float(
        max(
            np.nanmax(np.abs(a[c].to_numpy(float) - b[c].to_numpy(float)), initial=0.0)
            for c in floats
        )
    )
    others = [c for c in a.columns if c not in floats and c != "scoring_run_id"]
    out["differing_cells"] = int(
        sum(((a[c] != b[c]) & ~(a[c].isna() & b[c].isna())).sum() for c in others)
    )
    out["equal"] = out["differing_cells"] == 0 and out["max_abs_float_difference"] <= 1e-12
    return out


def replicate_latest_cut(lake: Path, times: int) -> int:
    """Publish a gold version whose latest cut holds its rows `times` over; returns its rows."""
    from cobranza.lake import Lake

    store = Lake(lake)
    gold = ds.dataset(str(store.table_dir("gold", "obligation_snapshots"))).to_table()
    cut = pc.max(gold["cut_date"]).as_py()
    rows = gold.filter(
        pc.equal(gold["cut_date"], pa.scalar(cut, gold.schema.field("cut_date").type))
    )
    ids = rows["obligation_id"]
    copies = [
        rows.set_column(
            rows.schema.get_field_index("obligation_id"),
            "obligation_id",
            pc.binary_join_element_wise(ids, pa.scalar(f"-r{i}"), ""),
        )
        for i in range(times)
    ]
    big = pa.concat_tables(copies)
    with store.publish("gold", inputs={"benchmark": f"latest cut x {times}"}) as pub:
        pq.write_table(big, pub.table_dir("obligation_snapshots") / "part-0.parquet")
        pub.meta["as_of"] = str(cut)
    return big.num_rows


def score_both(lake: Path, master: str) -> dict:
    env = {**os.environ, "COBRANZA_SPARK_DRIVER_MEMORY": DRIVER_MEMORY, "COLUMNS": "200"}
    base = [COBRANZA, "--lake", str(lake), "--json", "score"]
    out: dict = {}
    for name, extra in (
        ("duckdb", ["--engine", "duckdb"]),
        ("spark_local", ["--engine", "spark", "--spark-master", master]),
    ):
        before = os.getloadavg()[0]
        m = measured([*base, *extra], env=env)
        summary = m.pop("output") or {}
        out[name] = {
            **m,
            "rows": summary.get("obligations"),
            "rows_per_second_wall": round(summary.get("obligations", 0) / m["seconds"]),
            # the score stage alone: no process start, JVM start, champion loading or writing
            "rows_per_second_score_stage": summary.get("rows_per_second"),
            "stages": summary.get("timings"),
            "results_version": summary.get("results_version"),
            "load_average_1m_before": round(before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        }
    out["spark_local"]["setup"] = f"{master}, driver {DRIVER_MEMORY}"
    out["agreement"] = agreement(lake, out["duckdb"], out["spark_local"])
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    work = args.work.resolve()
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    if args.lake is not None:
        shutil.copytree(args.lake.resolve(), lake, symlinks=True)
        source = f"copy of {args.lake}"
    else:
        subprocess.run(
            [
                COBRANZA,
                "--lake",
                str(lake),
                "--quiet",
                "pipeline",
                "--extract",
                str(work / "extract"),
                "--simulate-clients",
                str(args.clients),
                "--months",
                str(args.months),
            ],
            check=True,
        )
        source = f"cobranza pipeline --simulate-clients {args.clients} --months {args.months}"
    result: dict = {
        "lake": source,
        "machine": {"cpus": os.cpu_count()},
        "latest_cut": score_both(lake, args.master),
    }
    if args.replicate > 1:
        rows = replicate_latest_cut(lake, args.replicate)
        result["replicated_cut"] = {
            "times": args.replicate,
            "rows": rows,
            **score_both(lake, args.master),
        }
    result["recorded"] = time.strftime("%Y-%m-%d %H:%M")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "score_spark.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    for key in ("latest_cut", "replicated_cut"):
        if key in result:
            r = result[key]
            for name in ("duckdb", "spark_local"):
                e = r[name]
                print(
                    f"{key} {name}: {e['rows']:,} rows in {e['seconds']:.1f} s wall "
                    f"({e['rows_per_second_wall']:,} rows/s; score stage "
                    f"{(e['stages'] or {}).get('score')} s, {e['rows_per_second_score_stage']:,} "
                    f"rows/s), CPU {e['cpu_seconds']:.1f} s, "
                    f"peak {e['peak_rss_mb']:,} MB"
                )
            print(f"{key} agreement: {r['agreement']}")
    if args.lake is None:
        shutil.rmtree(work / "extract", ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
