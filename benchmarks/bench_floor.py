"""The single-machine floor beside the project, measured in one run on the same extract.

The floor is what plain DuckDB needs for the same job without the project: copy each CSV of the
extract to Parquet (types from the contract, bad rows skipped), then one hand-written SQL query of
the target (`self_cure_debit`), eligibility and the core debit and payment features over those
Parquet files, written to Parquet. The project is `cobranza ingest` + `cobranza etl` as a user runs
them: two CLI processes. Both run in separate processes, alternately, `--repeat` times (default 2)
on a shared machine; the best run of each gives the ratio. Peak RSS is sampled over each process
tree, CPU seconds are the children's rusage.

Writes, per tier, `floor_seconds`, `project_seconds` and `ratio` (project / floor) into
`benchmarks/results/etl.json` (the tier's other figures are kept), with each run's steps, the
floor's gold counts beside the project's, and the load average.

Run: `python3 -m uv run python -m benchmarks.bench_floor [CLIENTS] [MONTHS] [--repeat N]
[--extract DIR] [--baseline GITREF]` (default 100,000 x 24; `--extract` reuses a simulated extract
and keeps it; `--baseline` also runs that git revision's `cobranza ingest` + `etl`, interleaved
with the others, so a change is measured before and after in one run on the same load).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "decimal": "DOUBLE",
    "integer": "BIGINT",
}
HORIZON_DAYS = 30
WINDOWS = (3, 6, 12)

# ---- the floor ---------------------------------------------------------------------------------
FLOOR_GOLD = """
COPY (
WITH cuts AS (
    SELECT * FROM read_parquet('{p}/portfolio_cuts.parquet') WHERE days_past_due BETWEEN 1 AND 30
),
latest AS (SELECT max(cut_date) AS latest_cut FROM read_parquet('{p}/portfolio_cuts.parquet')),
pay AS (
    SELECT obligation_id, CAST(payment_ts AS DATE) AS d, amount, channel = '{debit}' AS is_debit
    FROM read_parquet('{p}/payments.parquet')
),
attempts AS (
    SELECT m.obligation_id, CAST(a.attempt_ts AS DATE) AS d, a.result
    FROM read_parquet('{p}/debit_attempts.parquet') a
    JOIN read_parquet('{p}/debit_mandates.parquet') m USING (mandate_id)
),
outcome AS (
    SELECT c.obligation_id, c.cut_date, coalesce(sum(p.amount), 0) AS paid,
           count(p.amount) FILTER (WHERE NOT p.is_debit) AS other
    FROM cuts c LEFT JOIN pay p
      ON p.obligation_id = c.obligation_id AND p.d > c.cut_date
     AND p.d <= c.cut_date + INTERVAL {h} DAY
    GROUP BY ALL
),
mandate AS (
    SELECT c.obligation_id, c.cut_date,
           bool_or(c.cut_date <> l.latest_cut OR m.status = 'ACTIVE') AS eligible
    FROM cuts c CROSS JOIN latest l
    JOIN read_parquet('{p}/debit_mandates.parquet') m
      ON m.obligation_id = c.obligation_id AND m.start_date <= c.cut_date
     AND (m.end_date IS NULL OR m.end_date > c.cut_date)
    GROUP BY ALL
),
debit AS (
    SELECT c.obligation_id, c.cut_date, {debit_aggs}
    FROM cuts c JOIN attempts a
      ON a.obligation_id = c.obligation_id AND a.d <= c.cut_date
     AND a.d > c.cut_date - INTERVAL 12 MONTH
    GROUP BY ALL
),
paid AS (
    SELECT c.obligation_id, c.cut_date, {pay_aggs}
    FROM cuts c JOIN pay p
      ON p.obligation_id = c.obligation_id AND p.d <= c.cut_date
     AND p.d > c.cut_date - INTERVAL 12 MONTH
    GROUP BY ALL
)
SELECT c.obligation_id, c.cut_date, c.days_past_due, c.amount_past_due,
       coalesce(m.eligible, false) AS eligible,
       CASE WHEN c.cut_date + INTERVAL {h} DAY > DATE '{as_of}' THEN NULL
            ELSE (c.amount_past_due <= o.paid + 0.005 AND o.other = 0)::BIGINT END
           AS self_cure_debit,
       d.* EXCLUDE (obligation_id, cut_date), p.* EXCLUDE (obligation_id, cut_date)
FROM cuts c
JOIN outcome o USING (obligation_id, cut_date)
LEFT JOIN mandate m USING (obligation_id, cut_date)
LEFT JOIN debit d USING (obligation_id, cut_date)
LEFT JOIN paid p USING (obligation_id, cut_date)
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
"""


def _window_aggs() -> tuple[str, str]:
    debit, pay = [], []
    for k in WINDOWS:
        inside = f"d > cut_date - INTERVAL {k} MONTH"
        debit += [
            f"count(*) FILTER (WHERE {inside}) AS debit_attempts_{k}m",
            f"count(*) FILTER (WHERE {inside} AND result = 'SUCCESS') / "
            f"nullif(count(*) FILTER (WHERE {inside}), 0) AS debit_success_rate_{k}m",
        ]
        pay += [
            f"count(*) FILTER (WHERE {inside}) AS payments_{k}m",
            f"coalesce(sum(amount) FILTER (WHERE {inside}), 0) AS amount_paid_{k}m",
            f"sum(amount) FILTER (WHERE {inside} AND is_debit) / "
            f"nullif(sum(amount) FILTER (WHERE {inside}), 0) AS debit_payment_share_{k}m",
        ]
    debit.append("count(*) FILTER (WHERE result = 'REJECTED') AS debit_rejects_12m")
    return ", ".join(debit), ", ".join(pay)


def floor(extract: Path, out: Path) -> dict:
    """The floor itself (run in its own process): CSV -> Parquet, then the gold query."""
    import duckdb

    from cobranza.contract import DEBIT_CHANNEL, FILES

    out.mkdir(parents=True, exist_ok=True)
    steps: dict[str, float] = {}
    con = duckdb.connect()
    t_all = time.perf_counter()
    for spec in FILES:
        csv = extract / spec.filename
        if not csv.exists():
            continue
        cols = ", ".join(f"'{c.name}': '{DUCKDB_TYPES[c.type]}'" for c in spec.columns)
        t0 = time.perf_counter()
        con.execute(
            f"COPY (SELECT * FROM read_csv('{csv}', header = true, columns = {{{cols}}}, "
            f"ignore_errors = true)) TO '{out / spec.stem}.parquet' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        steps[f"copy.{spec.stem}"] = round(time.perf_counter() - t0, 3)
    steps["copy"] = round(time.perf_counter() - t_all, 3)
    as_of = json.loads((extract / "manifest.json").read_text())["as_of"]
    debit_aggs, pay_aggs = _window_aggs()
    gold = out / "floor_gold.parquet"
    t0 = time.perf_counter()
    con.execute(
        FLOOR_GOLD.format(
            p=out,
            h=HORIZON_DAYS,
            debit=DEBIT_CHANNEL,
            as_of=as_of,
            out=gold,
            debit_aggs=debit_aggs,
            pay_aggs=pay_aggs,
        )
    )
    steps["gold"] = round(time.perf_counter() - t0, 3)
    rows, eligible, labeled, positives, columns = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE eligible), count(self_cure_debit), "
        f"sum(self_cure_debit), (SELECT count(*) FROM (DESCRIBE SELECT * FROM '{gold}')) "
        f"FROM '{gold}'"
    ).fetchone()
    con.close()
    gold_counts = {
        "rows": rows,
        "eligible": eligible,
        "labeled": labeled,
        "positives": int(positives or 0),
    }
    return {"steps": steps, "gold": gold_counts, "gold_columns": columns}


# ---- measuring a process ---------------------------------------------------------------------------
def measured(cmd: list[str], also: tuple[int, ...] = (), **kwargs) -> dict:
    """Wall and CPU seconds and peak RSS (process tree, sampled every 0.1 s) of one command.

    `also`: pids whose trees count too (a Spark cluster's daemons and executors). CPU is the
    larger of the children's rusage and the CPU sampled over the trees (rusage misses processes
    their parent never waited for, such as the JVM of a PySpark driver).
    """
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )
    peak = 0
    first_cpu: dict[int, float] = {}  # CPU of each process when first seen, and lately
    last_cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        roots = []
        for pid in (proc.pid, *also):
            with contextlib.suppress(psutil.Error):
                roots.append(psutil.Process(pid))
        started = True
        while not stop.is_set():
            total = 0
            for root in roots:
                with contextlib.suppress(psutil.Error):  # ended meanwhile
                    for p in (root, *root.children(recursive=True)):
                        with contextlib.suppress(psutil.Error):
                            total += p.memory_info().rss
                            t = p.cpu_times()
                            used = t.user + t.system
                            # processes already running at the start count from then on
                            first_cpu.setdefault(
                                p.pid, used if started and p.pid != proc.pid else 0.0
                            )
                            last_cpu[p.pid] = used
            started = False
            peak = max(peak, total)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(cpu, sum(last_cpu[p] - first_cpu[p] for p in last_cpu))
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(peak / 2**20),
        # the machine's 1-minute load as the command ends (its own work included)
        "load_average_1m": round(os.getloadavg()[0], 2),
        "output": json.loads(stdout) if stdout.strip().startswith("{") else None,
    }


def run_floor(extract: Path, work: Path) -> dict:
    out = work / "floor"
    shutil.rmtree(out, ignore_errors=True)
    m = measured(
        [sys.executable, "-m", "benchmarks.bench_floor", "--floor", str(extract), str(out)],
        cwd=REPO,
    )
    shutil.rmtree(out, ignore_errors=True)
    result = m.pop("output")
    return {**m, **result}


def checkout(ref: str, work: Path) -> Path:
    """The `src/` folder of a git revision of this repository, for the `--baseline` runs."""
    dest = work / f"baseline-{ref.replace('/', '_')}"
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "src"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src"


def run_project(extract: Path, work: Path, src: Path | None = None) -> dict:
    """`cobranza ingest` + `cobranza etl`; with `src`, that source tree's code (the same
    environment, its `src/` first on the path)."""
    lake = work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    cobranza = str(Path(sys.executable).with_name("cobranza"))
    env = {
        **os.environ,
        "COBRANZA_DUCKDB_MEMORY_LIMIT": os.environ.get("BENCH_DUCKDB_MEMORY", "4GB"),
    }
    if src is not None:
        env["PYTHONPATH"] = str(src)
    ingest = measured([cobranza, "--lake", str(lake), "--json", "ingest", str(extract)], env=env)
    etl = measured([cobranza, "--lake", str(lake), "--json", "etl"], env=env)
    shutil.rmtree(lake, ignore_errors=True)
    i_out, e_out = ingest.pop("output"), etl.pop("output")
    return {
        "seconds": round(ingest["seconds"] + etl["seconds"], 2),
        "cpu_seconds": round(ingest["cpu_seconds"] + etl["cpu_seconds"], 2),
        "peak_rss_mb": max(ingest["peak_rss_mb"], etl["peak_rss_mb"]),
        "load_average_1m": max(ingest["load_average_1m"], etl["load_average_1m"]),
        "ingest": {**ingest, "inside_seconds": i_out.get("seconds")},
        "etl": {**etl, "stages": e_out.get("seconds")},
        "gold": e_out.get("gold"),
        "csv_rows": i_out.get("rows_read"),
    }


# A floor run's figures that not every run writes: a rerun without them must not keep the previous
# run's (a baseline interleaved with another floor, a caveat about another run's load).
RUN_ONLY = ("baseline", "ratio_caveat", "earlier_run", "floor_simulate_seconds")


def save(key: str, entry: dict) -> None:
    """The tier's floor figures replaced by this run's; the tier's other figures (bench_etl's) kept."""
    path = RESULTS / "etl.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"tiers": {}}
    tier = data.setdefault("tiers", {}).setdefault(key, {})
    for stale in RUN_ONLY:
        tier.pop(stale, None)
    tier.update(entry)
    data["tiers"] = dict(sorted(data["tiers"].items(), key=lambda kv: kv[1].get("clients", 0)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--floor"]:
        print(json.dumps(floor(Path(argv[1]), Path(argv[2]))))
        return {}
    repeat, extract_arg, baseline, positional = 2, None, None, []
    it = iter(argv)
    for a in it:
        if a == "--repeat":
            repeat = int(next(it))
        elif a == "--extract":
            extract_arg = Path(next(it))
        elif a == "--baseline":
            baseline = next(it)
        else:
            positional.append(a)
    clients = int(positional[0]) if positional else 100_000
    months = int(positional[1]) if len(positional) > 1 else 24

    from cobranza.simulate import SimulationConfig, simulate

    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    try:
        extract = extract_arg or work / "extract"
        if extract_arg is None:
            t0 = time.perf_counter()
            simulate(extract, SimulationConfig(clients=clients, months=months, seed=11))
            simulate_seconds = round(time.perf_counter() - t0, 2)
        floors, projects, baselines = [], [], []
        base_src = checkout(baseline, work) if baseline else None
        for _ in range(repeat):
            floors.append(run_floor(extract, work))
            projects.append(run_project(extract, work))
            if base_src is not None:
                baselines.append(run_project(extract, work, base_src))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best_floor = min(floors, key=lambda r: r["seconds"])
    best_project = min(projects, key=lambda r: r["seconds"])
    entry = {
        "clients": clients,
        "months": months,
        "floor_seconds": best_floor["seconds"],
        "project_seconds": best_project["seconds"],
        "ratio": round(best_project["seconds"] / best_floor["seconds"], 2),
        # CPU seconds are steadier than wall time on a machine shared with other work
        "floor_cpu_seconds": min(r["cpu_seconds"] for r in floors),
        "project_cpu_seconds": min(r["cpu_seconds"] for r in projects),
        "cpu_ratio": round(
            min(r["cpu_seconds"] for r in projects) / min(r["cpu_seconds"] for r in floors), 2
        ),
        "floor": {
            "what": "DuckDB: each CSV to Parquet (contract types, bad rows skipped), then one SQL "
            "of target, eligibility, debit and payment features (3/6/12 months) to Parquet; "
            "one process",
            "runs": floors,
        },
        "project": {
            "what": "cobranza ingest + cobranza etl (DuckDB), two CLI processes",
            "runs": projects,
        },
        # the highest of each command's runs, read as each ends (not once at the end)
        "floor_load_average_1m": max(r["load_average_1m"] for r in floors),
        "project_load_average_1m": max(r["load_average_1m"] for r in projects),
        "floor_source": f"benchmarks/bench_floor.py, best of {repeat} run(s) of each",
    }
    if baselines:
        best_base = min(baselines, key=lambda r: r["cpu_seconds"])
        entry["baseline"] = {
            "what": f"cobranza ingest + etl at git revision {baseline}, interleaved with the runs "
            "above on the same extract",
            "ref": baseline,
            "cpu_seconds": best_base["cpu_seconds"],
            "seconds": best_base["seconds"],
            "cpu_ratio": round(best_base["cpu_seconds"] / entry["floor_cpu_seconds"], 2),
            "runs": baselines,
        }
    if extract_arg is None:
        entry["floor_simulate_seconds"] = simulate_seconds
    save(f"{clients}x{months}", entry)
    print(
        f"floor vs project, {clients:,} clients x {months} months: floor {entry['floor_seconds']}s, "
        f"project {entry['project_seconds']}s (ingest {best_project['ingest']['seconds']}s + "
        f"etl {best_project['etl']['seconds']}s), ratio {entry['ratio']}x; CPU floor "
        f"{entry['floor_cpu_seconds']}s, project {entry['project_cpu_seconds']}s, "
        f"ratio {entry['cpu_ratio']}x"
        + (
            f"; baseline {baseline} CPU {entry['baseline']['cpu_seconds']}s "
            f"({entry['baseline']['cpu_ratio']}x)"
            if baselines
            else ""
        )
    )
    return entry


if __name__ == "__main__":
    main()
