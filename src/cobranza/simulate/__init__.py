"""The bank-data simulator: a synthetic version-2 extract (ten contract files + manifest) and its
ground truth.

`simulate(out, cfg)` writes the extract into `out` and, in `out/_truth/`, the probability behind
each early-delinquent row's self-cure outcome (`p_true.csv`), the drawn outcomes (`outcomes.csv`),
both potential outcomes of every early-delinquency row (`potential_outcomes.parquet`) and the
injected bad-input cases (`noise.json`). Same arguments give byte-identical files.

`out` must be new, empty or an earlier output of the simulator (recognised by its `_truth/` folder
and holding nothing else): a run overwrites the contract files there, so any other folder (a real
extract, say) is refused rather than destroyed.
"""

from __future__ import annotations

import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cobranza.contract import (
    MANIFEST,
    POTENTIAL_OUTCOMES_FILE,
    STANDARD,
    TRUTH_DIR,
    TRUTH_FILE,
    Dialect,
)
from cobranza.errors import CobranzaError
from cobranza.simulate.config import (
    CHUNK_CLIENTS,
    REALISM,
    SCENARIOS,
    Calendar,
    SimulationConfig,
)
from cobranza.simulate.engine import IdCounters, simulate_chunk
from cobranza.simulate.noise import inject
from cobranza.simulate.summary import Summary, oracle_auc
from cobranza.simulate.writer import (
    ChunkWriter,
    DefectLog,
    delivered_name,
    extract_files,
    format_table,
    open_delivered,
    to_bytes,
    write_manifest,
)

__all__ = [
    "REALISM",
    "SCENARIOS",
    "SimulationConfig",
    "check_output_folder",
    "extract_files",
    "is_simulator_output",
    "oracle_auc",
    "simulate",
]

OUTCOMES_FILE = "outcomes.csv"
NOISE_FILE = "noise.json"
# Everything a run writes: an existing folder holding exactly these (and a `_truth/` folder, the
# marker written first) is an earlier output that may be overwritten; any other content may be
# someone's data (a real bank extract), which the simulator must never replace or delete.
OUTPUT_ENTRIES = frozenset(
    {delivered_name(spec, gz) for spec in extract_files() for gz in (False, True)}
    | {MANIFEST, TRUTH_DIR}
)
TRUTH_ENTRIES = frozenset({TRUTH_FILE, OUTCOMES_FILE, NOISE_FILE, POTENTIAL_OUTCOMES_FILE})


def _only_own_files(folder: Path, allowed: frozenset[str], subfolder: str | None = None) -> bool:
    for entry in folder.iterdir():
        if entry.name not in allowed or entry.is_symlink():
            return False
        if not (entry.is_dir() if entry.name == subfolder else entry.is_file()):
            return False
    return True


def is_simulator_output(out: Path) -> bool:
    """An existing folder that holds only what an earlier `simulate` run wrote, `_truth/` included.

    Symlinks inside are never accepted: writing through one would overwrite the file it points to.
    """
    out = Path(out)
    truth = out / TRUTH_DIR
    try:
        if truth.is_symlink() or not truth.is_dir():
            return False
        return _only_own_files(out, OUTPUT_ENTRIES, TRUTH_DIR) and _only_own_files(
            truth, TRUTH_ENTRIES
        )
    except OSError:
        return False


def check_output_folder(out: Path) -> None:
    """Refuse (CobranzaError) a target the simulator must not write into.

    A run replaces the nine contract files and removes the manifest and `_truth/`: fine in a new
    folder, an empty one or an earlier output of its own, destructive anywhere else.
    """
    out = Path(out)
    try:
        target = out.resolve()
        if not target.exists():
            return
        if not target.is_dir():
            raise CobranzaError(f"simulate: {out} exists and is not a folder")
        if next(target.iterdir(), None) is None or is_simulator_output(target):
            return
    except OSError as exc:
        raise CobranzaError(f"simulate: cannot read {out}: {exc.strerror}") from None
    raise CobranzaError(
        f"simulate: {out} holds files the simulator did not write (it is not an earlier simulator "
        f"output with a {TRUTH_DIR}/ folder); simulate into a new or empty folder, or remove "
        "that folder yourself first"
    )


def _truth_csv(table: pa.Table, header: bool) -> bytes:
    cols = {}
    for name in table.column_names:
        arr = table.column(name)
        if name == "p_true":
            x = arr.to_numpy(zero_copy_only=False)
            text = pa.array(np.char.mod("%.6f", x), pa.string())
            cols[name] = pc.if_else(pa.array(np.isnan(x)), pa.scalar(None, pa.string()), text)
        elif name == "amount_recovered":  # whole pesos
            cols[name] = pc.cast(pc.cast(pc.round(arr, 0), pa.int64()), pa.string())
        elif name == "cut_date":
            cols[name] = pc.strftime(arr, format="%Y-%m-%d")
        else:
            cols[name] = pc.cast(arr, pa.string())
    return to_bytes(pa.table(cols), STANDARD, header)


def _write_chunk(ctx: dict, chunk: int, result) -> None:
    """Append one chunk's files (bad input injected per file and chunk) and its truth."""
    cfg, dialect = ctx["cfg"], ctx["dialect"]
    blobs: list[tuple[str, bytes]] = []
    for f_idx, spec in enumerate(ctx["files"]):
        text = format_table(spec, result.tables[spec.stem], dialect)
        if cfg.noise > 0:
            rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, chunk, 1000 + f_idx]))
            rows, serials = ctx["rows"], ctx["serials"]
            text, found, serials[spec.stem] = inject(
                spec, text, cfg.noise, rng, dialect, rows[spec.stem] + 2, serials[spec.stem]
            )
            ctx["defects"].extend(delivered_name(spec, cfg.compress), found)
        blobs.append((spec.stem, to_bytes(text, dialect, header=chunk == 0)))
        ctx["rows"][spec.stem] += text.num_rows
    ctx["writer"].submit(ctx["handles"], blobs)
    truth = result.truth
    elig = truth.column("eligible").to_numpy(zero_copy_only=False)
    ctx["p_true_f"].write(
        _truth_csv(
            truth.filter(pa.array(elig)).select(["cut_date", "obligation_id", "p_true"]),
            chunk == 0,
        )
    )
    ctx["outcomes_f"].write(_truth_csv(truth, chunk == 0))
    if ctx["potential"] is None:
        ctx["potential"] = pq.ParquetWriter(
            ctx["truth_dir"] / POTENTIAL_OUTCOMES_FILE, result.potential.schema
        )
    ctx["potential"].write_table(result.potential)
    ctx["summary"].add(truth, result.potential)


def _prepare(out: Path) -> Path:
    check_output_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST).unlink(missing_ok=True)  # a run that fails midway leaves no valid extract
        for spec in extract_files():  # the other spelling of a file from an earlier run
            for gz in (False, True):
                (out / delivered_name(spec, gz)).unlink(missing_ok=True)
        truth_dir = out / TRUTH_DIR
        if truth_dir.exists():
            shutil.rmtree(truth_dir)
        truth_dir.mkdir()
    except OSError as exc:
        raise CobranzaError(f"simulate: cannot write into {out}: {exc.strerror}") from None
    return truth_dir


def simulate(out: Path, cfg: SimulationConfig, dialect: Dialect = STANDARD, ui=None) -> dict:
    """Write a synthetic extract into `out`; returns a summary (rows, speed, self-cure rate, AUC,
    holdout share, the true effect of management on the roll, realized and implied roll rates).

    `self_cure_rate` and `oracle_auc` are over labeled early-delinquent rows with a covering
    mandate (the scored population); `self_cure_rate_all_early` counts ineligible rows as 0.
    """
    cfg.validate()
    started = time.perf_counter()
    out = Path(out)
    truth_dir = _prepare(out)
    cal = Calendar.build(cfg)
    ids = IdCounters()
    files = extract_files()
    n_chunks = -(-cfg.clients // CHUNK_CLIENTS)
    first_holdout = cal.cut[cal.n - 1 - cfg.holdout_cuts]
    ctx: dict = {
        "cfg": cfg,
        "dialect": dialect,
        "files": files,
        "truth_dir": truth_dir,
        "rows": {spec.stem: 0 for spec in files},
        "serials": {spec.stem: 0 for spec in files},
        "potential": None,
        "summary": Summary((first_holdout, cal.cut[-2] if cfg.holdout_cuts else cal.cut[0] - 1)),
    }
    try:
        with ExitStack() as stack:
            ctx["defects"] = defects = stack.enter_context(
                DefectLog([delivered_name(spec, cfg.compress) for spec in files])
            )
            ctx["handles"] = {
                s.stem: stack.enter_context(
                    open_delivered(out / delivered_name(s, cfg.compress), cfg.compress)
                )
                for s in files
            }
            ctx["p_true_f"] = stack.enter_context((truth_dir / TRUTH_FILE).open("wb"))
            ctx["outcomes_f"] = stack.enter_context((truth_dir / OUTCOMES_FILE).open("wb"))
            ctx["writer"] = stack.enter_context(ChunkWriter())
            step = stack.enter_context(ui.progress("simulating", total=n_chunks)) if ui else None
            for chunk in range(n_chunks):
                n = min(CHUNK_CLIENTS, cfg.clients - chunk * CHUNK_CLIENTS)
                _write_chunk(ctx, chunk, simulate_chunk(cfg, cal, chunk, n, ids))
                if step is not None:
                    step.advance()
            ctx["writer"].wait()
            defects.write(truth_dir / NOISE_FILE, cfg.noise, cfg.seed)
            injected = sum(defects.counts.values())
    finally:
        if ctx["potential"] is not None:
            ctx["potential"].close()
    as_of = cal.cut[-1].astype(object).isoformat()
    rows = {delivered_name(spec, cfg.compress): ctx["rows"][spec.stem] for spec in files}
    write_manifest(out, as_of, rows)
    seconds = time.perf_counter() - started
    total = sum(rows.values())
    return {
        "out": str(out.resolve()),
        "as_of": as_of,
        "contract_version": 2,
        "dialect": dialect.name,
        "scenario": cfg.scenario,
        "clients": cfg.clients,
        "months": cfg.months,
        "rows": rows,
        "rows_total": total,
        "seconds": round(seconds, 2),
        "rows_per_second": round(total / seconds) if seconds > 0 else None,
        **ctx["summary"].result(),
        "defects_injected": injected,
        "manifest": MANIFEST,
    }
