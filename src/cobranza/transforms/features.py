"""Point-in-time feature groups of `gold.obligation_snapshots`; the registry documenting them is
`registry.FEATURES` (re-exported here).

Every feature of a row at cut date d uses only data stamped on or before d. Events (debit attempts,
payments, collection actions) are first aggregated by (obligation, cut period): period k holds the
days in (cut k-1, cut k], so period p ends exactly at d. Windows of n months are then range joins of
those aggregates to the cuts on `period` in (p-n, p], never row-by-row loops. Account months are
used only once complete (the month's last day <= d). Episode outcomes of past cuts count only when
fully observed by d (horizon ended and next cut seen on or before d). Mandate `status` and obligation
`status` describe the extract date, so they are never features.

Money (amounts, balances, inflows, outflows) is summed exactly (`money_sum`), so a feature does
not depend on the order an engine adds rows in: the same silver gives gold equal bit for bit.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from cobranza.contract import DEBIT_CHANNEL, REJECT_REASONS
from cobranza.transforms.registry import ACCOUNT_WINDOW, EPISODE_WINDOW, WINDOWS
from cobranza.transforms.registry import FEATURES as FEATURES
from cobranza.transforms.registry import FEATURES_BY_NAME as FEATURES_BY_NAME
from cobranza.transforms.registry import Feature as Feature

# ---- helpers ------------------------------------------------------------------------------------
# Money as an exact decimal: a millionth of a peso, 38 digits (sums up to 10^32 pesos).
MONEY = dt.Decimal(precision=38, scale=6)


def month_index(d: ir.DateValue) -> ir.IntegerValue:
    return (d.year() * 12 + d.month()).cast("int64")


def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """num / den, null when den is null or zero (Spark's ANSI mode raises on division by zero)."""
    return num.cast("float64") / den.cast("float64").nullif(0.0)


def count_if(cond: ir.BooleanValue) -> ir.IntegerValue:
    return cond.ifelse(1, 0).cast("int64")


def as_money(amount: ir.NumericValue) -> ir.DecimalValue:
    """`amount` as MONEY, for sums that must not depend on the order rows are added in.

    Floating-point addition is not associative, and DuckDB's parallel aggregates (Spark's partial
    ones too) add doubles in an order that changes from run to run, so a sum of doubles can differ
    in its last bits between two runs on the same data. Each amount is rounded once to MONEY
    (exact for amounts to the centavo); sums of MONEY are exact, so the same whatever the order,
    and a sum cast to float64 is the same double every run.
    """
    return amount.cast(MONEY)


def money_sum(amount: ir.NumericValue) -> ir.DecimalValue:
    """The exact sum of amounts, as MONEY (`as_money`)."""
    return as_money(amount).sum()


def _sum_if(cond: ir.BooleanValue, value: ir.NumericValue) -> ir.NumericValue:
    return cond.ifelse(value, 0).sum()


def _days(later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
    return later.delta(earlier, unit="day").cast("int64")


def _period_lookup(events: ir.Table, date_col: str, calendar: ir.Table) -> ir.Table:
    """(ev_date, period) for the distinct dates of a column: a few thousand rows."""
    dates = events.select(ev_date=events[date_col]).distinct()
    cal = calendar.select(
        c_cut_date=calendar.cut_date, c_period=calendar.period, c_start=calendar.period_start
    )
    return dates.join(
        cal,
        [dates.ev_date <= cal.c_cut_date, cal.c_start.isnull() | (dates.ev_date > cal.c_start)],
    ).select(ev_date="ev_date", period="c_period")


def assign_period(events: ir.Table, date_col: str, calendar: ir.Table) -> ir.Table:
    """Tag events with their cut period; events after the last cut get none and are dropped.

    Distinct event dates (a few thousand) are range-joined to the calendar; the events then get
    their period through an equi-join on the date, which both engines hash-join cheaply.
    """
    lookup = _period_lookup(events, date_col, calendar)
    j = events.join(lookup, events[date_col] == lookup.ev_date)
    return j.drop("ev_date")


def _window_join(spine: ir.Table, agg: ir.Table, window: int, include_current: bool = True):
    """Spine rows (obligation_id, cut_date, period) with the aggregates of the last `window` periods."""
    a = agg.rename(a_obligation_id="obligation_id", a_period="period")
    s = spine.select("obligation_id", "cut_date", "period")
    upper = s.period if include_current else s.period - 1
    lower = s.period - window + (1 if include_current else 0)
    return s.join(
        a,
        [s.obligation_id == a.a_obligation_id, a.a_period >= lower, a.a_period <= upper],
        how="left",
    )


# ---- per-period aggregates of events --------------------------------------------------------------
DEBITED = ("SUCCESS", "PARTIAL")  # attempt results that took money from the account


def attempts_by_period(attempts: ir.Table, calendar: ir.Table) -> ir.Table:
    """Per (obligation, period): attempts by result and reason, and `tail_failures`, the REJECTED
    attempts after the period's last SUCCESS or PARTIAL one (all of them when there is none).

    One aggregate, no window over the attempts: it keeps the period's last debited attempt and the
    list of its rejected ones (most periods have none or one), and the rejected attempts after
    the last debited one are counted in that list.
    """
    a = assign_period(attempts, "attempt_date", calendar)
    debited = a.result.isin(DEBITED)
    rejected = a.result == "REJECTED"
    success = a.result == "SUCCESS"
    aggs = {
        "n_attempts": a.count(),
        "n_success": count_if(success).sum(),
        "n_partial": count_if(a.result == "PARTIAL").sum(),
        "n_rejected": count_if(rejected).sum(),
        "has_ok": count_if(debited).max(),
        "last_ok_ts": debited.ifelse(a.attempt_ts, ibis.null()).max(),
        "last_success_date": success.ifelse(a.attempt_date, ibis.null()).max(),
        "success_day_sum": success.ifelse(a.attempt_date.day(), 0).cast("int64").sum(),
    }
    for reason in REJECT_REASONS:
        aggs[f"n_reject_{reason.lower()}"] = count_if(rejected & (a.reject_reason == reason)).sum()
    aggs["rejected_ts"] = a.attempt_ts.collect(where=rejected)
    agg = a.group_by(["obligation_id", "period"]).aggregate(**aggs)
    late = agg.rejected_ts.filter(lambda ts: ts > agg.last_ok_ts).length()
    tail = agg.last_ok_ts.isnull().ifelse(agg.n_rejected, late.fill_null(0))
    return agg.mutate(tail_failures=tail.cast("int64")).drop("rejected_ts", "last_ok_ts")


def payments_by_period(payments: ir.Table, calendar: ir.Table) -> ir.Table:
    """Per (obligation, period, reversal period): a payment is seen at cut p while it is not
    reversed by p, so the period its reversal falls in is kept (null: never reversed by a cut)."""
    p = assign_period(payments, "payment_date", calendar)
    rev = _period_lookup(p.filter(p.reversal_date.notnull()), "reversal_date", calendar).rename(
        rev_date="ev_date", rev_period="period"
    )
    p = p.left_join(rev, p.reversal_date == rev.rev_date).drop("rev_date")
    debit = p.channel == DEBIT_CHANNEL
    return p.group_by(["obligation_id", "period", "rev_period"]).aggregate(
        n_payments=p.count(),
        amount_paid=money_sum(p.amount),
        n_debit_payments=count_if(debit).sum(),
        amount_debit=money_sum(debit.ifelse(p.amount, 0.0)),
    )


def actions_by_period(actions: ir.Table, calendar: ir.Table) -> ir.Table:
    a = assign_period(actions, "action_date", calendar)
    return a.group_by(["obligation_id", "period"]).aggregate(
        n_actions=a.count(),
        n_contacts=count_if(a.outcome.isin(["CONTACTED", "PROMISE_TO_PAY"])).sum(),
        n_promises=count_if(a.outcome == "PROMISE_TO_PAY").sum(),
        last_action_ts=a.action_ts.max(),
        last_action_date=a.action_date.max(),
        last_outcome=a.outcome.argmax(a.action_ts),
    )


# ---- feature groups: spine in, (obligation_id, cut_date, features...) out ---------------------------
def debit_history_features(spine: ir.Table, by_period: ir.Table) -> ir.Table:
    j = _window_join(spine, by_period, max(WINDOWS))
    last_ok_period = (
        (j.has_ok > 0)
        .ifelse(j.a_period, ibis.null())
        .max()
        .over(group_by=[j.obligation_id, j.cut_date])
    )
    j = j.mutate(last_ok_period=last_ok_period)
    aggs: dict[str, ir.Value] = {}
    for k in WINDOWS:
        inside = j.a_period > j.period - k
        attempts = _sum_if(inside, j.n_attempts)
        aggs[f"debit_attempts_{k}m"] = attempts.fill_null(0)
        aggs[f"debit_success_rate_{k}m"] = ratio(_sum_if(inside, j.n_success), attempts)
        aggs[f"debit_partial_rate_{k}m"] = ratio(_sum_if(inside, j.n_partial), attempts)
    for reason in REJECT_REASONS:
        aggs[f"debit_rejects_{reason.lower()}_12m"] = (
            j[f"n_reject_{reason.lower()}"].sum().fill_null(0)
        )
    aggs["debit_insufficient_funds_share_12m"] = ratio(
        j.n_reject_insufficient_funds.sum(), j.n_rejected.sum()
    )
    aggs["last_success"] = j.last_success_date.max()
    aggs["consecutive_debit_failures"] = _sum_if(
        j.a_period >= j.last_ok_period.fill_null(0), j.tail_failures
    ).fill_null(0)
    aggs["debit_success_day_12m"] = ratio(j.success_day_sum.sum(), j.n_success.sum())
    out = j.group_by(["obligation_id", "cut_date"]).aggregate(**aggs)
    return out.mutate(days_since_debit_success=_days(out.cut_date, out.last_success)).drop(
        "last_success"
    )


def payment_features(spine: ir.Table, by_period: ir.Table) -> ir.Table:
    """Payments not reversed by d: a reversal counts from its date on, never before it."""
    j = _window_join(spine, by_period, max(WINDOWS))
    live = j.rev_period.isnull() | (j.rev_period > j.period)
    aggs: dict[str, ir.Value] = {}
    for k in WINDOWS:
        inside = live & (j.a_period > j.period - k)
        paid = _sum_if(inside, j.amount_paid)
        aggs[f"payments_{k}m"] = _sum_if(inside, j.n_payments).fill_null(0)
        aggs[f"amount_paid_{k}m"] = paid.cast("float64").fill_null(0.0)
        aggs[f"debit_payment_share_{k}m"] = ratio(_sum_if(inside, j.amount_debit), paid)
    aggs["other_channel_payments_12m"] = _sum_if(live, j.n_payments - j.n_debit_payments).fill_null(
        0
    )
    return j.group_by(["obligation_id", "cut_date"]).aggregate(**aggs)


def installment_at_cut(spine: ir.Table, installments: ir.Table) -> ir.Table:
    """The amount of the installment last due on or before d (the latest minimum payment of a
    card), per early-delinquency row that has one; ties on the date go to the higher number."""
    s = spine.select("obligation_id", "cut_date")
    i = installments.select(
        i_obligation_id=installments.obligation_id,
        due_date=installments.due_date,
        installment_no=installments.installment_no,
        amount_due=installments.amount_due,
    )
    j = s.join(i, [s.obligation_id == i.i_obligation_id, i.due_date <= s.cut_date])
    j = j.mutate(
        rn=ibis.row_number().over(
            group_by=[j.obligation_id, j.cut_date],
            order_by=[ibis.desc(j.due_date), ibis.desc(j.installment_no)],
        )
    )
    j = j.filter(j.rn == 0)
    return j.select("obligation_id", "cut_date", installment_at_cut=j.amount_due)


def action_features(spine: ir.Table, by_period: ir.Table) -> ir.Table:
    j = _window_join(spine, by_period, 12)
    out = j.group_by(["obligation_id", "cut_date"]).aggregate(
        actions_3m=_sum_if(j.a_period > j.period - 3, j.n_actions).fill_null(0),
        actions_12m=j.n_actions.sum().fill_null(0),
        contacts_12m=j.n_contacts.sum().fill_null(0),
        promises_12m=j.n_promises.sum().fill_null(0),
        last_action=j.last_action_date.max(),
        last_action_outcome=j.last_outcome.argmax(j.last_action_ts),
    )
    return out.mutate(days_since_last_action=_days(out.cut_date, out.last_action)).drop(
        "last_action"
    )


def episode_outcomes(spine: ir.Table, outcome: ir.Table) -> ir.Table:
    """Past early-delinquency episodes with how they ended and when that became known.

    `outcome` is `target.horizon_outcome` of the early-delinquent cuts; the spine gives each
    episode's period and its next cut (rolled past 30 days or not).
    """
    nxt = spine.select("obligation_id", "cut_date", "period", "next_cut_date", "next_dpd")
    o = outcome.select("obligation_id", "cut_date", "horizon_end", "cured_debit", "cured_other")
    j = o.join(nxt, ["obligation_id", "cut_date"])
    return j.select(
        "obligation_id",
        "period",
        "horizon_end",
        "cured_debit",
        "cured_other",
        "next_cut_date",
        rolled_31=(j.next_dpd > 30).fill_null(False),
    )


def episode_features(spine: ir.Table, episodes: ir.Table) -> ir.Table:
    j = _window_join(spine, episodes, EPISODE_WINDOW, include_current=False)
    seen = j.horizon_end <= j.cut_date
    return j.group_by(["obligation_id", "cut_date"]).aggregate(
        past_early_cuts_12m=j.a_period.count(),
        past_cured_debit_12m=count_if(seen & (j.cured_debit == 1)).sum().fill_null(0),
        past_cured_other_12m=count_if(seen & (j.cured_other == 1)).sum().fill_null(0),
        past_rolled_31_12m=count_if(j.rolled_31 & (j.next_cut_date <= j.cut_date))
        .sum()
        .fill_null(0),
    )


def account_features(covered: ir.Table, account_monthly: ir.Table) -> ir.Table:
    """Deposit-account behaviour over complete months; `covered` has obligation_id, cut_date,
    account_key (of the mandate covering d) and installment_amount."""
    is_month_end = (covered.cut_date + ibis.interval(days=1)).day() == 1
    last_month = month_index(covered.cut_date) - is_month_end.ifelse(0, 1)
    c = covered.select("obligation_id", "cut_date", "account_key", "installment_amount").mutate(
        last_month=last_month
    )
    m = account_monthly.rename(m_account_key="account_key")
    j = c.join(
        m,
        [
            c.account_key == m.m_account_key,
            m.month_index > c.last_month - ACCOUNT_WINDOW,
            m.month_index <= c.last_month,
        ],
        how="left",
    )
    r3 = j.month_index > j.last_month - 3
    prev3 = j.month_index <= j.last_month - 3
    n3 = count_if(r3 & j.month_index.notnull()).sum()
    balance = as_money(j.avg_balance)
    out = j.group_by(["obligation_id", "cut_date"]).aggregate(
        installment_amount=j.installment_amount.max(),
        avg_balance_3m=ratio(_sum_if(r3, balance), n3),
        avg_balance_6m=ratio(balance.sum(), j.avg_balance.count()),
        min_balance_3m=r3.ifelse(j.min_balance, ibis.null()).min(),
        prev3=ratio(_sum_if(prev3, balance), count_if(prev3 & j.month_index.notnull()).sum()),
        end_balance_last_month=(j.month_index == j.last_month)
        .ifelse(j.end_balance, ibis.null())
        .max(),
        inflow3=_sum_if(r3, as_money(j.inflow_total)),
        outflow3=_sum_if(r3, as_money(j.outflow_total)),
        n3=n3,
        payroll_months=count_if(j.payroll_inflow > 0).sum(),
        account_months_6m=j.month_index.count(),
    )
    return out.select(
        "obligation_id",
        "cut_date",
        "avg_balance_3m",
        "avg_balance_6m",
        "min_balance_3m",
        balance_trend_3m=out.avg_balance_3m - out.prev3,
        end_balance_last_month=out.end_balance_last_month,
        balance_to_installment=ratio(out.avg_balance_3m, out.installment_amount),
        inflow_to_installment_3m=ratio(ratio(out.inflow3, out.n3), out.installment_amount),
        outflow_to_inflow_3m=ratio(out.outflow3, out.inflow3),
        payroll_regularity_6m=ratio(out.payroll_months, out.account_months_6m),
        account_months_6m=out.account_months_6m,
    )


def age_band(age: ir.IntegerValue) -> ir.StringValue:
    return ibis.cases(
        (age < 25, "<25"),
        (age < 35, "25-34"),
        (age < 45, "35-44"),
        (age < 55, "45-54"),
        (age < 65, "55-64"),
        else_="65+",
    )
