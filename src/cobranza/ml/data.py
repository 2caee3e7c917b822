"""Training data: the labeled eligible rows of gold, the feature list, and the split into parts.

Parts, by rule:
- `oot`: the latest `oot_months` labeled cut months (out of time);
- earlier months are split by client pseudonym (`client_key`), hashed with the seed, so that one
  client never sits on two sides: `test` gets a share `test_share` of the clients, and of the
  remaining clients a share `VALID_SHARE` forms `valid` (early stopping, calibration, tuning);
  the rest is `train`. The model (trees, early stopping, calibration) never sees test or OOT; the
  decision threshold is then chosen on test, the model frozen (`decision.policy`), so the policy's
  own cost figures on test are in-sample and the honest ones are out of time.
- embargo: an earlier row whose label horizon (d, d + H] ends after the first OOT cut is dropped,
  so no training label observes payments of the out-of-time period (with month-end cuts and H = 30
  this only bites when the month before OOT is longer than the OOT's first month, e.g. a January
  before a February).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cobranza.config import Settings
from cobranza.errors import CobranzaError
from cobranza.lake import Lake
from cobranza.ml.model import numeric
from cobranza.transforms.schema import (
    ARM,
    ASSIGNED,
    CLIENT_KEY,
    CUT_DATE,
    ELIGIBLE,
    GOLD_TABLE,
    NON_FEATURES,
    OBLIGATION_ID,
    ROLL_31_PLUS,
    TARGET,
)

VALID_SHARE = 0.2
PARTS = ("train", "valid", "test", "oot")
EMBARGO = "embargo"


class TrainingDataError(CobranzaError):
    """Gold cannot be trained on (missing table, too few labeled months, one class only...)."""


@dataclass
class Dataset:
    """Labeled eligible rows with their part, and what the model may use as features."""

    frame: pd.DataFrame
    features: list[str]
    categorical: list[str]
    part: np.ndarray
    oot_months: list[str]
    gold: dict[str, Any] = field(default_factory=dict)
    embargoed: int = 0  # earlier rows dropped because their horizon ends in the OOT period

    def rows(self, part: str) -> pd.DataFrame:
        return self.frame.loc[self.part == part]

    def X(self, part: str) -> pd.DataFrame:
        return self.rows(part)[self.features]

    def y(self, part: str) -> np.ndarray:
        return self.rows(part)[TARGET].to_numpy(dtype=np.int64)

    def managed(self, part: str) -> np.ndarray:
        """1.0 where the row was assigned to collections (arm ASSIGNED), else 0.0."""
        rows = self.rows(part)
        if ASSIGNED not in rows:
            return np.ones(len(rows))
        return rows[ASSIGNED].fillna(True).astype(bool).to_numpy(dtype=np.float64)

    def arm(self, part: str) -> np.ndarray:
        rows = self.rows(part)
        if ARM not in rows:
            return np.full(len(rows), "ASSIGNED", dtype=object)
        return rows[ARM].fillna("ASSIGNED").astype(str).to_numpy(dtype=object)

    def roll(self, part: str) -> np.ndarray:
        """roll_31_plus, 0/1 (a row without it counts as not rolled)."""
        rows = self.rows(part)
        if ROLL_31_PLUS not in rows:
            return np.zeros(len(rows), dtype=np.int64)
        return rows[ROLL_31_PLUS].fillna(0).to_numpy(dtype=np.int64)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in PARTS:
            rows = self.rows(name)
            out[name] = {
                "rows": len(rows),
                "clients": int(rows[CLIENT_KEY].nunique()),
                "cut_months": int(rows[CUT_DATE].nunique()),
                "target_rate": round(float(rows[TARGET].mean()), 6) if len(rows) else None,
            }
        return out


def read_gold(
    lake: Lake, sample_clients: int | None = None, seed: int = 0
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The current gold snapshot table (all rows, or those of `sample_clients` clients chosen by
    `sample_of_clients`) and the gold run info.

    The version is resolved once: an etl publishing meanwhile must not give the rows of one
    version the lineage of another (prune keeps a model's gold by that lineage).
    """
    version = lake.require_version("gold")
    info = lake.run_info("gold", version)
    glob = lake.table_glob("gold", GOLD_TABLE, version)
    con = duckdb.connect()
    try:
        source = "read_parquet(?, union_by_name=true)"
        if sample_clients is not None:
            rows = con.execute(f"SELECT DISTINCT {CLIENT_KEY} FROM {source}", [glob]).fetchall()
            chosen = sample_of_clients([r[0] for r in rows], sample_clients, seed)
            con.register("_sampled", pa.table({CLIENT_KEY: chosen}))
            source += f" SEMI JOIN _sampled USING ({CLIENT_KEY})"
        frame = con.execute(
            f"SELECT * FROM {source} ORDER BY {CUT_DATE}, {OBLIGATION_ID}", [glob]
        ).df()
    finally:
        con.close()
    return frame, info


def sample_of_clients(keys: list[str], n: int, seed: int) -> list[str]:
    """The `n` clients with the smallest hash of (seed, client_key): fixed by the seed, and
    independent of the hashes that assign parts (salts "test" and "valid")."""
    if n >= len(keys):
        return list(keys)
    u = client_fraction(pd.Series(keys, dtype=object), seed, "sample")
    return [keys[i] for i in np.argsort(u, kind="stable")[:n]]


def feature_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Every column not in NON_FEATURES is a feature; strings are categories, the rest numbers."""
    features, categorical = [], []
    for name in frame.columns:
        if name in NON_FEATURES or name.startswith("_"):
            continue
        dtype = frame[name].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            features.append(name)
        elif pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
            features.append(name)
            categorical.append(name)
        else:
            raise TrainingDataError(
                f"gold.{GOLD_TABLE} column {name!r} has type {dtype}: features must be numeric "
                "or string; add it to transforms/schema.NON_FEATURES or change its type"
            )
    return features, categorical


def client_fraction(keys: pd.Series, seed: int, salt: str) -> np.ndarray:
    """A uniform number in [0, 1) per row, fixed by (seed, salt, client_key)."""
    inverse, uniques = pd.factorize(keys.astype(str), sort=False)
    values = np.fromiter(
        (
            int.from_bytes(
                hashlib.sha256(f"{seed}:{salt}:{k}".encode()).digest()[:8], "big", signed=False
            )
            / 2.0**64
            for k in uniques
        ),
        dtype=np.float64,
        count=len(uniques),
    )
    return values[inverse]


def assign_parts(
    frame: pd.DataFrame,
    oot_months: int,
    test_share: float,
    seed: int,
    horizon_days: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Part label per row (see the module docstring) and the OOT months; with `horizon_days`,
    earlier rows whose horizon ends after the first OOT cut get the part "embargo"."""
    months = sorted(pd.to_datetime(frame[CUT_DATE]).dt.to_period("M").unique())
    if len(months) <= oot_months:
        raise TrainingDataError(
            f"gold has {len(months)} labeled cut month(s); need more than oot_months={oot_months} "
            "to keep earlier months for train and test"
        )
    oot = set(months[-oot_months:])
    row_month = pd.to_datetime(frame[CUT_DATE]).dt.to_period("M")
    is_oot = row_month.isin(oot).to_numpy()
    u_test = client_fraction(frame[CLIENT_KEY], seed, "test")
    u_valid = client_fraction(frame[CLIENT_KEY], seed, "valid")
    part = np.where(u_test < test_share, "test", np.where(u_valid < VALID_SHARE, "valid", "train"))
    part = np.where(is_oot, "oot", part).astype(object)
    if horizon_days is not None and is_oot.any():
        cut = pd.to_datetime(frame[CUT_DATE])
        first_oot = cut[is_oot].min()
        reaches = (cut + pd.Timedelta(days=horizon_days) > first_oot).to_numpy()
        part = np.where(~is_oot & reaches, EMBARGO, part).astype(object)
    return part, [str(m) for m in sorted(oot)]


def load_dataset(
    lake: Lake, oot_months: int, test_share: float, seed: int, sample_clients: int | None = None
) -> Dataset:
    """Labeled (target not null) eligible gold rows, split into parts; with `sample_clients`,
    those of that many clients (a client's part does not depend on the sample)."""
    frame, info = read_gold(lake, sample_clients, seed)
    missing = [c for c in (OBLIGATION_ID, CUT_DATE, CLIENT_KEY, ELIGIBLE, TARGET) if c not in frame]
    if missing:
        raise TrainingDataError(f"gold.{GOLD_TABLE} lacks column(s) {', '.join(missing)}")
    labeled = frame.loc[frame[ELIGIBLE].fillna(False).astype(bool) & frame[TARGET].notna()]
    labeled = labeled.reset_index(drop=True)
    if labeled.empty:
        raise TrainingDataError(
            f"gold.{GOLD_TABLE} (version {info.get('version')}) has no labeled eligible rows"
        )
    labeled[TARGET] = labeled[TARGET].astype(np.int64)
    features, categorical = feature_columns(labeled)
    for name in features:
        if name in categorical:
            labeled[name] = labeled[name].astype(object).where(labeled[name].notna(), None)
        else:
            labeled[name] = numeric(labeled[name])
    horizon = info.get("horizon_days")
    part, oot = assign_parts(
        labeled, oot_months, test_share, seed, int(horizon) if horizon is not None else None
    )
    keep = part != EMBARGO
    embargoed = int((~keep).sum())
    labeled, part = labeled.loc[keep].reset_index(drop=True), part[keep]
    dataset = Dataset(labeled, features, categorical, part, oot, gold=info, embargoed=embargoed)
    for name in PARTS:
        y = dataset.y(name)
        if len(y) == 0 or y.min() == y.max():
            raise TrainingDataError(
                f"the {name} part has {len(y)} rows and a single class; more data is needed "
                f"(labeled eligible rows: {len(labeled)})"
            )
    return dataset


def read_truth(path: Path) -> pd.DataFrame:
    """Simulator ground truth (cut_date, obligation_id, p_true); for oracle figures only."""
    truth = pd.read_csv(path, dtype={OBLIGATION_ID: str, "p_true": np.float64})
    truth[CUT_DATE] = pd.to_datetime(truth[CUT_DATE]).astype("datetime64[ns]")
    return truth[[CUT_DATE, OBLIGATION_ID, "p_true"]]


def truth_path(settings: Settings, lake: Lake) -> Path | None:
    """settings.truth_path, else `<extract_dir>/_truth/p_true.csv` of the current raw version."""
    if settings.truth_path is not None:
        return Path(settings.truth_path) if Path(settings.truth_path).exists() else None
    try:
        extract_dir = lake.run_info("raw").get("extract_dir")
    except (CobranzaError, OSError):
        return None
    if not extract_dir:
        return None
    path = Path(extract_dir) / "_truth" / "p_true.csv"
    return path if path.exists() else None


def attach_truth(frame: pd.DataFrame, path: Path | None) -> np.ndarray | None:
    """p_true aligned with frame's rows (NaN where absent), or None without ground truth."""
    if path is None:
        return None
    truth = read_truth(path)
    keys = pd.DataFrame(
        {
            CUT_DATE: pd.to_datetime(frame[CUT_DATE]).astype("datetime64[ns]"),
            OBLIGATION_ID: frame[OBLIGATION_ID].astype(str),
        }
    )
    joined = keys.merge(truth, on=[CUT_DATE, OBLIGATION_ID], how="left", validate="many_to_one")
    return joined["p_true"].to_numpy(dtype=np.float64)


POTENTIAL_OUTCOMES = (
    "p_cure_debit_no_action",
    "p_cure_debit_action",
    "p_roll_no_action",
    "p_roll_action",
)


def attach_potential_outcomes(frame: pd.DataFrame, p_true_path: Path | None) -> pd.DataFrame | None:
    """The simulator's probabilities of both potential outcomes aligned with frame's rows (NaN
    where absent), from `potential_outcomes.parquet` beside `p_true.csv`; None without them.
    For oracle figures only: never a model input."""
    if p_true_path is None:
        return None
    path = Path(p_true_path).parent / "potential_outcomes.parquet"
    if not path.exists():
        return None
    truth = pd.read_parquet(path, columns=[CUT_DATE, OBLIGATION_ID, *POTENTIAL_OUTCOMES])
    truth[CUT_DATE] = pd.to_datetime(truth[CUT_DATE]).astype("datetime64[ns]")
    truth[OBLIGATION_ID] = truth[OBLIGATION_ID].astype(str)
    keys = pd.DataFrame(
        {
            CUT_DATE: pd.to_datetime(frame[CUT_DATE]).astype("datetime64[ns]"),
            OBLIGATION_ID: frame[OBLIGATION_ID].astype(str),
        }
    )
    joined = keys.merge(truth, on=[CUT_DATE, OBLIGATION_ID], how="left", validate="many_to_one")
    return joined[list(POTENTIAL_OUTCOMES)].reset_index(drop=True)
