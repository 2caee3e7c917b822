"""Hand-built raw zones for transform tests: contract-typed pyarrow tables published into a tmp lake.

`random_extract` is a tiny deterministic generator (not the simulator): enough variety (missed
debits, other channels, closed mandates, overdrafts, collection actions, and in version 2 the three
arms and reversed payments) to exercise every feature and every column after d.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cobranza.contract import FILES_BY_STEM, FileSpec, files_for
from cobranza.lake import Lake

ARROW = {
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "decimal": pa.float64(),
    "integer": pa.int64(),
}


def raw_table(stem: str, rows: list[dict], spec: FileSpec | None = None) -> pa.Table:
    """Rows (dicts) as the raw format: contract columns in order, contract types, then `_line`."""
    spec = spec or FILES_BY_STEM[stem]
    arrays = {c.name: pa.array([r.get(c.name) for r in rows], ARROW[c.type]) for c in spec.columns}
    arrays["_line"] = pa.array(range(2, len(rows) + 2), pa.int64())
    return pa.table(arrays)


def publish_raw(
    lake_root: Path, tables: dict[str, list[dict]], as_of: date, version: int = 2
) -> str:
    """Publish one raw version with the tables and columns of a contract version (missing tables
    empty; version 1: no collection_assignments table, no payments.reversed_ts) and return it."""
    lake = Lake(lake_root).ensure()
    with lake.publish("raw", inputs={}, refresh=False) as pub:
        for spec in files_for(version):
            pq.write_table(
                raw_table(spec.stem, tables.get(spec.stem, []), spec),
                pub.table_dir(spec.stem) / "part-0.parquet",
            )
        pq.write_table(
            pa.table(
                {
                    "file": pa.array([], pa.string()),
                    "line": pa.array([], pa.int64()),
                    "column": pa.array([], pa.string()),
                    "value": pa.array([], pa.string()),
                    "reason": pa.array([], pa.string()),
                }
            ),
            pub.table_dir("quarantine") / "part-0.parquet",
        )
        pub.meta["as_of"] = as_of.isoformat()
    return pub.version


# ---- one-row builders for hand-built cases: every required column, valid ----------------------
def client_row(cid: str) -> dict:
    return {
        "client_id": cid,
        "document_type": "CC",
        "document_number": "1" + cid[1:],
        "segment": "MASS",
        "customer_since": date(2020, 1, 1),
    }


def obligation_row(oid: str, cid: str = "C1") -> dict:
    return {
        "obligation_id": oid,
        "client_id": cid,
        "product": "CONSUMER_LOAN",
        "origination_date": date(2023, 1, 15),
        "original_amount": 1_000_000.0,
        "annual_rate": 20.0,
        "installment_amount": 100.0,
        "due_day": 15,
        "status": "ACTIVE",
    }


def mandate_row(oid: str, start=date(2023, 1, 15), end=None, status="ACTIVE") -> dict:
    return {
        "mandate_id": "M" + oid,
        "obligation_id": oid,
        "account_id": "A" + oid,
        "account_type": "SAVINGS",
        "account_bank": "OWN",
        "start_date": start,
        "end_date": end,
        "status": status,
        "debit_mode": "FULL",
    }


def cut_row(oid: str, d: date, dpd: int = 5, apd: float = 100.0) -> dict:
    return {
        "cut_date": d,
        "obligation_id": oid,
        "days_past_due": dpd,
        "amount_past_due": apd if dpd else 0.0,
        "outstanding_balance": 900_000.0,
    }


def payment_row(pid: str, oid: str, ts: datetime, amount: float, channel="RECURRING_DEBIT") -> dict:
    return {
        "payment_id": pid,
        "obligation_id": oid,
        "payment_ts": ts,
        "amount": amount,
        "channel": channel,
    }


def month_ends(first: date, n: int) -> list[date]:
    out, y, m = [], first.year, first.month
    for _ in range(n):
        nm = date(y + (m == 12), m % 12 + 1, 1)
        out.append(nm - timedelta(days=1))
        y, m = nm.year, nm.month
    return out


def random_extract(n_clients: int = 40, months: int = 14, seed: int = 7) -> tuple[dict, date]:
    """A small consistent extract with month-end cuts; returns (tables, as_of)."""
    rng = random.Random(seed)
    cuts_dates = month_ends(date(2023, 1, 1), months)
    as_of = cuts_dates[-1]
    t: dict[str, list[dict]] = {s.stem: [] for s in files_for(2)}
    channels = ["BRANCH", "DIGITAL", "PSE", "CORRESPONDENT"]
    reasons = ["INSUFFICIENT_FUNDS", "ACCOUNT_BLOCKED", "TECHNICAL", "MANDATE_INACTIVE"]
    n_ob = n_att = n_pay = n_act = 0
    for ci in range(n_clients):
        cid = f"C{ci:05d}"
        t["clients"].append(
            {
                "client_id": cid,
                "document_type": "CC",
                "document_number": f"{10_000_000 + ci}",
                "full_name": f"Nombre Apellido {ci}",
                "birth_date": None if ci % 9 == 0 else date(1950 + ci % 50, 1 + ci % 12, 3),
                "gender": "FMX"[ci % 3],
                "city": "Bogota",
                "region": "Cundinamarca",
                "segment": ["MASS", "AFFLUENT", "PREMIUM", "SME"][ci % 4],
                "employment_type": None if ci % 11 == 0 else "SALARIED",
                "monthly_income": None if ci % 13 == 0 else 2_000_000.0 + 100_000 * (ci % 17),
                "customer_since": date(2015 + ci % 8, 1 + ci % 12, 10),
                "email": f"c{ci}@example.com",
                "phone": f"+57300{ci:07d}",
            }
        )
        for _k in range(1 + (ci % 3 == 0)):
            oid = f"O{n_ob:06d}"
            n_ob += 1
            inst = float(rng.choice([150_000, 320_000, 480_000, 1_050_000]))
            due_day = rng.choice([5, 10, 15, 28, 31])
            orig = date(2022, 1 + rng.randrange(12), 1 + rng.randrange(28))
            closed = rng.random() < 0.1
            t["obligations"].append(
                {
                    "obligation_id": oid,
                    "client_id": cid,
                    "product": rng.choice(["CONSUMER_LOAN", "CREDIT_CARD", "VEHICLE"]),
                    "origination_date": orig,
                    "maturity_date": orig + timedelta(days=365 * 4),
                    "original_amount": inst * 40,
                    "annual_rate": 22.5,
                    "term_months": 48,
                    "installment_amount": inst,
                    "due_day": due_day,
                    "status": "CLOSED" if closed else "ACTIVE",
                    "closed_date": cuts_dates[-3] + timedelta(days=5) if closed else None,
                }
            )
            for no in range(1, 25):
                t["installments"].append(
                    {
                        "obligation_id": oid,
                        "installment_no": no,
                        "due_date": orig + timedelta(days=30 * no),
                        "amount_due": inst,
                    }
                )
            mandates = []
            if rng.random() < 0.85:
                start = orig + timedelta(days=rng.randrange(0, 200))
                end = None
                if rng.random() < 0.3:
                    end = cuts_dates[rng.randrange(2, months)] - timedelta(days=rng.randrange(0, 3))
                status = "ACTIVE" if end is None and rng.random() < 0.8 else "CANCELLED"
                acc = f"A{oid}"
                mandates.append((f"M{oid}", acc, start, end))
                t["debit_mandates"].append(
                    {
                        "mandate_id": f"M{oid}",
                        "obligation_id": oid,
                        "account_id": acc,
                        "account_type": rng.choice(["SAVINGS", "CHECKING"]),
                        "account_bank": rng.choice(["OWN", "OTHER"]),
                        "start_date": start,
                        "end_date": end,
                        "status": status if end is None else "CANCELLED",
                        "debit_mode": rng.choice(["FULL", "PARTIAL_ALLOWED"]),
                    }
                )
                for mi in range(-2, months):
                    mstart = date(2023 + (mi // 12), mi % 12 + 1, 1)
                    bal = rng.uniform(-200_000, 3_000_000)
                    payroll = 0.0 if rng.random() < 0.25 else rng.uniform(1e6, 4e6)
                    t["account_monthly"].append(
                        {
                            "account_id": acc,
                            "month": mstart,
                            "avg_balance": bal,
                            "min_balance": bal - rng.uniform(0, 500_000),
                            "end_balance": bal + rng.uniform(-300_000, 300_000),
                            "inflow_total": payroll + rng.uniform(0, 1e6),
                            "payroll_inflow": payroll,
                            "n_inflows": rng.randrange(0, 8),
                            "outflow_total": rng.uniform(0, 4e6),
                        }
                    )
            dpd = 0
            for i, d in enumerate(cuts_dates):
                month_start = d.replace(day=1)
                day = min(due_day, d.day)
                ts = datetime(d.year, d.month, day, 6, 0) + timedelta(days=rng.randrange(0, 3))
                if ts.date() > d:
                    ts = datetime(d.year, d.month, d.day, 23, 59, 59)
                covered = any(
                    s <= ts.date() and (e is None or e > ts.date()) for _, _, s, e in mandates
                )
                paid = False
                if covered and ts.date() > orig:
                    res = rng.choices(["SUCCESS", "PARTIAL", "REJECTED"], [0.6, 0.1, 0.3])[0]
                    debited = inst if res == "SUCCESS" else (inst / 2 if res == "PARTIAL" else 0.0)
                    t["debit_attempts"].append(
                        {
                            "attempt_id": f"T{n_att:07d}",
                            "mandate_id": mandates[0][0],
                            "attempt_ts": ts,
                            "amount_requested": inst,
                            "amount_debited": debited,
                            "result": res,
                            "reject_reason": rng.choice(reasons) if res == "REJECTED" else None,
                        }
                    )
                    n_att += 1
                    if debited > 0:
                        t["payments"].append(
                            {
                                "payment_id": f"P{n_pay:07d}",
                                "obligation_id": oid,
                                "payment_ts": ts + timedelta(minutes=1),
                                "amount": debited,
                                "channel": "RECURRING_DEBIT",
                            }
                        )
                        n_pay += 1
                        paid = res == "SUCCESS"
                if not paid and rng.random() < 0.35:
                    pts = datetime(d.year, d.month, 1 + rng.randrange(d.day), 12, 30)
                    t["payments"].append(
                        {
                            "payment_id": f"P{n_pay:07d}",
                            "obligation_id": oid,
                            "payment_ts": pts,
                            "amount": inst * rng.choice([0.5, 1.0, 1.5]),
                            "channel": rng.choice(channels),
                        }
                    )
                    n_pay += 1
                    paid = True
                dpd = 0 if paid else (dpd + 30 if dpd else rng.randrange(1, 29))
                if dpd and rng.random() < 0.5:
                    t["collection_actions"].append(
                        {
                            "action_id": f"X{n_act:07d}",
                            "obligation_id": oid,
                            "action_ts": datetime(d.year, d.month, 1 + rng.randrange(d.day), 10),
                            "action_type": rng.choice(["CALL", "SMS", "WHATSAPP"]),
                            "outcome": rng.choice(
                                ["CONTACTED", "PROMISE_TO_PAY", "NO_CONTACT", "REFUSED"]
                            ),
                            "cost": 3500.0,
                        }
                    )
                    n_act += 1
                if d >= month_start and d >= orig:
                    t["portfolio_cuts"].append(
                        {
                            "cut_date": d,
                            "obligation_id": oid,
                            "days_past_due": min(dpd, 120),
                            "amount_past_due": 0.0 if not dpd else inst * (1 + min(dpd, 120) // 30),
                            "outstanding_balance": inst * max(40 - i, 1),
                        }
                    )
    add_version_2(t, cuts_dates[-1], seed)
    return t, as_of


ARM_WEIGHTS = {"ASSIGNED": 0.6, "HOLDOUT": 0.2, "RULE": 0.1, None: 0.1}  # None: no assignment


def add_version_2(t: dict[str, list[dict]], latest_cut: date, seed: int) -> None:
    """Arms for the early-delinquency cuts before the latest (some left without one) and
    reversals of some payments, a few days or weeks later; drawn from a generator of their own,
    so the version-1 tables stay what they were."""
    rng = random.Random(seed + 10_000)
    for c in t["portfolio_cuts"]:
        if 1 <= c["days_past_due"] <= 30 and c["cut_date"] < latest_cut:
            arm = rng.choices(list(ARM_WEIGHTS), list(ARM_WEIGHTS.values()))[0]
            if arm is not None:
                t["collection_assignments"].append(
                    {
                        "obligation_id": c["obligation_id"],
                        "cut_date": c["cut_date"],
                        "arm": arm,
                        "policy_id": "holdout-2023" if arm == "HOLDOUT" else "bau-2023",
                    }
                )
    for p in t["payments"]:
        if rng.random() < 0.12:
            p["reversed_ts"] = p["payment_ts"] + timedelta(days=rng.choice([1, 3, 12, 29, 45]))
