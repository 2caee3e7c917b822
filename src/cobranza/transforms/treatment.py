"""The treatment of every early-delinquency row: the arm the bank's decision took at d and the
collection actions that followed it in the horizon (d, d + H].

`arm` comes from `collection_assignments` (contract version 2). A row the file does not cover is
ASSIGNED at a past cut (the bank managed everyone it did not say otherwise about, as version 1
extracts do) and null at the latest cut, today's decision, not yet taken. `assigned` is
arm = ASSIGNED. `days_to_first_action` counts days from d to the first action dated in the horizon
(null when none), `action_cost` sums their cost exactly (`features.money_sum`); both null while the
horizon is open. None of these is a feature: they happen at or after d.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from cobranza.contract import ASSIGNED_ARM
from cobranza.transforms import schema
from cobranza.transforms.features import money_sum
from cobranza.transforms.target import horizon_open


def arms(spine: ir.Table, assignments: ir.Table, latest_cut: date) -> ir.Table:
    """(obligation_id, cut_date, arm, assigned) per early-delinquency row."""
    s = spine.select("obligation_id", "cut_date")
    a = assignments.select(
        a_obligation_id=assignments.obligation_id,
        a_cut_date=assignments.cut_date,
        a_arm=assignments.arm,
    )
    j = s.left_join(a, [s.obligation_id == a.a_obligation_id, s.cut_date == a.a_cut_date])
    default = (j.cut_date == ibis.literal(latest_cut)).ifelse(
        ibis.null().cast("string"), ibis.literal(ASSIGNED_ARM)
    )
    arm = j.a_arm.fill_null(default)
    return j.select(
        "obligation_id",
        "cut_date",
        **{schema.ARM: arm, schema.ASSIGNED: arm == ASSIGNED_ARM},
    )


def actions_in_horizon(outcome: ir.Table, actions: ir.Table, as_of: date) -> ir.Table:
    """(obligation_id, cut_date, days_to_first_action, action_cost) per row of `outcome`, which
    carries each row's `horizon_end`."""
    o = outcome.select("obligation_id", "cut_date", "horizon_end")
    x = actions.select(
        x_obligation_id=actions.obligation_id, x_date=actions.action_date, x_cost=actions.cost
    )
    j = o.left_join(
        x,
        [
            o.obligation_id == x.x_obligation_id,
            x.x_date > o.cut_date,
            x.x_date <= o.horizon_end,
        ],
    )
    agg = j.group_by(["obligation_id", "cut_date", "horizon_end"]).aggregate(
        first_action=j.x_date.min(), cost=money_sum(j.x_cost)
    )
    is_open = horizon_open(agg, as_of)
    return agg.select(
        "obligation_id",
        "cut_date",
        **{
            schema.DAYS_TO_FIRST_ACTION: is_open.ifelse(
                ibis.null().cast("int64"),
                agg.first_action.delta(agg.cut_date, unit="day").cast("int64"),
            ),
            schema.ACTION_COST: is_open.ifelse(
                ibis.null().cast("float64"), agg.cost.cast("float64").fill_null(0.0)
            ),
        },
    )
