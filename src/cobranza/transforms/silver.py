"""Silver tables: standardized, integrated and pseudonymized; one pure Ibis function per table.

Personal data stops at raw. Silver identifies clients by `client_key` (HMAC-SHA256, with the
deployment's pseudonym key, of a purpose tag and the bank's client_id, computed in Ibis so DuckDB
and Spark agree bit for bit) and deposit accounts by `account_key` the same way. client_id, names, documents, e-mail, phone and the
exact birth date never reach silver; `_line` and extra columns are dropped. Events get a date
column (the calendar day of their naive local timestamp), which is what point-in-time rules compare;
a payment's reversal gets one too (`reversal_date`). Obligation ids stay as the bank spells them
(they carry no personal data), so `collection_assignments` needs no pseudonym.
"""

from __future__ import annotations

import hashlib

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

HMAC_BLOCK = 64  # bytes: SHA-256's block, the HMAC key's padded size


@ibis.udf.scalar.builtin(name="hex")
def _hex(value: str) -> str:
    """The UTF-8 bytes of a string in hexadecimal (DuckDB's and Spark's `hex`)."""


@ibis.udf.scalar.builtin(name="unhex")
def _unhex(value: str) -> bytes:
    """The bytes a hexadecimal string spells (DuckDB's and Spark's `unhex`)."""


def _sha256_hex(value: ir.BinaryValue) -> ir.StringValue:
    return ops.HexDigest(value, "sha256").to_expr()


def hmac_pads(key: bytes) -> tuple[str, str]:
    """The HMAC's inner and outer keys (K xor ipad, K xor opad) in hexadecimal (RFC 2104)."""
    k = key if len(key) <= HMAC_BLOCK else hashlib.sha256(key).digest()
    k = k.ljust(HMAC_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in k).hex(), bytes(b ^ 0x5C for b in k).hex()


def pseudonym(value: ir.StringValue, key: bytes, purpose: str) -> ir.StringValue:
    """HMAC-SHA256(key, "<purpose>:<value>") in hexadecimal; the purpose tag keeps client and
    account keys unlinkable.

    HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) with H = SHA-256, written with the functions
    both engines share (`hex`, `unhex`, SHA-256 of bytes) so DuckDB and Spark agree bit for bit
    and both equal Python's `hmac.new(key, m, "sha256").hexdigest()`.
    """
    inner_key, outer_key = hmac_pads(key)
    message = _hex(ibis.literal(f"{purpose}:") + value)
    inner = _sha256_hex(_unhex(ibis.literal(inner_key) + message))
    return _sha256_hex(_unhex(ibis.literal(outer_key) + inner))


def pseudonym_map(columns: list[ir.StringColumn], key: bytes, purpose: str) -> ir.Table:
    """(`_pid`, `pseudonym`): every distinct non-missing id of `columns`, hashed once.

    Two SHA-256 per id cost more than a hash join: the tables that carry an id (a client's
    obligations, an account's months and mandates) join this map instead of hashing it again.
    The map holds the bank's ids beside their pseudonyms, so it is never written: the pipeline
    keeps it in the engine (`Engine.materialize`) for the silver tables that read it.
    """
    ids = columns[0].name("_pid").as_table()
    for column in columns[1:]:
        ids = ids.union(column.name("_pid").as_table())
    ids = ids.filter(ids._pid.notnull()).distinct()
    return ids.mutate(pseudonym=pseudonym(ids._pid, key, purpose))


def client_keys(clients: ir.Table, obligations: ir.Table, key: bytes) -> ir.Table:
    """The client pseudonyms of every client id silver carries."""
    return pseudonym_map([clients.client_id, obligations.client_id], key, "client")


def account_keys(debit_mandates: ir.Table, account_monthly: ir.Table, key: bytes) -> ir.Table:
    """The account pseudonyms of every deposit account id silver carries."""
    return pseudonym_map([debit_mandates.account_id, account_monthly.account_id], key, "account")


def with_pseudonym(table: ir.Table, column: str, keys: ir.Table, name: str) -> ir.Table:
    """`table` with `name` = the pseudonym of `table[column]` from the map `keys`
    (`pseudonym_map`); a missing id keeps a missing key."""
    renamed = keys.select(_pid=keys._pid, **{name: keys.pseudonym})
    return table.left_join(renamed, table[column] == renamed._pid).drop("_pid")


def silver_clients(clients: ir.Table, client_keys: ir.Table) -> ir.Table:
    """One row per client; birth date reduced to the year (the age band is computed per cut)."""
    clients = with_pseudonym(clients, "client_id", client_keys, "client_key")
    return clients.select(
        client_key=clients.client_key,
        birth_year=clients.birth_date.year().cast("int64"),
        gender=clients.gender,
        city=clients.city,
        region=clients.region,
        segment=clients.segment,
        employment_type=clients.employment_type,
        monthly_income=clients.monthly_income.cast("float64"),
        customer_since=clients.customer_since,
    )


def silver_obligations(obligations: ir.Table, client_keys: ir.Table) -> ir.Table:
    """Obligations with their client pseudonymized."""
    o = with_pseudonym(obligations, "client_id", client_keys, "client_key")
    return o.select(
        obligation_id=o.obligation_id,
        client_key=o.client_key,
        product=o.product,
        origination_date=o.origination_date,
        maturity_date=o.maturity_date,
        original_amount=o.original_amount.cast("float64"),
        annual_rate=o.annual_rate.cast("float64"),
        term_months=o.term_months.cast("int64"),
        installment_amount=o.installment_amount.cast("float64"),
        due_day=o.due_day.cast("int64"),
        status=o.status,
        closed_date=o.closed_date,
    )


def silver_debit_mandates(debit_mandates: ir.Table, account_keys: ir.Table) -> ir.Table:
    """Mandates with the debited account pseudonymized (it links to `account_monthly`)."""
    m = with_pseudonym(debit_mandates, "account_id", account_keys, "account_key")
    return m.select(
        mandate_id=m.mandate_id,
        obligation_id=m.obligation_id,
        account_key=m.account_key,
        account_type=m.account_type,
        account_bank=m.account_bank,
        start_date=m.start_date,
        end_date=m.end_date,
        status=m.status,
        debit_mode=m.debit_mode,
    )


def silver_installments(installments: ir.Table) -> ir.Table:
    i = installments
    return i.select(
        obligation_id=i.obligation_id,
        installment_no=i.installment_no.cast("int64"),
        due_date=i.due_date,
        amount_due=i.amount_due.cast("float64"),
    )


def silver_payments(payments: ir.Table) -> ir.Table:
    p = payments
    return p.select(
        payment_id=p.payment_id,
        obligation_id=p.obligation_id,
        payment_ts=p.payment_ts,
        payment_date=p.payment_ts.date(),
        amount=p.amount.cast("float64"),
        channel=p.channel,
        reversed_ts=p.reversed_ts,
        reversal_date=p.reversed_ts.date(),
    )


def silver_debit_attempts(debit_attempts: ir.Table, debit_mandates: ir.Table) -> ir.Table:
    """Attempts get their obligation through the mandate (ingest guarantees the reference)."""
    a = debit_attempts
    m = debit_mandates.select(
        m_mandate_id=debit_mandates.mandate_id, obligation_id=debit_mandates.obligation_id
    )
    j = a.join(m, a.mandate_id == m.m_mandate_id)
    return j.select(
        attempt_id=j.attempt_id,
        mandate_id=j.mandate_id,
        obligation_id=j.obligation_id,
        attempt_ts=j.attempt_ts,
        attempt_date=j.attempt_ts.date(),
        amount_requested=j.amount_requested.cast("float64"),
        amount_debited=j.amount_debited.cast("float64"),
        result=j.result,
        reject_reason=j.reject_reason,
    )


def silver_account_monthly(account_monthly: ir.Table, account_keys: ir.Table) -> ir.Table:
    """Monthly account summaries; `month_index` (year*12+month) makes month windows plain ranges."""
    a = with_pseudonym(account_monthly, "account_id", account_keys, "account_key")
    return a.select(
        account_key=a.account_key,
        month=a.month,
        month_index=(a.month.year() * 12 + a.month.month()).cast("int64"),
        avg_balance=a.avg_balance.cast("float64"),
        min_balance=a.min_balance.cast("float64"),
        end_balance=a.end_balance.cast("float64"),
        inflow_total=a.inflow_total.cast("float64"),
        payroll_inflow=a.payroll_inflow.cast("float64"),
        n_inflows=a.n_inflows.cast("int64"),
        outflow_total=a.outflow_total.cast("float64"),
    )


def silver_portfolio_cuts(portfolio_cuts: ir.Table) -> ir.Table:
    c = portfolio_cuts
    return c.select(
        cut_date=c.cut_date,
        obligation_id=c.obligation_id,
        days_past_due=c.days_past_due.cast("int64"),
        amount_past_due=c.amount_past_due.cast("float64"),
        outstanding_balance=c.outstanding_balance.cast("float64"),
    )


HISTORY_PERIODS = 12  # periods before the first cut: the longest event window (12 months)


def _boundary(first: ir.DateValue, gap_days: ir.IntegerValue, k: ir.IntegerValue) -> ir.DateValue:
    """The period boundary k periods before the first cut: month ends when the first cut is a month
    end (the contract's default calendar), else k times the first gap between cuts."""
    month_end = (first + ibis.interval(days=1)).day() == 1
    index = first.year().cast("int64") * 12 + first.month().cast("int64") - k  # month after k back
    next_first = ibis.date((index // 12).cast("int32"), (index % 12 + 1).cast("int32"), 1)
    by_month = next_first - ibis.interval(days=1)
    by_gap = first - (k * gap_days).as_interval("D")
    return month_end.ifelse(by_month, by_gap)


def silver_cut_calendar(portfolio_cuts: ir.Table) -> ir.Table:
    """The bank's cut dates numbered 1..n (`is_cut`), after HISTORY_PERIODS earlier periods 0, -1, ...

    Period k holds the days in (period_start, cut_date]. Windows of "n months" are the last n
    periods, exact for any cut calendar and, with the default month-end cuts, calendar months.
    Before the first cut the periods go on back (month ends, or the first gap between cuts), so an
    n-month window at an early cut covers n months of the extract's history: neither all of it nor
    only what follows the first cut. Events before the earliest period belong to none.
    """
    cal = portfolio_cuts.select("cut_date").distinct()
    w = ibis.window(order_by=cal.cut_date)
    ranked = cal.mutate(
        rank=ibis.row_number().over(w).cast("int64"),
        period_start=cal.cut_date.lag().over(w),
        gap=cal.cut_date.lead().over(w).delta(cal.cut_date, unit="day").cast("int64"),
    )
    later = ranked.filter(ranked.rank > 0).select(
        cut_date=ranked.cut_date,
        period=ranked.rank + 1,
        period_start=ranked.period_start,
        is_cut=ibis.literal(True),
    )
    first = ranked.filter(ranked.rank == 0)
    # k = 0..HISTORY_PERIODS as rows (an unnested range, not a memtable: the Spark edge runs the
    # compiled SQL, where only tables read from the lake exist)
    b = first.mutate(k_raw=ibis.range(0, HISTORY_PERIODS + 1).unnest())
    b = b.mutate(k=b.k_raw.cast("int64"))  # a cast around the unnest would nest Spark's explode
    gap = b.gap.fill_null(30)  # a single cut: months (month end) or 30 days
    earlier = b.select(  # k = 0 is the first cut itself, bounded below by the boundary k = 1
        cut_date=_boundary(b.cut_date, gap, b.k),
        period=1 - b.k,
        period_start=_boundary(b.cut_date, gap, b.k + 1),
        is_cut=b.k == 0,
    )
    return earlier.union(later)


def silver_collection_assignments(collection_assignments: ir.Table) -> ir.Table:
    """The arm the bank's decision took per early-delinquent obligation and cut (version 2)."""
    a = collection_assignments
    return a.select(
        obligation_id=a.obligation_id,
        cut_date=a.cut_date,
        arm=a.arm,
        policy_id=a.policy_id,
    )


def silver_collection_actions(collection_actions: ir.Table) -> ir.Table:
    c = collection_actions
    return c.select(
        action_id=c.action_id,
        obligation_id=c.obligation_id,
        action_ts=c.action_ts,
        action_date=c.action_ts.date(),
        action_type=c.action_type,
        outcome=c.outcome,
        cost=c.cost.cast("float64"),
    )
