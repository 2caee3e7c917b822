"""Ingest throughput and memory: the ingest part of the 1M clients x 24 months target.

By default writes a synthetic standard-dialect extract whose row mix per client is that of the
full-size target (about 150 CSV rows per client over 24 months, ~150M rows at 1M clients), with
a few defects (exact duplicates, a bad value per file). `BENCH_SOURCE=simulator` uses the
project's simulator instead (`BENCH_DIALECT=bank-latin1` for the bank's spelling). Then times
`ingest_extract` in this process, sampling peak RSS (DuckDB and pyarrow included), and writes
`benchmarks/results/ingest.json` with seconds, CPU seconds, rows/s, MB/s and the linear
extrapolation to 150M rows (`BENCH_DUCKDB_MEMORY` sets DuckDB's memory limit, default 4GB).
Run: `python3 -m uv run python -m benchmarks.bench_ingest [CLIENTS] [MONTHS]`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from benchmarks.measure import PeakRSS, cpu_seconds

RESULTS = Path(__file__).parent / "results"
TARGET_ROWS = 150_000_000
TARGET_SECONDS_INGEST_AND_ETL = 600.0
TARGET_PEAK_GIB = 6.0


def _ids(prefix: str, n: int, start: int = 0) -> pa.Array:
    nums = pa.array(np.arange(start, start + n)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, nums, "")


def _choice(rng, values, n) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object)[rng.integers(0, len(values), n)])


def _write(out: Path, name: str, table: pa.Table) -> dict:
    path = out / name
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    body = path.read_bytes()
    return {"rows": table.num_rows, "sha256": hashlib.sha256(body).hexdigest()}


def write_extract(out: Path, clients: int, months: int, seed: int = 7) -> dict:
    """A clean extract plus known defects; returns the manifest it also writes."""
    rng = np.random.default_rng(seed)
    end = np.datetime64("2025-06-30")
    month_starts = np.arange(
        np.datetime64("2025-06", "M") - (months - 1), np.datetime64("2025-07", "M")
    ).astype("datetime64[D]")
    cuts = (month_starts.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
    files = {}
    cid = _ids("C", clients)
    files["clients.csv"] = _write(
        out,
        "clients.csv",
        pa.table(
            {
                "client_id": cid,
                "document_type": _choice(rng, ["CC", "CE", "NIT"], clients),
                "document_number": _ids("", clients, 10_000_000),
                "full_name": _choice(rng, ["Ana Pérez", "Luis Gómez", "María Núñez"], clients),
                "birth_date": pa.array(
                    np.datetime64("1960-01-01") + rng.integers(0, 15000, clients)
                ),
                "gender": _choice(rng, ["F", "M"], clients),
                "city": _choice(rng, ["Bogotá", "Medellín", "Cali"], clients),
                "region": _choice(rng, ["Cundinamarca", "Antioquia", "Valle"], clients),
                "segment": _choice(rng, ["MASS", "AFFLUENT", "PREMIUM", "SME"], clients),
                "employment_type": _choice(rng, ["SALARIED", "INDEPENDENT"], clients),
                "monthly_income": pa.array(np.round(rng.gamma(2, 2e6, clients), 2)),
                "customer_since": pa.array(
                    np.datetime64("2005-01-01") + rng.integers(0, 6000, clients)
                ),
                "email": pc.binary_join_element_wise(cid, "@example.com", ""),
                "phone": _ids("300", clients, 1_000_000),
            }
        ),
    )
    n_obl = int(clients * 1.3)
    owner = np.concatenate([np.arange(clients), rng.integers(0, clients, n_obl - clients)])
    oid = _ids("O", n_obl)
    files["obligations.csv"] = _write(
        out,
        "obligations.csv",
        pa.table(
            {
                "obligation_id": oid,
                "client_id": pc.take(cid, pa.array(owner)),
                "product": _choice(rng, ["CONSUMER_LOAN", "VEHICLE", "MICROCREDIT"], n_obl),
                "origination_date": pa.array(np.full(n_obl, month_starts[0] - 30)),
                "maturity_date": pa.array(np.full(n_obl, np.datetime64("2028-01-01"))),
                "original_amount": pa.array(np.round(rng.gamma(2, 5e6, n_obl) + 1, 2)),
                "annual_rate": pa.array(np.round(rng.uniform(10, 30, n_obl), 2)),
                "term_months": pa.array(rng.integers(12, 60, n_obl)),
                "installment_amount": pa.array(np.round(rng.gamma(2, 2e5, n_obl) + 1, 2)),
                "due_day": pa.array(rng.integers(1, 29, n_obl)),
                "status": _choice(rng, ["ACTIVE"], n_obl),
                "closed_date": pa.nulls(n_obl, pa.string()),
            }
        ),
    )
    n_man = clients
    mid = _ids("M", n_man)
    aid = _ids("A", n_man)
    files["debit_mandates.csv"] = _write(
        out,
        "debit_mandates.csv",
        pa.table(
            {
                "mandate_id": mid,
                "obligation_id": pc.take(oid, pa.array(np.arange(n_man))),
                "account_id": aid,
                "account_type": _choice(rng, ["SAVINGS", "CHECKING"], n_man),
                "account_bank": _choice(rng, ["OWN", "OTHER"], n_man),
                "start_date": pa.array(np.full(n_man, month_starts[0] - 30)),
                "end_date": pa.nulls(n_man, pa.string()),
                "status": _choice(rng, ["ACTIVE"], n_man),
                "debit_mode": _choice(rng, ["FULL", "PARTIAL_ALLOWED"], n_man),
            }
        ),
    )
    # Per obligation and month: an installment, a payment, a debit attempt and a cut.
    per = n_obl * months
    ob = np.repeat(np.arange(n_obl), months)
    mo = np.tile(np.arange(months), n_obl)
    obl = pc.take(oid, pa.array(ob))
    due = pa.array(month_starts[mo] + 14)
    ts = pa.array((month_starts[mo] + 14).astype("datetime64[s]") + rng.integers(0, 86400, per))
    amounts = pa.array(np.round(rng.gamma(2, 2e5, per) + 1, 2))
    files["installments.csv"] = _write(
        out,
        "installments.csv",
        pa.table(
            {
                "obligation_id": obl,
                "installment_no": pa.array(mo + 1),
                "due_date": due,
                "amount_due": amounts,
            }
        ),
    )
    files["payments.csv"] = _write(
        out,
        "payments.csv",
        pa.table(
            {
                "payment_id": _ids("P", per),
                "obligation_id": obl,
                "payment_ts": ts,
                "amount": amounts,
                "channel": _choice(rng, ["RECURRING_DEBIT", "PSE", "BRANCH"], per),
            }
        ),
    )
    n_att = clients * months
    files["debit_attempts.csv"] = _write(
        out,
        "debit_attempts.csv",
        pa.table(
            {
                "attempt_id": _ids("D", n_att),
                "mandate_id": pc.take(mid, pa.array(np.repeat(np.arange(n_man), months))),
                "attempt_ts": pa.array(ts.to_numpy()[:n_att]),
                "amount_requested": pa.array(amounts.to_numpy()[:n_att]),
                "amount_debited": pa.array(amounts.to_numpy()[:n_att]),
                "result": _choice(rng, ["SUCCESS"], n_att),
                "reject_reason": pa.nulls(n_att, pa.string()),
            }
        ),
    )
    files["account_monthly.csv"] = _write(
        out,
        "account_monthly.csv",
        pa.table(
            {
                "account_id": pc.take(aid, pa.array(np.repeat(np.arange(n_man), months))),
                "month": pa.array(np.tile(month_starts, n_man)),
                "avg_balance": pa.array(np.round(rng.normal(1e6, 5e5, n_att), 2)),
                "min_balance": pa.array(np.round(rng.normal(2e5, 1e5, n_att), 2)),
                "end_balance": pa.array(np.round(rng.normal(1e6, 5e5, n_att), 2)),
                "inflow_total": pa.array(np.round(rng.gamma(2, 1e6, n_att), 2)),
                "payroll_inflow": pa.array(np.round(rng.gamma(2, 5e5, n_att), 2)),
                "n_inflows": pa.array(rng.integers(0, 10, n_att)),
                "outflow_total": pa.array(np.round(rng.gamma(2, 1e6, n_att), 2)),
            }
        ),
    )
    files["portfolio_cuts.csv"] = _write(
        out,
        "portfolio_cuts.csv",
        pa.table(
            {
                "cut_date": pa.array(cuts[mo]),
                "obligation_id": obl,
                "days_past_due": pa.array(rng.integers(0, 40, per)),
                "amount_past_due": pa.array(np.round(rng.gamma(1, 1e5, per), 2)),
                "outstanding_balance": pa.array(np.round(rng.gamma(2, 5e6, per), 2)),
            }
        ),
    )
    n_act = clients * 3
    files["collection_actions.csv"] = _write(
        out,
        "collection_actions.csv",
        pa.table(
            {
                "action_id": _ids("X", n_act),
                "obligation_id": pc.take(oid, pa.array(rng.integers(0, n_obl, n_act))),
                "action_ts": pa.array(ts.to_numpy()[:n_act]),
                "action_type": _choice(rng, ["CALL", "SMS"], n_act),
                "outcome": _choice(rng, ["CONTACTED", "NO_CONTACT"], n_act),
                "cost": pa.array(np.full(n_act, 8000.0)),
            }
        ),
    )
    # Defects: the first data line of every file repeated at the end (exact duplicate) and one
    # line with an unparseable value, so the quarantine path is exercised at scale.
    for name in list(files):
        path = out / name
        with open(path, "rb") as fh:
            fh.readline()
            first = fh.readline()
        with open(path, "ab") as fh:
            fh.write(first)
            fh.write(b"Z" + first.replace(b",", b",??", 1))  # new key, bad 2nd value
        body = path.read_bytes()
        files[name] = {
            "rows": files[name]["rows"] + 2,
            "sha256": hashlib.sha256(body).hexdigest(),
        }
    manifest = {"as_of": str(date.fromisoformat(str(end))), "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    source = os.environ.get("BENCH_SOURCE", "synthetic")  # or "simulator" (cobranza simulate)
    clients = int(argv[0]) if argv else 20_000
    months = int(argv[1]) if len(argv) > 1 else 24

    from cobranza.config import load_settings
    from cobranza.contract import load_dialect
    from cobranza.ingest import ingest_extract

    dialect = load_dialect(os.environ.get("BENCH_DIALECT", "standard"))

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        extract = work / "extract"
        extract.mkdir()
        t0 = time.perf_counter()
        if source == "simulator":
            from cobranza.simulate import SimulationConfig, simulate

            simulate(extract, SimulationConfig(clients=clients, months=months, seed=7), dialect)
            manifest = json.loads((extract / "manifest.json").read_text())
        else:
            dialect = load_dialect("standard")
            manifest = write_extract(extract, clients, months)
        gen_seconds = time.perf_counter() - t0
        rows = sum(f["rows"] for f in manifest["files"].values())
        size = sum((extract / n).stat().st_size for n in manifest["files"])
        memory_limit = os.environ.get("BENCH_DUCKDB_MEMORY", "4GB")
        settings = load_settings(lake=work / "lake", duckdb_memory_limit=memory_limit)
        with PeakRSS() as mem:
            cpu0 = cpu_seconds()
            t0 = time.perf_counter()
            report = ingest_extract(settings, extract, dialect)
            seconds = time.perf_counter() - t0
            cpu = cpu_seconds() - cpu0
        from cobranza.lake import Lake

        timings = Lake(work / "lake").run_info("raw")["timings"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows_per_second = rows / seconds
    result = {
        "source": source,
        "dialect": dialect.name,
        "clients": clients,
        "months": months,
        "csv_rows": rows,
        "csv_bytes": size,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows_per_second),
        "mb_per_second": round(size / seconds / 1e6, 1),
        "duckdb_memory_limit": memory_limit,
        "cpu_seconds": round(cpu, 2),
        "cpu_microseconds_per_row": round(cpu / rows * 1e6, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(mem.peak / 2**20),
        "rows_quarantined": report["rows_quarantined"],
        "duplicates_collapsed": report["duplicates_collapsed"],
        "timings": timings,
        "extrapolated_seconds_150m_rows": round(TARGET_ROWS / rows_per_second),
        # The machine is shared: CPU time over 2 cores is the figure an idle machine would see.
        "extrapolated_seconds_150m_rows_from_cpu_2_cores": round(cpu / rows * TARGET_ROWS / 2),
        "target": f"ingest + ETL of {TARGET_ROWS:,} rows < {TARGET_SECONDS_INGEST_AND_ETL:.0f}s, "
        f"< {TARGET_PEAK_GIB:.0f} GiB",
        "generate_seconds": round(gen_seconds, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"ingest: {rows:,} rows ({size / 1e6:,.0f} MB) in {seconds:.1f}s = "
        f"{rows_per_second:,.0f} rows/s, {size / seconds / 1e6:,.0f} MB/s; peak RSS "
        f"{mem.peak / 2**20:,.0f} MB; CPU {cpu:.1f}s ({cpu / rows * 1e6:.2f} us/row); extrapolated to {TARGET_ROWS / 1e6:.0f}M rows: "
        f"{TARGET_ROWS / rows_per_second:,.0f}s (ingest only)"
    )
    return result


if __name__ == "__main__":
    main()
