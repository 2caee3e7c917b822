"""Training time and peak memory of `cobranza.ml.training.train` at 100k and 1M labeled gold rows.

No real gold table of that size is at hand in a benchmark run, so each tier SYNTHESIZES a
gold-shaped `obligation_snapshots` (the generator of tests/ml/gold.py: product and segment
categories, days past due, amount, a target drawn from a known probability) widened with noise
columns to 73 features, the real gold's feature count, and publishes it in a
temporary lake. Then the full `train` runs on it: split, LightGBM (1 thread, deterministic) with
early stopping, logistic baseline, metrics, pictures, report, MLflow logging, registry gate.
Each tier runs in its own process so that its peak RSS is its own.
Run: `python3 -m uv run python -m benchmarks.bench_train [ROWS ...]` (default 100000 1000000).
Writes `benchmarks/results/train.json`.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
TIERS = (100_000, 1_000_000)
MONTHS = 24
N_FEATURES = 73  # as many as the real gold table has


def synthesize(rows: int, seed: int = 11):
    """A gold-shaped frame with about `rows` labeled eligible rows."""
    import numpy as np
    from tests.ml.gold import make_gold

    # make_gold: clients x months x 0.6 rows, last month unlabeled, 90% eligible
    clients = int(rows / (0.6 * (MONTHS - 1) * 0.9)) + 1
    gold = make_gold(clients=clients, months=MONTHS, seed=seed)
    rng = np.random.default_rng(seed)
    base = [c for c in gold.columns if c not in ("_p_true",)]
    n_extra = N_FEATURES - (len(base) - 6)
    for i in range(n_extra):
        gold[f"noise_{i:02d}"] = rng.normal(0, 1, len(gold)).astype(np.float64)
    return gold


def run_tier(rows: int) -> dict:
    """One tier in this process: synthesize, publish, train; seconds and peak RSS."""
    from tests.ml.gold import publish_gold

    from cobranza.config import load_settings
    from cobranza.lake import Lake
    from cobranza.ml.training import train

    t0 = time.perf_counter()
    gold = synthesize(rows)
    synth_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        lake = Lake(Path(tmp) / "lake")
        publish_gold(lake, gold, Path(tmp) / "truth" / "p_true.csv")
        settings = load_settings(
            lake=Path(tmp) / "lake", truth_path=Path(tmp) / "truth" / "p_true.csv"
        )
        labeled = int((gold["eligible"] & gold["self_cure_debit"].notna()).sum())
        del gold
        t1 = time.perf_counter()
        summary = train(settings)
        train_s = time.perf_counter() - t1
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows_labeled_eligible": labeled,
        "features": N_FEATURES,
        "synthesize_seconds": round(synth_s, 2),
        "train_seconds": round(train_s, 2),
        "rows_per_second": round(labeled / train_s),
        "peak_rss_mib": round(peak_mib, 1),
        "best_iteration": summary.best_iteration,
        "oot_auc": summary.oot["auc"],
        "oracle_oot_auc": summary.oot["oracle_auc"],
        "oot_ece": summary.oot["ece"],
        "timings": summary.timings,
    }


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--tier"]:
        print(json.dumps(run_tier(int(argv[1]))))
        return {}
    tiers = [int(a) for a in argv] or list(TIERS)
    results = []
    for rows in tiers:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_train", "--tier", str(rows)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        tier = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(tier)
        print(
            f"train {tier['rows_labeled_eligible']:>9,} rows x {N_FEATURES} features: "
            f"{tier['train_seconds']:7.1f} s ({tier['rows_per_second']:,} rows/s), "
            f"peak {tier['peak_rss_mib']:,.0f} MiB, OOT AUC {tier['oot_auc']} "
            f"(oracle {tier['oracle_oot_auc']}), ECE {tier['oot_ece']}",
            flush=True,
        )
    report = {
        "benchmark": "train",
        "data": "synthesized gold-shaped table (tests/ml/gold.py + noise columns), not a real gold",
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "lightgbm_threads": 1,
        "tiers": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
