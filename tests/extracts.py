"""Edits of a simulated extract folder (standard dialect) for tests: redraw its version-2 parts,
or cut it at a date as if extracted then. Both write a new folder with its manifest recomputed.

`upgrade_to_v2` (re)writes what a version-2 bank extract carries, drawn deterministically from the
rows' keys, replacing the simulator's own: an arm for most early-delinquency cuts before the latest
(some HOLDOUT and RULE, a few left without one), and some files gzip-compressed; a version-1
source also gets a reversal for a few debit payments (some inside their horizon, some after it),
while a version-2 source keeps the simulator's own (its outcomes were drawn with them). The arms then no longer follow the
simulated treatment: the extracts serve the ingest and ETL rules, not causal figures. `truncate`
keeps only what was known at a date D.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cobranza.contract import FILES, MANIFEST, TRUTH_DIR, files_for

UPGRADE_GZIPPED = ("payments", "collection_assignments", "account_monthly")
UPGRADE_FILE = "upgrade.json"  # in _truth/: what upgrade_to_v2 added


def _path(folder: Path, stem: str) -> Path:
    spec = next(f for f in FILES if f.stem == stem)
    packed = folder / spec.gzip_name
    return packed if packed.exists() else folder / spec.csv_name


def read_csv(folder: Path, stem: str) -> pa.Table:
    """A contract file of a standard-dialect extract, every column as strings ('' when empty)."""
    path = _path(folder, stem)
    names = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows_after_names=0)).schema
    return pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names.names, pa.string()), strings_can_be_null=False
        ),
    )


def write_csv(folder: Path, stem: str, table: pa.Table, gzipped: bool) -> None:
    """Write a contract file (the simulator's spelling: no quoting), plain or as NAME.csv.gz."""
    spec = next(f for f in FILES if f.stem == stem)
    buf = pa.BufferOutputStream()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(quoting_style="none"))
    body = buf.getvalue().to_pybytes().replace(b'"', b"")  # header names come quoted
    for name in (spec.csv_name, spec.gzip_name):
        (folder / name).unlink(missing_ok=True)
    if gzipped:
        (folder / spec.gzip_name).write_bytes(gzip.compress(body, mtime=0))
    else:
        (folder / spec.csv_name).write_bytes(body)


def write_manifest(folder: Path, as_of: str, version: int) -> None:
    files = {}
    for spec in files_for(version):
        path = _path(folder, spec.stem)
        text = (
            gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        )
        rows = text.count(b"\n") - 1 + (0 if text.endswith(b"\n") else 1)
        files[path.name] = {"rows": rows, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    data: dict = {"as_of": as_of, "files": files}
    if version >= 2:
        data["contract_version"] = version
    (folder / MANIFEST).write_text(json.dumps(data, indent=1), encoding="utf-8")


def _unit(*parts: str) -> float:
    """A uniform number in [0, 1) fixed by the parts (a row's key and the seed)."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _copy(src: Path, dst: Path) -> None:
    """The extract's files and its ground truth (`_truth/`, which the pipeline never reads)."""
    dst.mkdir(parents=True, exist_ok=False)
    for path in src.iterdir():
        if path.is_file():
            shutil.copy(path, dst / path.name)
    if (src / TRUTH_DIR).is_dir():
        shutil.copytree(src / TRUTH_DIR, dst / TRUTH_DIR)


def upgrade_to_v2(
    src: Path,
    dst: Path,
    seed: int = 11,
    holdout: float = 0.15,
    rule: float = 0.05,
    unassigned: float = 0.03,
    reversed_share: float = 0.04,
    gzipped: tuple[str, ...] = UPGRADE_GZIPPED,
) -> dict:
    """Write `dst`, `src` (version 1 or 2) with redrawn version-2 parts; returns what it drew."""
    _copy(src, dst)
    manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    cuts = read_csv(src, "portfolio_cuts")
    latest = max(cuts.column("cut_date").to_pylist())
    dpd = pc.cast(cuts.column("days_past_due"), pa.int64())
    early = cuts.filter(pc.and_(pc.greater_equal(dpd, 1), pc.less_equal(dpd, 30)))
    rows, arms = [], {"ASSIGNED": 0, "HOLDOUT": 0, "RULE": 0}
    missing = 0
    for oid, cut in zip(
        early.column("obligation_id").to_pylist(), early.column("cut_date").to_pylist(), strict=True
    ):
        if cut == latest:
            continue  # today's decision: not taken yet
        u = _unit(oid, cut, str(seed), "arm")
        if u < unassigned:
            missing += 1
            continue
        arm = (
            "HOLDOUT"
            if u < unassigned + holdout
            else "RULE"
            if u < unassigned + holdout + rule
            else "ASSIGNED"
        )
        arms[arm] += 1
        rows.append((oid, cut, arm, "holdout-sim" if arm == "HOLDOUT" else "bau-sim"))
    assignments = pa.table(
        {
            name: pa.array([r[i] for r in rows], pa.string())
            for i, name in enumerate(("obligation_id", "cut_date", "arm", "policy_id"))
        }
    )
    write_csv(dst, "collection_assignments", assignments, "collection_assignments" in gzipped)
    payments = read_csv(src, "payments")
    if "reversed_ts" in payments.column_names:
        # the simulator's own reversals are kept: its outcomes in _truth/ were drawn with them
        n_reversed = sum(1 for v in payments.column("reversed_ts").to_pylist() if v)
        write_csv(dst, "payments", payments, "payments" in gzipped)
    else:
        n_reversed = _draw_reversals(dst, payments, seed, reversed_share, gzipped)
    for stem in gzipped:
        if stem not in ("payments", "collection_assignments"):
            write_csv(dst, stem, read_csv(src, stem), True)
    write_manifest(dst, manifest["as_of"], 2)
    added = {"arms": arms, "missing": missing, "latest_cut": latest, "reversed": n_reversed}
    (dst / TRUTH_DIR).mkdir(exist_ok=True)
    (dst / TRUTH_DIR / UPGRADE_FILE).write_text(json.dumps(added), encoding="utf-8")
    return added


def _draw_reversals(
    dst: Path, payments: pa.Table, seed: int, share: float, gzipped: tuple[str, ...]
) -> int:
    """Reverse a few debit payments of a version-1 extract (2, 10 or 40 days later)."""
    reversed_ts, n_reversed = [], 0
    for pid, ts, channel in zip(
        payments.column("payment_id").to_pylist(),
        payments.column("payment_ts").to_pylist(),
        payments.column("channel").to_pylist(),
        strict=True,
    ):
        u = _unit(pid, str(seed), "reversal")
        if channel == "RECURRING_DEBIT" and u < share:
            days = (2, 10, 40)[int(u / share * 3)]
            when = datetime.fromisoformat(ts) + timedelta(days=days, hours=3)
            reversed_ts.append(when.strftime("%Y-%m-%d %H:%M:%S"))
            n_reversed += 1
        else:
            reversed_ts.append("")
    payments = payments.append_column("reversed_ts", pa.array(reversed_ts, pa.string()))
    write_csv(dst, "payments", payments, "payments" in gzipped)
    return n_reversed


def truncate(src: Path, dst: Path, d: date) -> Path:
    """Write `dst`, the extract `src` as it would have been extracted at the end of day d.

    Every event after d goes (payments, debit attempts, collection actions, cuts, installments,
    account months not complete by d, assignments, and obligations, mandates and clients that
    start after d); end dates and closing dates after d are emptied and the statuses they imply
    reset (a mandate ending after d is ACTIVE at d; an obligation closed after d is ACTIVE);
    reversals after d are emptied. Attributes the extract gives only as of its date are kept.
    """
    manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    version = manifest.get("contract_version", 1)
    _copy(src, dst)
    day = d.isoformat()

    def after(table: pa.Table, column: str) -> pa.Array:
        """True where the date (or a timestamp's date) is later than d; '' is never later."""
        return pc.greater(pc.utf8_slice_codeunits(table.column(column), 0, 10), day)

    def keep(table: pa.Table, mask: pa.Array) -> pa.Table:
        return table.filter(pc.invert(mask))

    def reset(table: pa.Table, column: str, status: str | None, value: str = "ACTIVE") -> pa.Table:
        late = after(table, column)
        table = table.set_column(
            table.schema.get_field_index(column), column, pc.if_else(late, "", table.column(column))
        )
        if status is not None:
            i = table.schema.get_field_index(status)
            table = table.set_column(i, status, pc.if_else(late, value, table.column(status)))
        return table

    def ids(table: pa.Table, column: str) -> pa.Array:
        return table.column(column).combine_chunks()

    out: dict[str, pa.Table] = {}
    out["clients"] = keep(
        read_csv(src, "clients"), after(read_csv(src, "clients"), "customer_since")
    )
    obligations = read_csv(src, "obligations")
    obligations = keep(obligations, after(obligations, "origination_date"))
    out["obligations"] = reset(obligations, "closed_date", "status")
    kept = ids(out["obligations"], "obligation_id")
    mandates = read_csv(src, "debit_mandates")
    mandates = mandates.filter(
        pc.and_(
            pc.invert(after(mandates, "start_date")),
            pc.is_in(mandates.column("obligation_id"), kept),
        )
    )
    out["debit_mandates"] = reset(mandates, "end_date", "status")
    for stem, column in (
        ("installments", "due_date"),
        ("payments", "payment_ts"),
        ("portfolio_cuts", "cut_date"),
        ("collection_actions", "action_ts"),
        ("collection_assignments", "cut_date"),
    ):
        if stem == "collection_assignments" and version < 2:
            continue
        t = read_csv(src, stem)
        out[stem] = t.filter(
            pc.and_(pc.invert(after(t, column)), pc.is_in(t.column("obligation_id"), kept))
        )
    if version >= 2:
        out["payments"] = reset(out["payments"], "reversed_ts", None)
    attempts = read_csv(src, "debit_attempts")
    attempts = keep(attempts, after(attempts, "attempt_ts"))
    out["debit_attempts"] = attempts.filter(
        pc.is_in(attempts.column("mandate_id"), ids(out["debit_mandates"], "mandate_id"))
    )
    months = read_csv(src, "account_monthly")
    month_end = [
        (date.fromisoformat(m) + timedelta(days=31)).replace(day=1) - timedelta(days=1)
        for m in months.column("month").to_pylist()
    ]
    out["account_monthly"] = months.filter(
        pc.less_equal(pa.array(month_end, pa.date32()), pa.scalar(d, pa.date32()))
    )
    for stem, table in out.items():
        write_csv(dst, stem, table, _path(src, stem).name.endswith(".gz"))
    write_manifest(dst, day, version)
    return dst
