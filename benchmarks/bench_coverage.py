"""Interval coverage of the experiment report: over 20 simulated worlds, how often the 95% interval
of the holdout's effect on the roll rate covers the true effect (target: at least 17 of 20).

Each seed runs the real chain on a small simulated world: `simulate` (the bank's randomized
holdout: the simulator's default share over its last labeled cuts) -> `ingest` -> `etl`, then the
report function of `cobranza experiment report` (`decision.experiment_report.report`, eligible
rows, pooled over the randomized cuts and stratified by cut).

Estimand: the intention-to-treat effect of being held out on the roll rate over the same rows
the report pools (eligible, labeled, HOLDOUT or ASSIGNED, randomized cuts), from the simulator's
`_truth/potential_outcomes.parquet`:

    truth = (1 - contamination) x mean_i (p_roll_no_action_i - p_roll_action_i)

An ASSIGNED row is always managed and a HOLDOUT row is managed all the same with probability
`contamination` (the simulator's leak of the control group), so E[roll | HOLDOUT] - E[roll |
ASSIGNED] is that. `effect_of_management` (the mean without the factor) is reported beside it.

Writes `benchmarks/results/coverage.json` (per seed: estimate, ci, truth, covered; the count).
Run: `python3 -m uv run python -m benchmarks.bench_coverage [--seeds 20] [--clients N] [--months M]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from cobranza.config import load_settings
from cobranza.contract import STANDARD, TRUTH_DIR
from cobranza.decision.experiment_report import report
from cobranza.ingest import ingest_extract
from cobranza.simulate import SimulationConfig, simulate
from cobranza.transforms import run_etl

RESULTS = Path(__file__).parent / "results"
TARGET_COVERED = 17
SEEDS = 20
CLIENTS = 12_000
MONTHS = 12


def one_seed(seed: int, clients: int, months: int, work: Path) -> dict:
    extract, lake = work / f"extract-{seed}", work / f"lake-{seed}"
    config = SimulationConfig(clients=clients, months=months, seed=seed, noise=0.0)
    t0 = time.perf_counter()
    simulate(extract, config, STANDARD)
    settings = load_settings(lake=lake, duckdb_threads=2)
    ingest_extract(settings, extract, STANDARD)
    run_etl(settings)
    result = report(settings)
    roll = next(e for e in result.effects if e.metric == "roll_rate")
    truth, management, rows = true_effect(settings, result, extract, config.contamination)
    seconds = time.perf_counter() - t0
    shutil.rmtree(extract, ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)
    arms = {a.arm: a.rows for a in result.arms}
    return {
        "seed": seed,
        "cuts_pooled": len(result.cuts_pooled),
        "holdout_rows": arms.get("HOLDOUT", 0),
        "assigned_rows": arms.get("ASSIGNED", 0),
        "estimate": roll.difference,
        "ci": [roll.ci_low, roll.ci_high],
        "p_value": roll.p_value,
        "truth": truth,
        "effect_of_management": management,
        "truth_rows": rows,
        "covered": bool(roll.ci_low <= truth <= roll.ci_high),
        "seconds": round(seconds, 1),
    }


def true_effect(settings, result, extract: Path, contamination: float) -> tuple[float, float, int]:
    """The estimand over the report's pooled rows (joined on obligation and cut)."""
    from cobranza.lake import Lake

    gold = Lake(settings.lake).table_glob("gold", "obligation_snapshots", result.gold_version)
    truth = extract / TRUTH_DIR / "potential_outcomes.parquet"
    cuts = ", ".join(f"DATE '{c}'" for c in result.cuts_pooled)
    mean, rows = duckdb.sql(
        f"""
        SELECT avg(t.p_roll_no_action - t.p_roll_action), count(*)
        FROM read_parquet('{gold}') g
        JOIN read_parquet('{truth}') t USING (obligation_id, cut_date)
        WHERE g.eligible AND g.arm IN ('HOLDOUT', 'ASSIGNED') AND g.cut_date IN ({cuts})
          AND g.self_cure_debit IS NOT NULL AND g.cure_any IS NOT NULL
          AND g.roll_31_plus IS NOT NULL
        """
    ).fetchone()
    pooled = sum(a.rows for a in result.arms)
    if rows != pooled:
        raise RuntimeError(f"the truth covers {rows} of the report's {pooled} pooled rows")
    return (1.0 - contamination) * float(mean), float(mean), int(rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--months", type=int, default=MONTHS)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_coverage_"))
    started = time.perf_counter()
    runs = []
    try:
        for seed in range(1, args.seeds + 1):
            run = one_seed(seed, args.clients, args.months, work)
            runs.append(run)
            lo, hi = run["ci"]
            print(
                f"seed {seed:2d}: estimate {run['estimate']:+.4f} [{lo:+.4f}, {hi:+.4f}] "
                f"truth {run['truth']:+.4f} {'covered' if run['covered'] else 'MISSED'} "
                f"({run['holdout_rows']} holdout rows, {run['seconds']}s)",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    count = sum(r["covered"] for r in runs)
    out = {
        "benchmark": "coverage",
        "estimand": "(1 - contamination) x mean(p_roll_no_action - p_roll_action) over the "
        "report's pooled rows (eligible, labeled, HOLDOUT or ASSIGNED, randomized cuts)",
        "interval": "95%, difference of roll rates HOLDOUT - ASSIGNED, unpooled normal, "
        "stratified by cut",
        "clients": args.clients,
        "months": args.months,
        "seeds": [r["seed"] for r in runs],
        "runs": runs,
        "count": count,
        "of": len(runs),
        "target": f">= {TARGET_COVERED} of {SEEDS}",
        "meets_target": count >= TARGET_COVERED * len(runs) / SEEDS,
        "mean_ci_width": sum(r["ci"][1] - r["ci"][0] for r in runs) / max(len(runs), 1),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coverage.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"covered {count} of {len(runs)} (target {out['target']}), {out['seconds']}s")
    return out


if __name__ == "__main__":
    main()
