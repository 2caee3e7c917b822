"""The bank's historical assignment policy: which early-delinquent rows went to collections.

Every early-delinquent obligation at a cut is ASSIGNED (policy `bau-YYYY`), except:
- HOLDOUT (`holdout-YYYYh1|h2`, by half year of the cut): in the last `holdout_months` labeled
  cuts, the rows whose uniform `u = sha256("salt|obligation_id|cut_date")[:8] / 2**64` is below
  `holdout_share`. Deterministic and reproducible by anyone holding the salt; independent of
  everything the story draws, so the holdout is a randomized control group.
- RULE (`legacy-rule`, only with `legacy_rule`): at most `RULE_MAX_DPD` days past due with a
  mandate covering the cut, left to the debit by a business rule (not random: a confounded arm).
  With month-end cuts and due days 3..27 that is an installment due in the last week of the month.
The latest cut has no assignment (that decision is the one cobranza makes today).
"""

from __future__ import annotations

import hashlib

import numpy as np

from cobranza.contract import ARMS
from cobranza.simulate.config import Calendar, SimulationConfig

ASSIGNED, HOLDOUT, RULE = range(3)
ARM_NAMES = ARMS
RULE_POLICY = "legacy-rule"
RULE_MAX_DPD = 7


def holdout_uniform(salt: str, obligation_ids: list[str], cut_date: str) -> np.ndarray:
    """The documented hash: sha256 of `salt|obligation_id|cut_date`, first 8 bytes / 2**64."""
    out = np.empty(len(obligation_ids))
    for k, oid in enumerate(obligation_ids):
        digest = hashlib.sha256(f"{salt}|{oid}|{cut_date}".encode()).digest()
        out[k] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


def in_holdout_window(cfg: SimulationConfig, cal: Calendar, c: int) -> bool:
    """Cut `c` is one of the last `holdout_months` cuts before the latest."""
    return cal.n - 1 - cfg.holdout_cuts <= c < cal.n - 1


def arms(
    cfg: SimulationConfig,
    cal: Calendar,
    c: int,
    global_obligation: np.ndarray,
    dpd: np.ndarray,
    covering: np.ndarray,
) -> np.ndarray:
    """Arm (ASSIGNED / HOLDOUT / RULE) of early-delinquent rows at cut `c` (not the latest)."""
    arm = np.full(len(dpd), ASSIGNED, np.int64)
    if cfg.legacy_rule:
        arm[(dpd <= RULE_MAX_DPD) & covering] = RULE
    if cfg.holdout_share > 0 and in_holdout_window(cfg, cal, c):
        ids = [f"O{g:09d}" for g in global_obligation]
        u = holdout_uniform(cfg.holdout_salt, ids, str(cal.cut[c]))
        arm[u < cfg.holdout_share] = HOLDOUT
    return arm


def policy_ids(arm: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Policy id of each row: bau-YYYY, holdout-YYYYh1|h2 or legacy-rule."""
    year = cut.astype("datetime64[Y]").astype(np.int64) + 1970
    month = cut.astype("datetime64[M]").astype(np.int64) % 12 + 1
    half = np.where(month <= 6, "h1", "h2")
    year_s = year.astype(str)
    bau = np.char.add("bau-", year_s)
    hold = np.char.add(np.char.add("holdout-", year_s), half)
    return np.where(arm == HOLDOUT, hold, np.where(arm == RULE, RULE_POLICY, bau)).astype(object)
