"""A small gold-shaped `obligation_snapshots` table with a known truth, for ML tests and benchmarks.

The target is drawn from p_true = sigmoid(f(features)), so the oracle AUC is known to be reachable;
a few features are pure noise and a categorical one matters (product) while another does not.

The causal part: each labeled row is in a randomized arm (HOLDOUT with `holdout_share`, else
ASSIGNED); the roll to 31+ days is drawn from p_roll_no_action or p_roll_action by the arm, with an
effect of management that grows with the debit rejects (clients who need a call); management does
not change the debit self-cure here, so `self_cure_debit` is the same draw whatever the arm. Its
own generator (seed + 1000) leaves every other column as it was without it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cobranza.lake import Lake

PRODUCTS = ["CONSUMER_LOAN", "CREDIT_CARD", "VEHICLE", "MORTGAGE", "MICROCREDIT"]
SEGMENTS = ["MASS", "AFFLUENT", "PREMIUM", "SME"]
PRODUCT_EFFECT = {
    "CONSUMER_LOAN": 0.0,
    "CREDIT_CARD": -0.4,
    "VEHICLE": 0.3,
    "MORTGAGE": 0.6,
    "MICROCREDIT": -0.8,
}


def month_ends(n: int, end: date = date(2025, 12, 31)) -> list[date]:
    periods = pd.period_range(end=pd.Period(end, "M"), periods=n, freq="M")
    return [p.end_time.date() for p in periods]


def make_gold(
    clients: int = 600,
    months: int = 12,
    seed: int = 7,
    horizon_unlabeled: int = 1,
    rows_per_month: float = 0.6,
    holdout_share: float = 0.2,
) -> pd.DataFrame:
    """Rows = clients x months x rows_per_month (Bernoulli), the last month unlabeled."""
    rng = np.random.default_rng(seed)
    rng_causal = np.random.default_rng(seed + 1000)
    cuts = month_ends(months)
    client_keys = np.array([f"ck{i:07d}" for i in range(clients)])
    client_skill = rng.normal(0, 1, clients)
    client_segment = rng.choice(SEGMENTS, clients)
    frames = []
    for m, cut in enumerate(cuts):
        present = rng.random(clients) < rows_per_month
        idx = np.flatnonzero(present)
        n = len(idx)
        product = rng.choice(PRODUCTS, n)
        dpd = rng.integers(1, 31, n)
        amount = np.round(rng.lognormal(12, 0.8, n), 2)
        balance_ratio = rng.normal(1.0, 0.7, n) + 0.3 * client_skill[idx]
        rejects = rng.poisson(np.exp(-0.5 * client_skill[idx]), n).astype(np.int64)
        noise1 = rng.normal(0, 1, n)
        logit = (
            -0.3
            + 0.9 * balance_ratio
            - 0.06 * dpd
            - 0.35 * rejects
            + np.array([PRODUCT_EFFECT[p] for p in product])
            + 0.5 * client_skill[idx]
        )
        p_true = 1 / (1 + np.exp(-logit))
        y = (rng.random(n) < p_true).astype(np.int64)
        labeled = m < months - horizon_unlabeled
        balance = np.where(rng.random(n) < 0.05, np.nan, balance_ratio)
        causal = _causal_part(
            rng_causal, n, labeled, dpd, rejects, balance_ratio, amount, holdout_share
        )
        frames.append(
            pd.DataFrame(
                {
                    "obligation_id": [f"ob{i:07d}-{k % 2}" for k, i in enumerate(idx)],
                    "cut_date": cut,
                    "client_key": client_keys[idx],
                    "product": product,
                    "segment": client_segment[idx],
                    "days_past_due": dpd.astype(np.int64),
                    "amount_past_due": amount,
                    "eligible": rng.random(n) < 0.9,
                    "self_cure_debit": pd.array(y if labeled else [None] * n, dtype="Int64"),
                    "split_hint": pd.array([None] * n, dtype="string"),
                    "balance_to_installment": balance,
                    "debit_rejects_3m": rejects,
                    "noise_feature": noise1,
                    "_p_true": p_true,
                    **causal,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _causal_part(rng, n, labeled, dpd, rejects, balance_ratio, amount, holdout_share) -> dict:
    """Arm, treatment, roll and exposure columns, with the true roll probabilities (`_p_roll_*`)."""
    logit_roll = -0.9 - 0.8 * balance_ratio + 0.04 * dpd + 0.3 * rejects
    effect = 0.15 + 0.45 * np.minimum(rejects, 3)  # log-odds the management takes off the roll
    p_no = 1 / (1 + np.exp(-logit_roll))
    p_act = 1 / (1 + np.exp(-(logit_roll - effect)))
    holdout = rng.random(n) < holdout_share
    rolled = (rng.random(n) < np.where(holdout, p_no, p_act)).astype(np.int64)
    arm = np.where(holdout, "HOLDOUT", "ASSIGNED").astype(object)
    return {
        "outstanding_balance": np.round(amount * rng.uniform(5, 40, n), 2),
        "arm": arm if labeled else np.full(n, None, dtype=object),
        "assigned": pd.array(~holdout if labeled else [None] * n, dtype="boolean"),
        "roll_31_plus": pd.array(rolled if labeled else [None] * n, dtype="Int64"),
        "_p_roll_no_action": p_no,
        "_p_roll_action": p_act,
    }


def publish_gold(lake: Lake, gold: pd.DataFrame, truth_csv: Path | None = None) -> str:
    """Publish `gold` as the current gold version; write the truth CSV when asked."""
    lake.ensure()
    table = gold.drop(columns=[c for c in gold.columns if c.startswith("_p_")])
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.set_column(
        arrow.schema.get_field_index("cut_date"),
        "cut_date",
        pa.array(table["cut_date"].tolist(), type=pa.date32()),
    )
    arrow = arrow.set_column(
        arrow.schema.get_field_index("split_hint"),
        "split_hint",
        pa.nulls(len(table), type=pa.string()),
    )
    with lake.publish("gold", inputs={"test": "synthetic"}) as pub:
        pq.write_table(arrow, pub.table_dir("obligation_snapshots") / "part-0.parquet")
        pub.meta["as_of"] = str(max(gold["cut_date"]))
    if truth_csv is not None:
        truth_csv.parent.mkdir(parents=True, exist_ok=True)
        gold[["cut_date", "obligation_id", "_p_true"]].rename(columns={"_p_true": "p_true"}).to_csv(
            truth_csv, index=False
        )
        outcomes = pd.DataFrame(
            {
                "obligation_id": gold["obligation_id"],
                "cut_date": pd.to_datetime(gold["cut_date"]).dt.date,
                "p_cure_debit_no_action": gold["_p_true"],
                "p_cure_debit_action": gold["_p_true"],
                "p_roll_no_action": gold["_p_roll_no_action"],
                "p_roll_action": gold["_p_roll_action"],
            }
        )
        outcomes.to_parquet(truth_csv.parent / "potential_outcomes.parquet", index=False)
    return lake.current_version("gold")


def with_treatment(
    gold: pd.DataFrame, holdout_share: float = 0.2, holdout_months: int = 4, seed: int = 3
) -> pd.DataFrame:
    """`gold` with the bank's decision and its outcome (contract version 2): `arm` HOLDOUT at
    random (`holdout_share`) in the last `holdout_months` labeled cuts, ASSIGNED elsewhere, null
    at the unlabeled cut; `roll_31_plus` drawn from the truth, management halving the roll; an
    `outstanding_balance` (a feature, as in gold)."""
    rng = np.random.default_rng(seed)
    out = gold.copy()
    labeled = out["self_cure_debit"].notna().to_numpy()
    cuts = sorted(out.loc[labeled, "cut_date"].unique())
    window = out["cut_date"].isin(cuts[-holdout_months:]).to_numpy()
    held = window & (rng.random(len(out)) < holdout_share)
    arm = np.where(held, "HOLDOUT", "ASSIGNED").astype(object)
    arm[~labeled] = None
    out["arm"] = arm
    out["assigned"] = pd.array(np.where(labeled, ~held, None), dtype="boolean")
    p_roll = (1 - out["_p_true"].to_numpy()) * np.where(held, 0.8, 0.4)
    roll = (rng.random(len(out)) < p_roll).astype(np.int64)
    out["roll_31_plus"] = pd.array(np.where(labeled, roll, None), dtype="Int64")
    out["outstanding_balance"] = np.round(rng.lognormal(15, 0.6, len(out)), 2)
    return out
