"""A chunk's truth as tables: the drawn outcomes, both potential outcomes, and the bank's
assignment file (`collection_assignments.csv`, the one truth the bank itself records).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cobranza.contract import POTENTIAL_OUTCOME_COLUMNS
from cobranza.simulate.assignment import ARM_NAMES, policy_ids
from cobranza.simulate.common import HORIZON_DAYS, MODE_NAMES, TYPE_NAMES, choice_str, dates
from cobranza.simulate.state import World
from cobranza.simulate.truth import CausalRow

OUTCOME_COLUMNS = (
    "cut_date", "obligation_id", "eligible", "labeled", "p_true", "outcome", "mode", "arm",
    "treated", "cure_any", "roll_31_plus", "amount_recovered",
)  # fmt: skip


def truth_tables(w: World, obligation_id: pa.Array) -> dict[str, pa.Table]:
    """`outcomes`, `potential` and `assignments` tables of the chunk, by cut then obligation."""
    truth, cal = w.truth, w.cal
    t_obl = truth.get("obl", np.int64)
    t_m = truth.get("m", np.int64)
    order = np.lexsort((t_obl, t_m))

    def col(name: str, dtype) -> np.ndarray:
        return truth.get(name, dtype)[order]

    t_obl, t_m = t_obl[order], t_m[order]
    t_cut = cal.cut[t_m]
    labeled = (t_cut + HORIZON_DAYS <= cal.cut[-1]) & (t_m < cal.n - 1)
    decided = t_m < cal.n - 1  # the latest cut has no arm yet
    arm = col("arm", np.int64)
    cut_date = dates(t_cut)
    oid = pc.take(obligation_id, pa.array(t_obl))
    arm_s = pa.array(
        np.array(ARM_NAMES, dtype=object)[np.maximum(arm, 0)], pa.string(), mask=~decided
    )
    treated = pa.array(col("treated", bool), mask=~decided)

    def outcome(x: np.ndarray, dtype=None) -> pa.Array:
        return pa.array(x if dtype is None else x.astype(dtype), mask=~labeled)

    outcomes = pa.table(
        {
            "cut_date": cut_date,
            "obligation_id": oid,
            "eligible": pa.array(col("elig", bool)),
            "labeled": pa.array(labeled),
            "p_true": pa.array(col("p", float)),
            "outcome": outcome(col("y", bool), np.int64),
            "mode": choice_str(MODE_NAMES, col("mode", np.int64)),
            "arm": arm_s,
            "treated": treated,
            "cure_any": outcome(col("cure_any", bool), np.int64),
            "roll_31_plus": outcome(col("roll", bool), np.int64),
            "amount_recovered": outcome(col("recovered", float)),
        }
    )
    row = CausalRow(
        p_waits_raw=col("pw", float),
        p_waits=col("pw", float),
        p_forgot=col("pf", float),
        p_pays_alone=col("pa", float),
        p_pays_managed=col("pm", float),
        p_preempt=col("pq", float),
    )
    potential = {"obligation_id": oid, "cut_date": cut_date, "arm": arm_s}
    potential |= {k: pa.array(v) for k, v in row.potential().items()}
    potential["exposure"] = pa.array(col("exposure", float))
    assert tuple(potential) == POTENTIAL_OUTCOME_COLUMNS
    potential |= {
        "eligible": pa.array(col("elig", bool)),
        "labeled": pa.array(labeled),
        "treated": treated,
        "client_type": pa.array(
            np.array(TYPE_NAMES, dtype=object)[col("ctype", np.int64)],
            pa.string(),
            mask=~labeled,
        ),
        "p_waits": pa.array(row.p_waits),
        "p_forgot": pa.array(row.p_forgot),
        "p_pays_alone": pa.array(row.p_pays_alone),
        "p_pays_managed": pa.array(row.p_pays_managed),
        "p_preempt": pa.array(row.p_preempt),
        "stop_hazard": pa.array(col("hz", float)),
    }
    keep = pa.array(decided)
    assignments = pa.table(
        {
            "obligation_id": oid.filter(keep),
            "cut_date": cut_date.filter(keep),
            "arm": arm_s.filter(keep),
            "policy_id": pa.array(policy_ids(arm[decided], t_cut[decided]), pa.string()),
        }
    )
    return {"outcomes": outcomes, "potential": pa.table(potential), "assignments": assignments}
