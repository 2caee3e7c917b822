"""What the contract's guarantees cost by themselves, beside the floor and the project, in one run.

`bench_floor` compares `cobranza ingest` + `cobranza etl` with plain DuckDB copying the CSVs to
Parquet plus a hand-written gold query. This benchmark splits the gap. On the same extract, each in
its own process (CPU seconds are the process's rusage, threads included):

- `floor`: `bench_floor`'s floor (typed CSV -> Parquet, then the gold query);
- `rules_bound`: the cheapest ingest that keeps the contract's cell rules as the project writes
  them: DuckDB's own parallel CSV reader into strings (no physical line numbers, no byte checks),
  the project's staging SQL (`ingest.validate.stage_sql`: casts, rules, the raw row's hash, the
  broken cells) with every number cell vouched plain (its cheapest branch), and the COPY of the
  clean rows. No duplicate keys, references, quarantine, fingerprint or manifest;
- `project`: `cobranza ingest` and `cobranza etl` as a user runs them (the lake is kept);
- `silver_copy_bound`: DuckDB copying every raw table of that lake to Parquet as it is: what
  silver costs before it pseudonymizes, renames or adds a column.

Writes `benchmarks/results/bounds.json`.
Run: `python3 -m uv run python -m benchmarks.bench_bounds [CLIENTS] [MONTHS] [--extract DIR]`.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_floor import REPO, RESULTS, measured, run_floor


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rules_bound(extract: Path, out: Path) -> dict:
    """The strings, the staging SQL and the COPY of each file, CPU seconds per step."""
    import duckdb

    from cobranza.contract import FILES, load_dialect
    from cobranza.ingest.header import read_header
    from cobranza.ingest.numbers import NUMBER_CHECK
    from cobranza.ingest.validate import stage_sql

    dialect = load_dialect("standard")
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    steps = {"parse": 0.0, "rules": 0.0, "write": 0.0}

    def step(name: str, sql: str) -> None:
        c = _cpu()
        con.execute(sql)
        steps[name] += _cpu() - c

    for spec in FILES:
        path = extract / spec.filename
        if not path.exists():
            continue
        header = read_header(path, spec, dialect)
        cols = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header.names)))
        step(
            "parse",
            f"CREATE OR REPLACE TABLE s AS SELECT *, row_number() OVER () + 1 AS _line, "
            f"0::BIGINT AS {NUMBER_CHECK} FROM read_csv('{path}', columns = {{{cols}}}, "
            "header = true, ignore_errors = true)",
        )
        step("rules", f"CREATE OR REPLACE TABLE t AS {stage_sql(spec, header, dialect, 's')}")
        step(
            "write",
            f"COPY (SELECT * EXCLUDE (_hash, _errs) FROM t WHERE _errs IS NULL) "
            f"TO '{out / spec.stem}.parquet' (FORMAT parquet, COMPRESSION zstd, "
            "COMPRESSION_LEVEL 1)",
        )
    con.close()
    return {"steps_cpu_seconds": {k: round(v, 2) for k, v in steps.items()}}


def silver_copy_bound(lake: Path, out: Path) -> dict:
    """Every table of the current raw version copied to Parquet unchanged."""
    import duckdb

    from cobranza.lake import Lake

    store = Lake(lake)
    version = store.require_version("raw")
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    tables = store.tables("raw", version)
    for table in tables:
        glob = store.table_dir("raw", table, version) / "*.parquet"
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{glob}')) TO '{out / table}.parquet' "
            "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
        )
    con.close()
    return {"tables": len(tables)}


def _in_process(mode: str, *args: Path) -> dict:
    m = measured([sys.executable, "-m", "benchmarks.bench_bounds", mode, *map(str, args)], cwd=REPO)
    return {**m, **m.pop("output")}


def run(extract: Path, work: Path) -> dict:
    floor = run_floor(extract, work)
    rules = _in_process("--rules", extract, work / "rules")
    lake = work / "lake"
    cobranza = str(Path(sys.executable).with_name("cobranza"))
    env = {**os.environ, "COBRANZA_DUCKDB_MEMORY_LIMIT": "4GB"}
    ingest = measured([cobranza, "--lake", str(lake), "--json", "ingest", str(extract)], env=env)
    etl = measured([cobranza, "--lake", str(lake), "--json", "etl"], env=env)
    silver = _in_process("--silver", lake, work / "silver")
    stages = etl.pop("output").get("seconds")
    ingest.pop("output")
    floor_cpu = floor["cpu_seconds"]
    return {
        "floor": floor,
        "rules_bound": rules,
        "project": {"ingest": ingest, "etl": {**etl, "stages": stages}},
        "silver_copy_bound": silver,
        "to_floor_cpu": {
            "rules_bound": round(rules["cpu_seconds"] / floor_cpu, 2),
            "project_ingest": round(ingest["cpu_seconds"] / floor_cpu, 2),
            "silver_copy_bound": round(silver["cpu_seconds"] / floor_cpu, 2),
            "project_etl": round(etl["cpu_seconds"] / floor_cpu, 2),
            "project": round((ingest["cpu_seconds"] + etl["cpu_seconds"]) / floor_cpu, 2),
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> dict | None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("--rules", "--silver"):
        fn = rules_bound if args[0] == "--rules" else silver_copy_bound
        print(json.dumps(fn(Path(args[1]), Path(args[2]))))
        return None
    extract_arg = None
    if "--extract" in args:
        i = args.index("--extract")
        extract_arg = Path(args[i + 1])
        del args[i : i + 2]
    clients, months = (int(args[0]), int(args[1])) if len(args) >= 2 else (100_000, 24)
    from cobranza.simulate import SimulationConfig, simulate

    with tempfile.TemporaryDirectory(prefix="bench-bounds-") as tmp:
        work = Path(tmp)
        extract = extract_arg or work / "extract"
        if extract_arg is None:
            simulate(extract, SimulationConfig(clients=clients, months=months, seed=11))
        t0 = time.perf_counter()
        result = {"clients": clients, "months": months, **run(extract, work)}
        result["seconds"] = round(time.perf_counter() - t0, 1)
        shutil.rmtree(work / "lake", ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "bounds.json"
    tiers = json.loads(path.read_text()) if path.exists() else {}
    tiers[f"{clients}x{months}"] = result
    path.write_text(json.dumps(tiers, indent=2) + "\n")
    print(json.dumps(result["to_floor_cpu"], indent=2))
    return result


if __name__ == "__main__":
    main()
