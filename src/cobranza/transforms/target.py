"""The labels of every early-delinquency row, as they actually happened (contract rules).

A cut at d self-cures through the debit when the payments dated in (d, d + H] cover the amount
past due at d and every one of them came through RECURRING_DEBIT. A payment reversed (by the date
of its `reversed_ts`) on or before d + H does not exist for that horizon: it neither covers the
amount nor breaks the all-debit condition. From the same payments: `cure_any` (covered by any
channel) and `amount_recovered` (what was paid). `roll_31_plus`: the obligation's next cut after d
shows 31 days or more past due, or the obligation was written off on or before that cut.

The same outcome, for past cuts whose horizon has ended, feeds the "how did past episodes end"
features; every label is null while its horizon is not fully observed (d + H later than the
extract's as_of), and `roll_31_plus` also at the latest cut, which has no next cut. What was paid
is summed exactly (`features.money_sum`), whatever the order the engine adds the payments in.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from cobranza.contract import DEBIT_CHANNEL, EARLY_DPD_MAX, EARLY_DPD_MIN
from cobranza.transforms import schema
from cobranza.transforms.features import money_sum

# Payments are compared to the amount past due with half a centavo of slack: both are money to the
# centavo, so a shortfall smaller than that is a rounding of the amounts, not a debt left unpaid.
COVER_TOLERANCE = 0.005
WRITTEN_OFF = "WRITTEN_OFF"
NEVER = date(9999, 12, 31)  # the reversal date of a payment never reversed


def early_delinquent(cuts: ir.Table) -> ir.Table:
    """The scoring unit: cuts showing 1 to 30 days past due."""
    return cuts.filter(cuts.days_past_due.between(EARLY_DPD_MIN, EARLY_DPD_MAX))


def horizon_outcome(cuts: ir.Table, payments: ir.Table, horizon_days: int) -> ir.Table:
    """Per cut: what was paid in (d, d + H] and how, reversals by d + H left out.

    `cured_debit` is the contract's label ignoring as_of; `cured_other` marks episodes covered
    with at least one payment through another channel; `cured_any` either of them.
    """
    c = cuts.mutate(horizon_end=cuts.cut_date + ibis.interval(days=horizon_days))
    p = payments.select(
        p_obligation_id=payments.obligation_id,
        p_date=payments.payment_date,
        # the last day the payment exists: a plain comparison keeps the join a range join (an
        # OR in a left join's condition makes the engine compare every pair)
        p_until=payments.reversal_date.fill_null(NEVER) - ibis.interval(days=1),
        p_amount=payments.amount,
        p_other=(payments.channel != DEBIT_CHANNEL).cast("int64"),
    )
    j = c.join(
        p,
        [
            c.obligation_id == p.p_obligation_id,
            p.p_date > c.cut_date,
            p.p_date <= c.horizon_end,
            p.p_until >= c.horizon_end,
        ],
        how="left",
    )
    agg = j.group_by(["obligation_id", "cut_date"]).aggregate(
        paid_in_horizon=money_sum(j.p_amount),
        payments_in_horizon=j.p_amount.count(),
        other_channel_payments=j.p_other.sum(),
    )
    paid = agg.paid_in_horizon.cast("float64").fill_null(0.0)
    covered = c.amount_past_due <= paid + COVER_TOLERANCE
    other = agg.other_channel_payments.fill_null(0)
    out = c.join(agg, ["obligation_id", "cut_date"], how="left")
    return out.select(
        *[out[name] for name in c.columns],
        paid_in_horizon=paid.cast("float64"),
        payments_in_horizon=agg.payments_in_horizon.fill_null(0).cast("int64"),
        cured_debit=(covered & (other == 0)).cast("int64"),
        cured_other=(covered & (other > 0)).cast("int64"),
        cured_any=covered.cast("int64"),
    )


def horizon_open(outcome: ir.Table, as_of: date) -> ir.BooleanValue:
    """The horizon reaches past the extract's date: what happened in it is not known yet."""
    return outcome.horizon_end > ibis.literal(as_of)


def self_cure_debit(outcome: ir.Table, as_of: date) -> ir.IntegerValue:
    """The label: null while the horizon reaches past the extract's date."""
    return horizon_open(outcome, as_of).ifelse(ibis.null().cast("int64"), outcome.cured_debit)


def rolled(spine: ir.Table, calendar: ir.Table, obligations: ir.Table) -> ir.Table:
    """Per early-delinquency cut: 1 when the obligation's next cut shows 31+ days past due or it
    was written off on or before that cut, 0 otherwise; null at the extract's latest cut.

    `spine` is gold's: the early-delinquency cuts with the obligation's next cut (`next_cut_date`,
    `next_dpd`). An obligation with no next cut (it left the portfolio) is measured at the
    extract's next cut date, so a write-off without a later cut still rolls.
    """
    nxt = spine.select("obligation_id", "cut_date", "next_cut_date", "next_dpd")
    cal = calendar.filter(calendar.is_cut)
    cal = cal.select(
        c_cut_date=cal.cut_date, extract_next=cal.cut_date.lead().over(order_by=cal.cut_date)
    )
    o = obligations.select(
        o_obligation_id=obligations.obligation_id,
        o_status=obligations.status,
        o_closed=obligations.closed_date,
    )
    j = nxt.join(cal, nxt.cut_date == cal.c_cut_date).left_join(
        o, nxt.obligation_id == o.o_obligation_id
    )
    bound = j.next_cut_date.fill_null(j.extract_next)
    written_off = (j.o_status == WRITTEN_OFF) & j.o_closed.notnull() & (j.o_closed <= bound)
    rolled_ = (j.next_dpd >= EARLY_DPD_MAX + 1).fill_null(False) | written_off.fill_null(False)
    return j.select(
        "obligation_id",
        "cut_date",
        **{
            schema.ROLL_31_PLUS: j.extract_next.isnull().ifelse(
                ibis.null().cast("int64"), rolled_.cast("int64")
            )
        },
    )


def labels(outcome: ir.Table, rolls: ir.Table, as_of: date) -> ir.Table:
    """Every label per early-delinquency row, null while its horizon is open."""
    o = outcome.left_join(rolls, ["obligation_id", "cut_date"])
    o = o.select(~ibis.selectors.endswith("_right"))
    is_open = horizon_open(o, as_of)

    def known(value: ir.Value, dtype: str) -> ir.Value:
        return is_open.ifelse(ibis.null().cast(dtype), value.cast(dtype))

    return o.select(
        "obligation_id",
        "cut_date",
        **{
            schema.TARGET: known(o.cured_debit, "int64"),
            schema.CURE_ANY: known(o.cured_any, "int64"),
            schema.ROLL_31_PLUS: known(o[schema.ROLL_31_PLUS], "int64"),
            schema.AMOUNT_RECOVERED: known(o.paid_in_horizon, "float64"),
        },
    )
