"""The chunk's state turned into the contract's tables (Arrow), identifiers given in file order."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cobranza.contract import (
    ACTION_OUTCOMES,
    ACTION_TYPES,
    ATTEMPT_RESULTS,
    CHANNELS,
    EMPLOYMENT_TYPES,
    PRODUCTS,
    REJECT_REASONS,
    SEGMENTS,
)
from cobranza.simulate.common import SME, choice_str, dates, id_array
from cobranza.simulate.months import World
from cobranza.simulate.people import personal_columns


def _timestamps(w: World, ev, date_col: str | None = None) -> np.ndarray:
    """Event timestamps from (month, day, second) or (date, second) columns."""
    if date_col is not None:
        return ev.get(date_col, "datetime64[D]").astype("datetime64[s]") + ev.get(
            "sec", np.int64
        ).astype("timedelta64[s]")
    return w.cal.month_start[ev.get("m", np.int64)].astype("datetime64[s]") + (
        (ev.get("day", np.int64) - 1) * 86400 + ev.get("sec", np.int64)
    ).astype("timedelta64[s]")


def clients_table(w: World, client_id: pa.Array, customer_since: np.ndarray) -> pa.Table:
    c = w.c
    pers = personal_columns(w.rng, c.gender, c.seg == SME)
    return pa.table(
        {
            "client_id": client_id,
            "document_type": pa.array(pers["document_type"], pa.string()),
            "document_number": pa.array(pers["document_number"], pa.string()),
            "full_name": pa.array(pers["full_name"], pa.string()),
            "birth_date": dates(c.birth),
            "gender": pa.array(c.gender, pa.string()),
            "city": pa.array(pers["city"], pa.string()),
            "region": pa.array(pers["region"], pa.string()),
            "segment": choice_str(SEGMENTS, c.seg),
            "employment_type": choice_str(EMPLOYMENT_TYPES, c.emp),
            "monthly_income": pa.array(c.declared, mask=c.declared_missing),
            "customer_since": dates(customer_since),
            "email": pa.array(pers["email"], pa.string()),
            "phone": pa.array(pers["phone"], pa.string()),
        }
    )


def obligations_table(w: World, client_id: pa.Array, obligation_id: pa.Array) -> pa.Table:
    o = w.o
    obl_status = np.array(["ACTIVE", "CLOSED", "WRITTEN_OFF"], dtype=object)[w.status]
    return pa.table(
        {
            "obligation_id": obligation_id,
            "client_id": pc.take(client_id, pa.array(o.ocl)),
            "product": choice_str(PRODUCTS, o.prod),
            "origination_date": dates(o.orig_date),
            "maturity_date": pa.array(
                o.maturity.astype("datetime64[D]"), pa.date32(), mask=o.revolving
            ),
            "original_amount": pa.array(o.amount),
            "annual_rate": pa.array(o.rate),
            "term_months": pa.array(o.term, pa.int64(), mask=o.revolving),
            "installment_amount": pa.array(o.inst),
            "due_day": pa.array(o.due_day, pa.int64()),
            "status": pa.array(obl_status, pa.string()),
            "closed_date": pa.array(w.closed, pa.date32(), mask=np.isnat(w.closed)),
        }
    )


def mandates_table(
    w: World, c_ids: np.ndarray, obligation_id: pa.Array, mand_base: int
) -> tuple[pa.Table, np.ndarray]:
    """One row per mandate, end_date/status from the recorded stops; returns its file ranks."""
    md = w.md
    m_obl = np.concatenate(md.obl) if md.obl else np.zeros(0, np.int64)
    m_start = np.concatenate(md.start) if md.start else np.zeros(0, "datetime64[D]")
    m_own = np.concatenate(md.own) if md.own else np.zeros(0, bool)
    m_part = np.concatenate(md.partial) if md.partial else np.zeros(0, bool)
    m_end = np.full(len(m_obl), np.datetime64("NaT"), "datetime64[D]")
    m_status = np.zeros(len(m_obl), np.int64)
    ends = {k: [np.asarray(x) for x in v] for k, v in md.ends.items()}
    e_idx = np.concatenate(ends["idx"]).astype(np.int64) if ends["idx"] else np.zeros(0, np.int64)
    e_date = np.concatenate(ends["date"]).astype("datetime64[D]") if ends["idx"] else m_end[:0]
    e_stat = np.concatenate(ends["status"]).astype(np.int64) if ends["idx"] else m_status[:0]
    m_end[e_idx] = e_date
    m_status[e_idx] = e_stat
    m_end = np.where(~np.isnat(m_end) & (m_end <= m_start), m_start + 1, m_end)
    ocl = w.o.ocl
    m_cl = c_ids[ocl[m_obl]]
    # The client's own deposit account (A…) or their account in another bank (B…).
    account_id = pc.if_else(pa.array(m_own), id_array("A", m_cl, 9), id_array("B", m_cl, 9))
    m_checking = np.where(m_own, w.c.checking[ocl[m_obl]], w.rng.random(len(m_obl)) < 0.25)
    mand_gid = mand_base + np.arange(len(m_obl))
    order = np.lexsort((mand_gid, m_obl))
    mand_rank = np.empty(len(order), np.int64)
    mand_rank[order] = np.arange(len(order))
    mand_gid = mand_base + mand_rank  # mandate ids follow obligation order
    table = pa.table(
        {
            "mandate_id": id_array("M", mand_gid, 9),
            "obligation_id": pc.take(obligation_id, pa.array(m_obl)),
            "account_id": account_id,
            "account_type": pa.array(np.where(m_checking, "CHECKING", "SAVINGS"), pa.string()),
            "account_bank": pa.array(np.where(m_own, "OWN", "OTHER"), pa.string()),
            "start_date": dates(m_start),
            "end_date": pa.array(m_end, pa.date32(), mask=np.isnat(m_end)),
            "status": choice_str(("ACTIVE", "SUSPENDED", "CANCELLED"), m_status),
            "debit_mode": pa.array(np.where(m_part, "PARTIAL_ALLOWED", "FULL"), pa.string()),
        }
    ).take(pa.array(order))
    return table, mand_rank


def installments_table(w: World, obligation_id: pa.Array) -> pa.Table:
    """Installments of the window months, numbered from origination."""
    io, im = np.nonzero(w.inst_amt > 0)
    due = w.cal.month_start[im] + (w.due_day_m[io, im] - 1).astype("timedelta64[D]")
    return pa.table(
        {
            "obligation_id": pc.take(obligation_id, pa.array(io)),
            "installment_no": pa.array(im - w.o.oj[io], pa.int64()),
            "due_date": dates(due),
            "amount_due": pa.array(w.inst_amt[io, im]),
        }
    )


def attempts_table(w: World, mandate_ids: pa.Array, attempt_base: int) -> pa.Table:
    att = w.att
    a_obl = att.get("obl", np.int64)
    a_ts = _timestamps(w, att)
    a_order = np.lexsort((a_obl, a_ts))
    a_res = att.get("res", np.int64)
    a_reason = att.get("reason", np.int64)
    return pa.table(
        {
            "attempt_id": id_array("DA", attempt_base + np.arange(len(a_obl)), 10),
            "mandate_id": pc.take(mandate_ids, pa.array(att.get("mand", np.int64)[a_order]))
            if len(a_obl)
            else pa.array([], pa.string()),
            "attempt_ts": pa.array(a_ts[a_order], pa.timestamp("s")),
            "amount_requested": pa.array(att.get("req", float)[a_order]),
            "amount_debited": pa.array(att.get("deb", float)[a_order]),
            "result": choice_str(ATTEMPT_RESULTS, a_res[a_order]),
            "reject_reason": pa.array(
                np.array(REJECT_REASONS, dtype=object)[np.maximum(a_reason[a_order], 0)],
                pa.string(),
                mask=a_reason[a_order] < 0,
            ),
        }
    )


def payments_table(w: World, obligation_id: pa.Array, payment_base: int) -> pa.Table:
    pay = w.pay
    p_obl = pay.get("obl", np.int64)
    p_ts = _timestamps(w, pay)
    p_order = np.lexsort((p_obl, p_ts))
    rev_day = pay.get("rev_day", np.int64)
    rev_ts = w.cal.month_start[pay.get("m", np.int64)].astype("datetime64[s]") + (
        (rev_day - 1) * 86400 + pay.get("rev_sec", np.int64)
    ).astype("timedelta64[s]")
    return pa.table(
        {
            "payment_id": id_array("P", payment_base + np.arange(len(p_obl)), 10),
            "obligation_id": pc.take(obligation_id, pa.array(p_obl[p_order])),
            "payment_ts": pa.array(p_ts[p_order], pa.timestamp("s")),
            "amount": pa.array(pay.get("amount", float)[p_order]),
            "channel": choice_str(CHANNELS, pay.get("channel", np.int64)[p_order]),
            "reversed_ts": pa.array(rev_ts[p_order], pa.timestamp("s"), mask=rev_day[p_order] == 0),
        }
    )


def accounts_table(w: World, c_ids: np.ndarray, customer_since: np.ndarray) -> pa.Table:
    """Monthly summary of the clients' own (debitable) accounts."""
    a, M = w.a, w.cal.n
    since_m = (customer_since.astype("datetime64[M]") - w.md.base_month).astype(np.int64)
    ac, am = np.nonzero(w.c.own_account[:, None] & (np.arange(M)[None, :] >= since_m[:, None]))
    return pa.table(
        {
            "account_id": id_array("A", c_ids[ac], 9),
            "month": dates(w.cal.month_start[am]),
            "avg_balance": pa.array(np.round(a.avg_bal[ac, am], 2)),
            "min_balance": pa.array(np.round(a.min_bal[ac, am], 2)),
            "end_balance": pa.array(np.round(a.end_bal[ac, am], 2)),
            "inflow_total": pa.array(np.round(a.inflow[ac, am], 2)),
            "payroll_inflow": pa.array(np.round(a.payroll[ac, am], 2)),
            "n_inflows": pa.array(a.n_inflows[ac, am], pa.int64()),
            "outflow_total": pa.array(np.round(a.outflow[ac, am], 2)),
        }
    )


def cuts_table(w: World, obligation_id: pa.Array) -> pa.Table:
    cuts = w.cuts
    c_obl = cuts.get("obl", np.int64)
    c_m = cuts.get("m", np.int64)
    c_order = np.lexsort((c_obl, c_m))
    return pa.table(
        {
            "cut_date": dates(w.cal.cut[c_m[c_order]]),
            "obligation_id": pc.take(obligation_id, pa.array(c_obl[c_order])),
            "days_past_due": pa.array(cuts.get("dpd", np.int64)[c_order], pa.int64()),
            "amount_past_due": pa.array(cuts.get("apd", float)[c_order]),
            "outstanding_balance": pa.array(cuts.get("bal", float)[c_order]),
        }
    )


def actions_table(w: World, obligation_id: pa.Array, action_base: int) -> pa.Table:
    acts = w.acts
    x_obl = acts.get("obl", np.int64)
    x_ts = _timestamps(w, acts, "date")
    x_order = np.lexsort((x_obl, x_ts))
    return pa.table(
        {
            "action_id": id_array("CA", action_base + np.arange(len(x_obl)), 10),
            "obligation_id": pc.take(obligation_id, pa.array(x_obl[x_order])),
            "action_ts": pa.array(x_ts[x_order], pa.timestamp("s")),
            "action_type": choice_str(ACTION_TYPES, acts.get("type", np.int64)[x_order]),
            "outcome": choice_str(ACTION_OUTCOMES, acts.get("outcome", np.int64)[x_order]),
            "cost": pa.array(acts.get("cost", float)[x_order]),
        }
    )
