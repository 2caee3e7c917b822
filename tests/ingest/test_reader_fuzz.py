"""Property-based fuzz of the CSV reader (hypothesis): whatever the cells or the bytes of a file,
the ingest ends in a published version whose rows all add up (read = accepted + quarantined +
collapsed duplicates), or in one clear line naming the file; never a traceback, never a lost row.
"""

from __future__ import annotations

import copy
import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobranza.config import load_settings
from cobranza.contract import FILES_BY_STEM, STANDARD
from cobranza.ingest import IngestError, ingest_extract
from tests.ingest.conftest import BASE_ROWS, write_extract

CLIENTS = FILES_BY_STEM["clients"]
FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
cell = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["=1+2*3", "@SUM(A1)", "-1", '"', '""', ",", "\n", "\r\n", " ", "\x00", "ñ"]),
)
row = st.lists(cell, min_size=0, max_size=len(CLIENTS.columns) + 2)


def _counts_add_up(report: dict) -> None:
    for name, counts in report["files"].items():
        assert counts["rows_read"] == (
            counts["rows_accepted"] + counts["rows_quarantined"] + counts["duplicates_collapsed"]
        ), name


@FUZZ
@given(rows=st.lists(row, min_size=1, max_size=8))
def test_any_quoted_cells_are_read_as_records_none_lost(tmp_path_factory, rows):
    base = tmp_path_factory.mktemp("fuzz")
    extract = write_extract(base / "x", manifest=False)
    written = [r for r in rows if any(c != "" for c in r)]  # an all-empty record reads as blank
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(written)
    path = extract / "clients.csv"
    path.write_bytes(path.read_bytes() + buf.getvalue().replace("\x00", "").encode("utf-8"))
    lake = load_settings(lake=base / "lake", duckdb_memory_limit="512MB", duckdb_threads=1)
    try:
        report = ingest_extract(lake, extract, STANDARD)
    except IngestError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("clients.csv")
        return
    _counts_add_up(report)
    assert report["files"]["clients.csv"]["rows_read"] >= len(BASE_ROWS["clients"])


@FUZZ
@given(tail=st.binary(max_size=200))
def test_any_bytes_end_in_a_version_or_one_line_naming_the_file(tmp_path_factory, tail):
    base = tmp_path_factory.mktemp("fuzz")
    extract = write_extract(base / "x", manifest=False)
    path = extract / "payments.csv"
    path.write_bytes(path.read_bytes() + tail)
    lake = load_settings(lake=base / "lake", duckdb_memory_limit="512MB", duckdb_threads=1)
    try:
        report = ingest_extract(lake, extract, STANDARD)
    except IngestError as exc:
        message = str(exc)
        assert "\n" not in message and "Traceback" not in message
        assert message.startswith("payments.csv"), message
        return
    _counts_add_up(report)


def test_the_fuzzed_file_starts_from_a_valid_extract(tmp_path):
    """The base the fuzz appends to is accepted whole: what goes wrong is the fuzz's."""
    extract = write_extract(tmp_path / "x", manifest=False)
    report = ingest_extract(load_settings(lake=tmp_path / "lake"), extract, STANDARD)
    clients = report["files"]["clients.csv"]
    assert (
        clients["rows_read"] == clients["rows_accepted"] == len(copy.deepcopy(BASE_ROWS)["clients"])
    )
