"""Spelling tables on disk in a contract dialect: CSV appended chunk by chunk, then the manifest.

Every value is formatted to a string with Arrow compute (dates, timestamps, `,` or `.` decimals)
so the same data can be written as standard UTF-8 or as the bank's `;`-delimited Latin-1.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, time, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cobranza.contract import (
    FILES,
    GZIP_SUFFIX,
    MANIFEST,
    Dialect,
    FileSpec,
)

CONTRACT_VERSION = 2


def extract_files() -> tuple[FileSpec, ...]:
    """The files the simulator writes: the whole contract (version 2), in its order."""
    return FILES


def delivered_name(spec: FileSpec, compress: bool) -> str:
    """The file name as delivered: NAME.csv, or NAME.csv.gz when compressed."""
    return spec.filename + (GZIP_SUFFIX if compress else "")


def open_delivered(path: Path, compress: bool):
    """A binary stream appending to `path`; gzip (no name, no time stamp: same bytes every run)."""
    raw = path.open("wb")
    if not compress:
        return raw
    return _ClosingGzip(raw)


# zlib level 1: about 85 MB/s of the simulator's CSV on one core against 27 at level 6, for files
# a seventh larger (3.45x against 4.0x smaller than plain); a 10M-client book is 71 GB of CSV.
GZIP_LEVEL = 1


class _ClosingGzip(gzip.GzipFile):
    """A GzipFile that also closes the file it writes into."""

    def __init__(self, raw) -> None:
        super().__init__(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw, mtime=0)
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


class ChunkWriter:
    """Writes a chunk's files on one background thread while the next chunk is simulated.

    zlib and file writes release the GIL, so compression runs on a second core. One chunk is in
    flight at most (memory stays a chunk's text), and files are appended in submission order. A
    failed write is raised at the next submit or on exit.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulate-writer")
        self._pending: Future | None = None

    def submit(self, handles: dict, blobs: list[tuple[str, bytes]]) -> None:
        self.wait()
        self._pending = self._pool.submit(_write_blobs, handles, blobs)

    def wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()  # let the write finish before its files are closed
        finally:
            self._pool.shutdown(wait=True)


class DefectLog:
    """The injected defects of each file, kept on disk (a temporary folder) until `write`.

    A 10M-client extract injects about 1.4M defects: held as dicts they took gigabytes, so each
    is appended as its JSON text and `write` streams them into the same document, byte for byte,
    that `json.dumps({"rate", "seed", "files"}, indent=1)` gives.
    """

    def __init__(self, names: list[str]) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="cobranza-defects-")
        self._names = list(names)
        folder = Path(self._dir.name)
        self._files = {
            n: (folder / f"{i}.jsonl").open("w+", encoding="utf-8")
            for i, n in enumerate(self._names)
        }
        self.counts = dict.fromkeys(self._names, 0)

    def extend(self, name: str, found: list[dict]) -> None:
        fh = self._files[name]
        for defect in found:
            fh.write(json.dumps(defect) + "\n")  # one line: JSON escapes line breaks in strings
        self.counts[name] += len(found)

    def write(self, path: Path, rate: float, seed: int) -> None:
        with path.open("w", encoding="utf-8") as out:
            out.write("{\n" + f' "rate": {json.dumps(rate)},\n "seed": {json.dumps(seed)},\n')
            if not self._names:
                out.write(' "files": {}\n}\n')
                return
            out.write(' "files": {\n')
            for i, name in enumerate(self._names):
                out.write(f"  {json.dumps(name)}: ")
                if self.counts[name] == 0:
                    out.write("[]")
                else:
                    fh = self._files[name]
                    fh.seek(0)
                    out.write("[\n")
                    for j, line in enumerate(fh):
                        # three levels deep in the document: {"files": {name: [defect]}}
                        text = json.dumps(json.loads(line), indent=1).replace("\n", "\n   ")
                        out.write(("" if j == 0 else ",\n") + "   " + text)
                    out.write("\n  ]")
                out.write(",\n" if i < len(self._names) - 1 else "\n")
            out.write(" }\n}\n")

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._dir.cleanup()

    def __enter__(self) -> DefectLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _write_blobs(handles: dict, blobs: list[tuple[str, bytes]]) -> None:
    for stem, blob in blobs:
        handles[stem].write(blob)


# Decimal columns written with two decimals (money elsewhere is whole pesos).
TWO_DECIMALS = {
    ("obligations", "annual_rate"),
    ("account_monthly", "avg_balance"),
    ("account_monthly", "min_balance"),
    ("account_monthly", "end_balance"),
    ("account_monthly", "inflow_total"),
    ("account_monthly", "payroll_inflow"),
    ("account_monthly", "outflow_total"),
}


def fixed_decimals(values: pa.Array, decimals: int, sep: str) -> pa.Array:
    """`-1234.50` style text (with `sep` as decimal mark), nulls kept."""
    x = values.to_numpy(zero_copy_only=False)
    null = np.isnan(x)
    scaled = np.round(np.where(null, 0.0, x) * 10**decimals).astype(np.int64)
    neg = scaled < 0
    mag = np.abs(scaled)
    whole = pc.cast(pa.array(mag // 10**decimals), pa.string())
    if decimals:
        frac = pc.utf8_lpad(pc.cast(pa.array(mag % 10**decimals), pa.string()), decimals, "0")
        text = pc.binary_join_element_wise(whole, frac, sep)
    else:
        text = whole
    text = pc.if_else(pa.array(neg), pc.binary_join_element_wise("-", text, ""), text)
    return pc.if_else(pa.array(null), pa.scalar(None, pa.string()), text)


_DAY_LO = (date(1900, 1, 1) - date(1970, 1, 1)).days
_DAY_HI = (date(2100, 12, 31) - date(1970, 1, 1)).days


@lru_cache(maxsize=8)
def _day_texts(fmt: str) -> pa.Array:
    """Every day of 1900..2100 spelled in `fmt` (index 0 = 1900-01-01)."""
    first = date(1900, 1, 1)
    return pa.array(
        [(first + timedelta(days=k)).strftime(fmt) for k in range(_DAY_HI - _DAY_LO + 1)]
    )


@lru_cache(maxsize=4)
def _time_texts(fmt: str) -> pa.Array:
    return pa.array([time(s // 3600, s // 60 % 60, s % 60).strftime(fmt) for s in range(86400)])


def format_datetimes(arr: pa.Array, fmt: str, unit: str) -> pa.Array:
    """Dates (unit D) or timestamps (unit s) as text in a strftime `fmt`.

    Formats each distinct day (and second of the day) once and gathers them with `take`:
    Arrow's strftime is slow on millions of values.
    """
    values = arr.to_numpy(zero_copy_only=False).astype(f"datetime64[{unit}]")
    nat = np.isnat(values)
    if nat.all():
        return pa.nulls(len(values), pa.string())
    days = values.astype("datetime64[D]")
    dint = np.where(nat, 0, days.astype(np.int64))
    if dint[~nat].min() < _DAY_LO or dint[~nat].max() > _DAY_HI:
        return pc.strftime(arr, format=fmt)
    dint = np.where(nat, _DAY_LO, dint) - _DAY_LO
    if unit == "D":
        text = pc.take(_day_texts(fmt), pa.array(dint))
    else:
        split = fmt.find("%H")
        if split < 0:
            return pc.strftime(arr, format=fmt)
        secs = np.where(nat, 0, (values - days).astype(np.int64))
        text = pc.binary_join_element_wise(
            pc.take(_day_texts(fmt[:split]), pa.array(dint)),
            pc.take(_time_texts(fmt[split:]), pa.array(secs)),
            "",
        )
    return pc.if_else(pa.array(nat), pa.scalar(None, pa.string()), text)


def format_table(spec: FileSpec, table: pa.Table, dialect: Dialect) -> pa.Table:
    """The contract columns of `table`, in contract order, as strings in `dialect`."""
    cols = {}
    for c in spec.columns:
        arr = table.column(c.name).combine_chunks()
        if c.type == "string":
            out = arr.cast(pa.string())
        elif c.type == "date":
            out = format_datetimes(arr, dialect.date_format, "D")
        elif c.type == "timestamp":
            out = format_datetimes(arr, dialect.timestamp_format, "s")
        elif c.type == "integer":
            out = pc.cast(arr, pa.string())
        else:
            out = fixed_decimals(
                arr, 2 if (spec.stem, c.name) in TWO_DECIMALS else 0, dialect.decimal
            )
        cols[c.name] = out
    return pa.table(cols)


def to_bytes(table: pa.Table, dialect: Dialect, header: bool) -> bytes:
    """CSV text of an all-string table; refuses values holding the delimiter (no quoting)."""
    buf = pa.BufferOutputStream()
    opts = pacsv.WriteOptions(
        include_header=False, delimiter=dialect.delimiter, quoting_style="none"
    )
    pacsv.write_csv(table, buf, opts)
    data = buf.getvalue().to_pybytes()
    if header:
        data = (dialect.delimiter.join(table.column_names) + "\n").encode("utf-8") + data
    if dialect.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        data = data.decode("utf-8").encode(dialect.encoding)
    return data


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(out: Path, as_of: str, rows: dict[str, int]) -> dict:
    """The manifest of the delivered files (names as delivered, hashes of the delivered bytes)."""
    manifest = {
        "as_of": as_of,
        "contract_version": CONTRACT_VERSION,
        "files": {name: {"rows": n, "sha256": sha256(out / name)} for name, n in rows.items()},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
