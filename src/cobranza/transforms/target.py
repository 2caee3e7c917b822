"""The target `self_cure_debit` and the outcome of every early-delinquency episode (contract rules).

A cut at d self-cures through the debit when the payments dated in (d, d + H] cover the amount
past due at d and every one of them came through RECURRING_DEBIT. The same outcome, for past cuts
whose horizon has ended, feeds the "how did past episodes end" features; the label itself is null
while the horizon is not fully observed (d + H later than the extract's as_of).
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from cobranza.contract import DEBIT_CHANNEL, EARLY_DPD_MAX, EARLY_DPD_MIN

# Payments are compared to the amount past due with half a centavo of slack, so that a debit of
# exactly the amount due is not lost to floating-point summation order (which differs by engine).
COVER_TOLERANCE = 0.005


def early_delinquent(cuts: ir.Table) -> ir.Table:
    """The scoring unit: cuts showing 1 to 30 days past due."""
    return cuts.filter(cuts.days_past_due.between(EARLY_DPD_MIN, EARLY_DPD_MAX))


def horizon_outcome(cuts: ir.Table, payments: ir.Table, horizon_days: int) -> ir.Table:
    """Per cut: what was paid in (d, d + H] and how; columns added to `cuts`.

    `cured_debit` is the contract's label ignoring as_of; `cured_other` marks episodes covered
    with at least one payment through another channel.
    """
    c = cuts.mutate(horizon_end=cuts.cut_date + ibis.interval(days=horizon_days))
    p = payments.select(
        p_obligation_id=payments.obligation_id,
        p_date=payments.payment_date,
        p_amount=payments.amount,
        p_other=(payments.channel != DEBIT_CHANNEL).cast("int64"),
    )
    j = c.join(
        p,
        [
            c.obligation_id == p.p_obligation_id,
            p.p_date > c.cut_date,
            p.p_date <= c.horizon_end,
        ],
        how="left",
    )
    agg = j.group_by(["obligation_id", "cut_date"]).aggregate(
        paid_in_horizon=j.p_amount.sum(),
        payments_in_horizon=j.p_amount.count(),
        other_channel_payments=j.p_other.sum(),
    )
    paid = agg.paid_in_horizon.fill_null(0.0)
    covered = c.amount_past_due <= paid + COVER_TOLERANCE
    other = agg.other_channel_payments.fill_null(0)
    out = c.join(agg, ["obligation_id", "cut_date"], how="left")
    return out.select(
        *[out[name] for name in c.columns],
        paid_in_horizon=paid.cast("float64"),
        payments_in_horizon=agg.payments_in_horizon.fill_null(0).cast("int64"),
        cured_debit=(covered & (other == 0)).cast("int64"),
        cured_other=(covered & (other > 0)).cast("int64"),
    )


def self_cure_debit(outcome: ir.Table, as_of: date) -> ir.IntegerValue:
    """The label: null while the horizon reaches past the extract's date."""
    return (outcome.horizon_end > ibis.literal(as_of)).ifelse(
        ibis.null().cast("int64"), outcome.cured_debit
    )
