"""Bootstrap intervals of the evaluation and the gate: 2,000 resamples on 50,000 rows in seconds.

Times `cobranza.ml.stats.auc_difference` (paired AUC difference), `ece_interval` and
`cobranza.decision.value.compare_policies` (paired off-policy saving) on N synthetic rows, beside
DeLong's analytic interval, and writes `benchmarks/results/stats.json`. Target: each under 20 CPU
seconds (seconds, not minutes); wall seconds are recorded too, but on the shared 2-core machine
they mostly measure the other engineers' load (load average in the result).
Run: `python3 -m uv run python -m benchmarks.bench_stats [ROWS] [RESAMPLES]`.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
TARGET_SECONDS = 20.0


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    rows = int(argv[0]) if argv else 50_000
    resamples = int(argv[1]) if len(argv) > 1 else 2_000

    from cobranza.config import Costs
    from cobranza.decision.value import compare_policies, randomized_rows
    from cobranza.ml import stats as S

    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, rows)
    y = (rng.random(rows) < p).astype(np.int64)
    q = np.round(np.clip(p + rng.normal(0, 0.1, rows), 0, 1), 3)  # ties, as calibrated scores
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        timings[name] = round(time.perf_counter() - t0, 2)
        cpu[name] = round(time.process_time() - c0, 2)  # the load of a shared machine aside
        return out

    auc = timed("auc_difference", lambda: S.auc_difference(y, p, q, resamples, seed=0))
    delong = timed("delong_auc_difference", lambda: S.delong_auc_difference(y, p, q))
    ece = timed("ece_interval", lambda: S.ece_interval(y, q, resamples=resamples, seed=0))
    arm = np.where(rng.random(rows) < 0.1, "HOLDOUT", "ASSIGNED")
    cuts = np.where(np.arange(rows) < rows // 2, "2025-10-31", "2025-11-30")
    roll = (rng.random(rows) < 0.3).astype(np.float64)
    loss = rng.lognormal(11, 0.5, rows)
    r = randomized_rows(arm, cuts, roll, loss, Costs())
    value = timed(
        "compare_policies",
        lambda: compare_policies(r, p < 0.5, q < 0.6, resamples=resamples, seed=0),
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "rows": rows,
        "resamples": resamples,
        "seconds": timings,
        "cpu_seconds": cpu,
        "target_seconds": TARGET_SECONDS,
        "meets_target": all(v < TARGET_SECONDS for v in cpu.values()),
        "auc_difference": auc.to_dict(),
        "delong": delong.to_dict(),
        "ece": ece.to_dict(),
        "saving": value.saving.to_dict(),
        "peak_rss_mb": round(peak_mb),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stats.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"stats on {rows:,} rows x {resamples:,} resamples: "
        + ", ".join(f"{k} {v:.1f}s ({cpu[k]:.1f} CPU s)" for k, v in timings.items())
        + f"; paired bootstrap {auc.text()} vs DeLong {delong.text()}; peak RSS {peak_mb:,.0f} MB"
    )
    return result


if __name__ == "__main__":
    main()
