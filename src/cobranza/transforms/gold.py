"""Assembly of `gold.obligation_snapshots`: one row per (obligation_id, cut_date) with 1-30 days past due.

Columns: the head first (the keys, client_key, the descriptive columns product, segment,
days_past_due, amount_past_due and outstanding_balance (the exposure), eligible, the treatment
(`treatment`: arm, assigned, days_to_first_action, action_cost), the labels (`target`:
self_cure_debit, cure_any, roll_31_plus, amount_recovered) and split_hint), then every feature of
`registry.FEATURES` not in the head, in registry order, cast to the registry's type. Pure: silver
Ibis tables in, Ibis expressions out. `materialize` lets the engine cache shared intermediate
results (identity by default), without changing what is computed; `assemble` builds gold for a
range of cuts, so an engine whose joins do not spill (DuckDB's chain of hash joins) can write a
large book in parts that each fit its memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir

from cobranza.transforms import features as F
from cobranza.transforms import schema
from cobranza.transforms.target import early_delinquent, horizon_outcome, labels, rolled
from cobranza.transforms.treatment import actions_in_horizon, arms

Materialize = Callable[[str, ir.Table], ir.Table]

HEAD = (
    schema.OBLIGATION_ID,
    schema.CUT_DATE,
    schema.CLIENT_KEY,
    "product",
    "segment",
    "days_past_due",
    "amount_past_due",
    schema.EXPOSURE,
    schema.ELIGIBLE,
    *schema.TREATMENT,
    *schema.LABELS,
    schema.SPLIT_HINT,
)
HEAD_TYPES = {
    schema.OBLIGATION_ID: "string",
    schema.CUT_DATE: "date",
    schema.CLIENT_KEY: "string",
    "product": "string",
    "segment": "string",
    "days_past_due": "int64",
    "amount_past_due": "float64",
    schema.EXPOSURE: "float64",
    schema.ELIGIBLE: "boolean",
    schema.ARM: "string",
    schema.ASSIGNED: "boolean",
    schema.DAYS_TO_FIRST_ACTION: "int64",
    schema.ACTION_COST: "float64",
    schema.TARGET: "int64",
    schema.CURE_ANY: "int64",
    schema.ROLL_31_PLUS: "int64",
    schema.AMOUNT_RECOVERED: "float64",
    schema.SPLIT_HINT: "string",
}
FEATURE_COLUMNS = tuple(f.name for f in F.FEATURES if f.name not in HEAD)
GOLD_COLUMNS = HEAD + FEATURE_COLUMNS


def _identity(name: str, table: ir.Table) -> ir.Table:
    return table


def gold_spine(cuts: ir.Table, calendar: ir.Table) -> ir.Table:
    """Early-delinquent cuts with their period, the previous cut's days past due and the
    obligation's next cut (date and days past due), from one pass over all cuts.

    The next cut is after d: only the outcomes read it (`episode_outcomes` once it is seen by a
    later cut, `target.rolled`); it never reaches a feature.
    """
    w = ibis.window(group_by=cuts.obligation_id, order_by=cuts.cut_date)
    c = cuts.mutate(
        days_past_due_prev_cut=cuts.days_past_due.lag().over(w),
        next_cut_date=cuts.cut_date.lead().over(w),
        next_dpd=cuts.days_past_due.lead().over(w),
    )
    return early_delinquent(c).join(calendar.select("cut_date", "period"), "cut_date")


def mandate_at_cut(spine: ir.Table, mandates: ir.Table, latest_cut: date) -> ir.Table:
    """The mandate covering each cut and the contract's `eligible`.

    Covers d: start_date <= d and (end_date null or end_date > d). Only for the latest cut, whose
    date is the extract's, does the mandate's `status` count (it must be ACTIVE). The features come
    from a usable covering mandate when there is one (at the latest cut: an ACTIVE one, so an
    eligible row never describes a suspended mandate), the latest started first.
    """
    s = spine.select("obligation_id", "cut_date")
    m = mandates.rename(m_obligation_id="obligation_id")
    j = s.join(
        m,
        [
            s.obligation_id == m.m_obligation_id,
            m.start_date <= s.cut_date,
            m.end_date.isnull() | (m.end_date > s.cut_date),
        ],
    )
    usable = (j.cut_date != ibis.literal(latest_cut)) | (j.status == "ACTIVE")
    keys = [j.obligation_id, j.cut_date]
    j = j.mutate(
        rn=ibis.row_number().over(
            group_by=keys,
            order_by=[
                ibis.desc(F.count_if(usable)),
                ibis.desc(j.start_date),
                ibis.desc(j.mandate_id),
            ],
        ),
        n_usable=F.count_if(usable).sum().over(group_by=keys),
    )
    j = j.filter(j.rn == 0)
    return j.select(
        "obligation_id",
        "cut_date",
        "account_key",
        "account_type",
        "account_bank",
        "debit_mode",
        mandate_start=j.start_date,
        eligible=j.n_usable > 0,
    )


def spine_events(events: ir.Table, in_spine: ir.Table) -> ir.Table:
    """The events of the obligations in `in_spine` (one `obligation_id` column), all of them."""
    return events.semi_join(in_spine, "obligation_id")


def open_products(keys: ir.Table, obligations: ir.Table) -> ir.Table:
    """Obligations of each client open at d: originated on or before d and not closed by d."""
    k = keys.select("client_key", "cut_date").distinct()
    o = obligations.select(
        o_client_key=obligations.client_key,
        origination_date=obligations.origination_date,
        closed_date=obligations.closed_date,
    )
    j = k.join(
        o,
        [
            k.client_key == o.o_client_key,
            o.origination_date <= k.cut_date,
            o.closed_date.isnull() | (o.closed_date > k.cut_date),
        ],
    )
    return j.group_by(["client_key", "cut_date"]).aggregate(n_products=j.count())


@dataclass(frozen=True)
class SnapshotParts:
    """Gold before its final join: `base` (one row per spine row, with obligation, client and
    mandate) and the tables left-joined to it, each with its keys, in join order."""

    base: ir.Table
    joins: tuple[tuple[ir.Table, tuple[str, ...]], ...]


def snapshot_parts(
    silver: Mapping[str, ir.Table],
    as_of: date,
    latest_cut: date,
    horizon_days: int,
    materialize: Materialize = _identity,
) -> SnapshotParts:
    """Every piece of gold, each materialized once, so that gold can be assembled in cut ranges
    (`assemble`) without recomputing any of them."""
    cuts = silver["portfolio_cuts"]
    calendar = silver["cut_calendar"]
    obligations = silver["obligations"]

    spine = materialize("spine", gold_spine(cuts, calendar))
    # Events of obligations (and months of accounts) that never reach the spine cannot change a
    # spine row: dropping them before the per-period aggregates leaves every feature as it is.
    in_spine = materialize("in_spine", spine.select("obligation_id").distinct())
    attempts = spine_events(silver["debit_attempts"], in_spine)
    payments = materialize("payments", spine_events(silver["payments"], in_spine))
    actions = materialize("actions", spine_events(silver["collection_actions"], in_spine))
    outcome = materialize(
        "outcome", horizon_outcome(early_delinquent(cuts), payments, horizon_days)
    )
    mandate = materialize("mandate", mandate_at_cut(spine, silver["debit_mandates"], latest_cut))

    base = materialize("base", _base(spine, silver, mandate))
    accounts = base.select("account_key").distinct()
    account_monthly = silver["account_monthly"].semi_join(accounts, "account_key")
    by_obligation = ("obligation_id", "cut_date")
    pieces = {
        "debit_history": (
            F.debit_history_features(spine, F.attempts_by_period(attempts, calendar)),
            by_obligation,
        ),
        "payments": (
            F.payment_features(spine, F.payments_by_period(payments, calendar)),
            by_obligation,
        ),
        "actions": (
            F.action_features(spine, F.actions_by_period(actions, calendar)),
            by_obligation,
        ),
        "episodes": (F.episode_features(spine, F.episode_outcomes(spine, outcome)), by_obligation),
        "account": (F.account_features(base, account_monthly), by_obligation),
        "products": (open_products(base, obligations), ("client_key", "cut_date")),
        # after d: the treatment and the labels, never a feature
        "arms": (arms(spine, silver["collection_assignments"], latest_cut), by_obligation),
        "actions_in_horizon": (actions_in_horizon(outcome, actions, as_of), by_obligation),
        "labels": (labels(outcome, rolled(spine, calendar, obligations), as_of), by_obligation),
    }
    joins = tuple((materialize(name, t), keys) for name, (t, keys) in pieces.items())
    return SnapshotParts(base=base, joins=joins)


def assemble(parts: SnapshotParts, cut_range: tuple[date, date] | None = None) -> ir.Table:
    """Gold's rows whose cut_date is in `cut_range` (inclusive; all rows when None).

    Every joined table is filtered to the range too, so an engine's hash tables hold only the
    range's rows: that is what bounds the final join's memory, whatever the engine's optimizer
    pushes down.
    """

    def within(t: ir.Table) -> ir.Table:
        return t if cut_range is None else t.filter(t.cut_date.between(*cut_range))

    t = within(parts.base)
    for table, keys in parts.joins:
        t = t.left_join(within(table), list(keys)).select(~ibis.selectors.endswith("_right"))
    return _columns(t)


def obligation_snapshots(
    silver: Mapping[str, ir.Table],
    as_of: date,
    latest_cut: date,
    horizon_days: int,
    materialize: Materialize = _identity,
) -> ir.Table:
    """All of gold as one expression."""
    return assemble(snapshot_parts(silver, as_of, latest_cut, horizon_days, materialize))


def cut_ranges(
    rows_by_cut: Sequence[tuple[date, int]], max_rows: int | None
) -> list[tuple[date, date]]:
    """Consecutive cut-date ranges, in order, each of at most `max_rows` rows.

    A cut holding more than `max_rows` rows gets a range of its own: a cut is never split.
    `max_rows` None (or every cut fitting) gives one range covering all cuts.
    """
    ranges: list[tuple[date, date]] = []
    lo = hi = None
    rows = 0
    for cut, n in sorted(rows_by_cut):
        if lo is not None and max_rows is not None and rows + n > max_rows:
            ranges.append((lo, hi))
            lo, rows = None, 0
        if lo is None:
            lo = cut
        hi, rows = cut, rows + n
    if lo is not None:
        ranges.append((lo, hi))
    return ranges


def _base(spine: ir.Table, silver: Mapping[str, ir.Table], mandate: ir.Table) -> ir.Table:
    """The spine with its obligation, client and covering mandate; the installment is the one
    due at or before d from the history when there is one (a card's minimum payment changes
    month to month), else the obligation's, as of the extract."""
    ob = silver["obligations"].drop("status")
    base = spine.drop("next_cut_date", "next_dpd").join(ob, "obligation_id")
    base = base.join(silver["clients"], "client_key")
    base = base.left_join(mandate, ["obligation_id", "cut_date"]).select(
        ~ibis.selectors.endswith("_right")
    )
    due = F.installment_at_cut(spine, silver["installments"])
    base = base.left_join(due, ["obligation_id", "cut_date"]).select(
        ~ibis.selectors.endswith("_right")
    )
    return base.mutate(
        installment_amount=base.installment_at_cut.fill_null(base.installment_amount)
    ).drop("installment_at_cut")


def _columns(t: ir.Table) -> ir.Table:
    """Gold's columns in order and type, the derived features computed at d."""
    d = t.cut_date
    age = d.year().cast("int64") - t.birth_year
    derived = {
        schema.ELIGIBLE: t.eligible.fill_null(False),
        schema.SPLIT_HINT: ibis.null().cast("string"),
        "past_due_to_installment": F.ratio(t.amount_past_due, t.installment_amount),
        "past_due_to_outstanding": F.ratio(t.amount_past_due, t.outstanding_balance),
        "outstanding_to_original": F.ratio(t.outstanding_balance, t.original_amount),
        "obligation_age_months": F.month_index(d) - F.month_index(t.origination_date),
        "months_to_maturity": F.month_index(t.maturity_date) - F.month_index(d),
        "age_band": t.birth_year.isnull().ifelse(ibis.null().cast("string"), F.age_band(age)),
        "client_tenure_months": F.month_index(d) - F.month_index(t.customer_since),
        "installment_to_income": F.ratio(t.installment_amount, t.monthly_income),
        "n_products": t.n_products.fill_null(0),
        "mandate_age_months": F.month_index(d) - F.month_index(t.mandate_start),
        "debit_day_minus_due_day": t.debit_success_day_12m - t.due_day,
    }
    types = {**HEAD_TYPES, **{f.name: f.dtype for f in F.FEATURES}}
    cols = {}
    for name in GOLD_COLUMNS:
        expr = derived[name] if name in derived else t[name]
        cols[name] = expr.cast(types[name])
    return t.select(**cols)
