"""Ingest's result printed for people: per file, the assignment arms, the report."""

from __future__ import annotations

from cobranza.runs import IngestResult


def test_ingest_tables_per_file_with_totals_arms_and_the_report():
    counts = {
        "clients.csv": dict(
            rows_read=10, rows_accepted=8, rows_quarantined=1, duplicates_collapsed=1
        ),
        "obligations.csv": dict(
            rows_read=1200, rows_accepted=1200, rows_quarantined=0, duplicates_collapsed=0
        ),
    }
    result = IngestResult(
        version="v1",
        as_of="2025-06-30",
        extract_dir="/x",
        dialect="standard",
        files=counts,
        rows_read=1210,
        rows_accepted=1208,
        rows_quarantined=1,
        duplicates_collapsed=1,
        warnings=["clients.csv: extra column(s) nickname kept in raw, not used"],
        fatal=None,
        seconds=1.5,
        extra={
            "contract_version": 2,
            "assignments": {
                "file": "collection_assignments.csv",
                "latest_cut": "2025-06-30",
                "arms": {"ASSIGNED": 90, "HOLDOUT": 8, "RULE": 2},
                "missing": 3,
                "latest_cut_undecided": 5,
                "contamination": {"rows": 1, "actions": 2},
            },
            "quality_report": {"html": "/l/q.html", "csv": "/l/q.csv"},
        },
    )
    files, arms, report = result.sections()
    assert files[0] == (
        "raw version v1 (as of 2025-06-30, contract version 2, dialect standard, 1.5 s)"
    )
    assert files[1] == ["file", "read", "accepted", "quarantined", "duplicates collapsed"]
    assert files[2] == [
        ("clients.csv", "10", "8", "1", "1"),
        ("obligations.csv", "1,200", "1,200", "0", "0"),
        ("total", "1,210", "1,208", "1", "1"),
    ]
    assert arms[0] == "collection assignments (collection_assignments.csv)"
    assert ("HOLDOUT", "8") in arms[2] and ("  collection actions on them", "2") in arms[2]
    assert ("latest cut 2025-06-30: not yet decided", "5") in arms[2]
    # the warnings are the run's log lines, printed once by the run, not a second time here
    assert all(result.warnings[0] not in str(section) for section in result.sections())
    assert report[2] == [("HTML", "/l/q.html"), ("CSV", "/l/q.csv")]
