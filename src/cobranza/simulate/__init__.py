"""The bank-data simulator: a synthetic extract (nine contract files + manifest) and its ground truth.

`simulate(out, cfg)` writes the extract into `out` and, in `out/_truth/`, the probability used to
draw each early-delinquent row's outcome (`p_true.csv`), the drawn outcomes (`outcomes.csv`) and
the injected bad-input cases (`noise.json`). Same arguments give byte-identical files.

`out` must be new, empty or an earlier output of the simulator (recognised by its `_truth/` folder
and holding nothing else): a run overwrites the contract files there, so any other folder (a real
extract, say) is refused rather than destroyed.
"""

from __future__ import annotations

import json
import shutil
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cobranza.contract import MANIFEST, STANDARD, TRUTH_DIR, TRUTH_FILE, Dialect, files_for
from cobranza.errors import CobranzaError
from cobranza.simulate.config import CHUNK_CLIENTS, Calendar, SimulationConfig
from cobranza.simulate.engine import IdCounters, simulate_chunk
from cobranza.simulate.noise import inject
from cobranza.simulate.writer import format_table, to_bytes, write_manifest

__all__ = [
    "SimulationConfig",
    "check_output_folder",
    "is_simulator_output",
    "oracle_auc",
    "simulate",
]

# The contract version the simulator writes: its files, and their columns, in contract order.
FILES = files_for(1)
OUTCOMES_FILE = "outcomes.csv"
NOISE_FILE = "noise.json"
# Everything a run writes: an existing folder holding exactly these (and a `_truth/` folder, the
# marker written first) is an earlier output that may be overwritten; any other content may be
# someone's data (a real bank extract), which the simulator must never replace or delete.
OUTPUT_ENTRIES = frozenset({spec.filename for spec in FILES} | {MANIFEST, TRUTH_DIR})
TRUTH_ENTRIES = frozenset({TRUTH_FILE, OUTCOMES_FILE, NOISE_FILE})


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


def oracle_auc(p: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC of scores `p` against binary outcomes `y` (rank formula, ties averaged)."""
    y = np.asarray(y, bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ps = np.asarray(p)[order]
    ranks = np.empty(len(p))
    # average ranks over ties
    _, first, counts = np.unique(ps, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _truth_csv(table: pa.Table, header: bool) -> bytes:
    cols = {}
    for name in table.column_names:
        arr = table.column(name)
        if name == "p_true":
            x = arr.to_numpy(zero_copy_only=False)
            cols[name] = pa.array(np.char.mod("%.6f", x), pa.string())
        elif name == "cut_date":
            cols[name] = pc.strftime(arr, format="%Y-%m-%d")
        else:
            cols[name] = pc.cast(arr, pa.string())
    return to_bytes(pa.table(cols), STANDARD, header)


def simulate(out: Path, cfg: SimulationConfig, dialect: Dialect = STANDARD, ui=None) -> dict:
    """Write a synthetic extract into `out`; returns a summary (rows, speed, self-cure rate, AUC).

    `self_cure_rate` and `oracle_auc` are over labeled early-delinquent rows with a covering
    mandate (the scored population); `self_cure_rate_all_early` counts ineligible rows as 0.
    """
    cfg.validate()
    started = time.perf_counter()
    out = Path(out)
    check_output_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST).unlink(missing_ok=True)  # a run that fails midway leaves no valid extract
        truth_dir = out / TRUTH_DIR
        if truth_dir.exists():
            shutil.rmtree(truth_dir)
        truth_dir.mkdir()
    except OSError as exc:
        raise CobranzaError(f"simulate: cannot write into {out}: {exc.strerror}") from None
    cal = Calendar.build(cfg)
    ids = IdCounters()
    n_chunks = -(-cfg.clients // CHUNK_CLIENTS)
    rows = {spec.stem: 0 for spec in FILES}
    serials = {spec.stem: 0 for spec in FILES}
    defects: dict[str, list[dict]] = {spec.filename: [] for spec in FILES}
    p_lab: list[np.ndarray] = []
    y_lab: list[np.ndarray] = []
    n_early = n_eligible = 0
    with ExitStack() as stack:
        handles = {s.stem: stack.enter_context((out / s.filename).open("wb")) for s in FILES}
        p_true_f = stack.enter_context((truth_dir / TRUTH_FILE).open("wb"))
        outcomes_f = stack.enter_context((truth_dir / OUTCOMES_FILE).open("wb"))
        step = stack.enter_context(ui.progress("simulating", total=n_chunks)) if ui else None
        for chunk in range(n_chunks):
            n = min(CHUNK_CLIENTS, cfg.clients - chunk * CHUNK_CLIENTS)
            result = simulate_chunk(cfg, cal, chunk, n, ids)
            for f_idx, spec in enumerate(FILES):
                text = format_table(spec, result.tables[spec.stem], dialect)
                if cfg.noise > 0:
                    rng = np.random.default_rng(
                        np.random.SeedSequence([cfg.seed, chunk, 1000 + f_idx])
                    )
                    text, found, serials[spec.stem] = inject(
                        spec, text, cfg.noise, rng, dialect, rows[spec.stem] + 2, serials[spec.stem]
                    )
                    defects[spec.filename].extend(found)
                handles[spec.stem].write(to_bytes(text, dialect, header=chunk == 0))
                rows[spec.stem] += text.num_rows
            truth = result.truth
            elig = truth.column("eligible").to_numpy(zero_copy_only=False)
            p_true_f.write(
                _truth_csv(
                    truth.filter(pa.array(elig)).select(["cut_date", "obligation_id", "p_true"]),
                    chunk == 0,
                )
            )
            outcomes_f.write(_truth_csv(truth, chunk == 0))
            labeled = truth.column("labeled").to_numpy(zero_copy_only=False)
            sel = labeled & elig
            n_early += int(labeled.sum())
            n_eligible += int(sel.sum())
            p_lab.append(truth.column("p_true").to_numpy(zero_copy_only=False)[sel])
            y_lab.append(truth.column("outcome").to_numpy(zero_copy_only=False)[sel].astype(bool))
            if step is not None:
                step.advance()
    (truth_dir / NOISE_FILE).write_text(
        json.dumps({"rate": cfg.noise, "seed": cfg.seed, "files": defects}, indent=1) + "\n",
        encoding="utf-8",
    )
    as_of = cal.cut[-1].astype(object).isoformat()
    write_manifest(out, as_of, {spec.filename: rows[spec.stem] for spec in FILES})
    seconds = time.perf_counter() - started
    p = np.concatenate(p_lab) if p_lab else np.zeros(0)
    y = np.concatenate(y_lab) if y_lab else np.zeros(0, bool)
    total = sum(rows.values())
    return {
        "out": str(out.resolve()),
        "as_of": as_of,
        "dialect": dialect.name,
        "clients": cfg.clients,
        "months": cfg.months,
        "rows": {spec.filename: rows[spec.stem] for spec in FILES},
        "rows_total": total,
        "seconds": round(seconds, 2),
        "rows_per_second": round(total / seconds) if seconds > 0 else None,
        "labeled_early_delinquent": n_early,
        "labeled_eligible": n_eligible,
        "self_cure_rate": round(float(y.mean()), 4) if len(y) else None,
        "self_cure_rate_all_early": round(float(y.sum()) / n_early, 4) if n_early else None,
        "mean_p_true": round(float(p.mean()), 4) if len(p) else None,
        "oracle_auc": round(oracle_auc(p, y), 4) if len(y) else None,
        "defects_injected": sum(len(v) for v in defects.values()),
        "manifest": MANIFEST,
    }
