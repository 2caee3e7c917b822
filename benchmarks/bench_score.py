"""Batch scoring with reason codes: 1,000,000 obligations in under 60 s on 2 cores (target).

Trains the real calibrated LightGBM (`cobranza.ml.model.SelfCureModel`) and the roll model with and
without management (`cobranza.ml.causal.RollModel`, an S-learner with a known log-odds effect of
management) on a small synthetic sample shaped like gold (numeric features, two categorical ones,
missing values), then times `cobranza.decision.scoring.score_frame` (probability, both roll
risks, the expected benefit of managing, the decision, three reason codes with texts) on N rows
next to the raw LightGBM predict on the same rows, and writes
`benchmarks/results/score.json`. Run: `python3 -m uv run python -m benchmarks.bench_score [ROWS]`.
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
import pandas as pd

RESULTS = Path(__file__).parent / "results"
TARGET_SECONDS = 60.0
N_NUMERIC = 30
SHAP_SAMPLE = 3_000
ROLL_EFFECT = -0.5  # log-odds of the roll under management, against none


def synthetic_gold(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "obligation_id": np.char.add("OB", np.arange(n).astype(str)),
        "cut_date": np.full(n, np.datetime64("2025-06-30")),
        "client_key": np.char.add("ck", (np.arange(n) // 2).astype(str)),
        "product": rng.choice(["CONSUMER_LOAN", "CREDIT_CARD", "VEHICLE", "MORTGAGE"], n),
        "segment": rng.choice(["MASS", "AFFLUENT", "PREMIUM", "SME"], n),
        "days_past_due": rng.integers(1, 31, n),
        "amount_past_due": rng.gamma(2.0, 150_000.0, n),
        "outstanding_balance": rng.gamma(2.0, 2_500_000.0, n),
        "eligible": rng.random(n) < 0.85,
        "managed": rng.random(n) < 0.8,
    }
    signal = np.zeros(n)
    for j in range(N_NUMERIC):
        x = rng.normal(size=n)
        x[rng.random(n) < 0.05] = np.nan
        data[f"feature_{j:02d}"] = x
        signal += np.nan_to_num(x) * (1.0 / (1 + j))
    signal -= 0.05 * data["days_past_due"]
    data["self_cure_debit"] = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(np.int64)
    # the roll to 31+: likelier without self-cure, management lowers its log-odds by ROLL_EFFECT
    roll_logit = -0.8 * signal - 0.5 + ROLL_EFFECT * data["managed"]
    data["roll_31_plus"] = (rng.random(n) < 1 / (1 + np.exp(-roll_logit))).astype(np.int64)
    return pd.DataFrame(data)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    rows = int(argv[0]) if argv else 1_000_000

    from cobranza.config import Costs
    from cobranza.decision.policy import Policy
    from cobranza.decision.scoring import score_frame
    from cobranza.ml.causal import Effect, RollModel
    from cobranza.ml.model import SelfCureModel, model_input
    from cobranza.ml.registry import Champion

    features = ["product", "segment", "days_past_due", "amount_past_due"] + [
        f"feature_{j:02d}" for j in range(N_NUMERIC)
    ]
    train = synthetic_gold(60_000, seed=1)
    fit_rows, valid_rows = train.iloc[:45_000], train.iloc[45_000:]
    t0 = time.perf_counter()
    model = SelfCureModel(features, ["product", "segment"], num_boost_round=400, seed=1).fit(
        fit_rows[features],
        fit_rows["self_cure_debit"],
        valid_rows[features],
        valid_rows["self_cure_debit"],
    )
    roll = RollModel(features, ["product", "segment"], seed=1).fit(
        fit_rows[features],
        fit_rows["managed"],
        fit_rows["roll_31_plus"],
        valid_rows[features],
        valid_rows["managed"],
        valid_rows["roll_31_plus"],
        effect=Effect(ROLL_EFFECT, 0.05),
    )
    train_seconds = time.perf_counter() - t0
    policy = Policy.of(Costs())
    champion = Champion(model, "bench", "bench", policy, features, roll=roll)

    frame = synthetic_gold(rows, seed=2)
    X = model_input(frame.loc[frame["eligible"]], features)
    codes = model.encoder_.codes(X)  # encoding excluded: the raw booster on the same rows
    t0 = time.perf_counter()
    model.booster_.predict(codes, num_iteration=model.best_iteration_, raw_score=True)
    raw_predict = time.perf_counter() - t0

    t0 = time.perf_counter()
    scored = score_frame(champion, frame, scoring_run_id="bench")
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # The exact TreeSHAP (LightGBM pred_contrib) on a sample, for the record: rate and agreement.
    from cobranza.decision.attribution import probability_and_contributions

    sample = X.iloc[:SHAP_SAMPLE]
    t0 = time.perf_counter()
    _, shap = probability_and_contributions(model, sample, features, "treeshap")
    shap_seconds = time.perf_counter() - t0
    _, path = probability_and_contributions(model, sample, features, "path")
    top1 = float((shap.argmax(axis=1) == path.argmax(axis=1)).mean())
    bottom1 = float((shap.argmin(axis=1) == path.argmin(axis=1)).mean())

    eligible = int(frame["eligible"].sum())
    result = {
        "rows": rows,
        "eligible_rows": eligible,
        "features": len(features),
        "trees": int(model.best_iteration_),
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "raw_lightgbm_predict_seconds": round(raw_predict, 2),
        "raw_lightgbm_rows_per_second": round(eligible / raw_predict),
        "target_seconds": TARGET_SECONDS,
        "meets_target": seconds < TARGET_SECONDS,
        "treeshap_rows_per_second": round(len(sample) / shap_seconds),
        "treeshap_vs_path_top_positive_agreement": round(top1, 4),
        "treeshap_vs_path_top_negative_agreement": round(bottom1, 4),
        "treeshap_vs_path_correlation": round(
            float(np.corrcoef(shap.ravel(), path.ravel())[0, 1]), 4
        ),
        "peak_rss_mb": round(peak_mb),
        "no_assign_share": round(float((scored["decision"] == "NO_ASSIGN").mean()), 4),
        "rows_with_reason": int(scored["reason_1_code"].notna().sum()),
        "train_seconds": round(train_seconds, 2),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # shared machine: the load during the run says how much of the 2 cores it had
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "score.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"score_frame: {rows:,} rows ({eligible:,} eligible) in {seconds:.1f}s = "
        f"{rows / seconds:,.0f} rows/s with reason codes; raw LightGBM predict "
        f"{raw_predict:.1f}s = {eligible / raw_predict:,.0f} rows/s; "
        f"{model.best_iteration_} trees; peak RSS {peak_mb:,.0f} MB; exact TreeSHAP would run at "
        f"{len(sample) / shap_seconds:,.0f} rows/s (top reason agrees {top1:.0%}); "
        f"target < {TARGET_SECONDS:.0f}s: {'met' if seconds < TARGET_SECONDS else 'MISSED'}"
    )
    return result


if __name__ == "__main__":
    main()
