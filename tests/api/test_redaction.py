"""Personal data never leaves through job output: error, log tail, result, webhook bodies, the
jobs table, the outbox and the job's stored files are all masked by `redact`, whatever a worker
prints, with real worker processes, a real webhook receiver and the real control database.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time

import pytest

from cobranza.api.control import ControlDB, control_path
from cobranza.api.redaction import SCRUBBED_MARKER, redact, redact_value, scrub_job_files
from cobranza.contract import FILES
from tests.api.conftest import auth
from tests.api.test_webhooks import Receiver

# A data row in the clients.csv layout: what an extract without its header line starts with.
CLIENT_ID, DOCUMENT, EMAIL, PHONE = (
    "C09999999",
    "1014929605",
    "mariana.perez59@gmail.com",
    "3434651336",
)
ROW = (
    f"{CLIENT_ID},CC,{DOCUMENT},Mariana Pérez Núñez,1989-10-12,F,Medellín,Antioquia,AFFLUENT,"
    f"SALARIED,4746000,2023-04-24,{EMAIL},{PHONE}"
)
SECRETS = (CLIENT_ID, DOCUMENT, EMAIL, PHONE, "1.014.929.605", "328 219 8115")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # documents before `,`/`.`, with dots, with spaces
        ("doc 1014929605, next", "doc [redacted], next"),
        ("doc 1014929605.", "doc [redacted]."),
        ("doc 1.014.929.605 end", "doc [redacted] end"),
        ("tel 328 219 8115 end", "tel [redacted] end"),
        ("tel 328-219-8115 / +57 300 1234567", "tel [redacted] / +[redacted]"),
        ("mail ana.perez@mail.com.co!", "mail [redacted]!"),
        ("client c00000000, C09999999", "client [redacted], [redacted]"),
        (
            f"header: {ROW}",
            "header: [redacted],CC,[redacted],Mariana Pérez Núñez,1989-10-12,F,"
            "Medellín,Antioquia,AFFLUENT,SALARIED,4746000,2023-04-24,[redacted],[redacted]",
        ),
        # what must stay readable: version ids, timestamps, dates, counts, decimals, job ids
        (
            "raw 20261201T080841985539-d87fc870 and 20261201T080841985539-12345678",
            "raw 20261201T080841985539-d87fc870 and 20261201T080841985539-12345678",
        ),
        ("rows 12,104,152 amount 1,234,567.50", "rows 12,104,152 amount 1,234,567.50"),
        (
            "as of 2026-10-31 at 2026-10-31T10:00:00.050+00:00",
            "as of 2026-10-31 at 2026-10-31T10:00:00.050+00:00",
        ),
        (
            "auc 0.8123456789012 job 4f1c2a9e0b7d4c11 127.0.0.1",
            "auc 0.8123456789012 job 4f1c2a9e0b7d4c11 127.0.0.1",
        ),
    ],
)
def test_redact_masks_personal_data_shapes_and_keeps_ids_dates_and_counts(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent: masked text is stable


def test_redact_value_masks_strings_and_keeps_numbers():
    value = {"rows_total": 12104152, "note": f"first row {ROW}", "files": ["a.csv", EMAIL]}
    masked = redact_value(value)
    assert masked["rows_total"] == 12104152
    assert masked["files"] == ["a.csv", "[redacted]"]
    assert DOCUMENT not in masked["note"] and "Mariana" in masked["note"]


def _clean(text: str, where: str) -> None:
    low = text.lower()
    leaked = [s for s in SECRETS if s.lower() in low]
    assert not leaked, f"{where} holds {leaked}"


def _headerless_extract(sim_extract_clean, folder):
    """A valid extract whose clients.csv lost its header line: ingest's error quotes a data row."""
    folder.mkdir(parents=True)
    for spec in FILES:
        if spec.filename != "clients.csv":
            shutil.copy(sim_extract_clean / spec.filename, folder / spec.filename)
    lines = (sim_extract_clean / "clients.csv").read_text(encoding="utf-8").splitlines()
    (folder / "clients.csv").write_text("\n".join([ROW, *lines[1:]]) + "\n", encoding="utf-8")
    return folder


def test_job_output_is_masked_in_responses_webhooks_db_and_stored_files(
    client, keys, lake_dir, tmp_path, sim_extract_clean
):
    op, admin = auth(keys["operator"]), auth(keys["admin"])
    headerless = _headerless_extract(sim_extract_clean, tmp_path / "headerless")
    # an empty folder whose name carries the shapes: the CLI's error quotes the path, so this
    # job's output holds them whatever the ingest message does
    named = tmp_path / f"x {DOCUMENT}, {EMAIL} 328 219 8115 1.014.929.605"
    named.mkdir()
    with Receiver(failures=0) as receiver:
        hook = client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["job.failed"]}, headers=admin
        )
        assert hook.status_code == 201
        job_ids = []
        for folder in (headerless, named):
            resp = client.post(
                "/v1/jobs",
                json={"type": "ingest", "params": {"extract_dir": str(folder)}},
                headers=op,
            )
            assert resp.status_code == 202, resp.text
            job_id = resp.json()["job_id"]
            deadline = time.monotonic() + 90
            while client.get(f"/v1/jobs/{job_id}", headers=op).json()["status"] in (
                "queued",
                "running",
            ):
                assert time.monotonic() < deadline
                time.sleep(0.2)
            job_ids.append(job_id)
        deadline = time.monotonic() + 30
        while len(receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)

    for job_id in job_ids:
        job = client.get(f"/v1/jobs/{job_id}", headers=op).json()
        assert job["status"] == "failed" and job["error"]
        _clean(json.dumps({k: job[k] for k in ("error", "result", "log_tail")}), "GET job")
        jdir = lake_dir / "control" / "jobs" / job_id
        assert (jdir / SCRUBBED_MARKER).exists()
        for name in ("stdout.json", "stderr.log"):
            _clean((jdir / name).read_text(encoding="utf-8"), name)
        json.loads((jdir / "stdout.json").read_text(encoding="utf-8"))  # still JSON
    named_job = client.get(f"/v1/jobs/{job_ids[1]}", headers=op).json()
    assert "[redacted]" in named_job["error"] and "empty extract" in named_job["error"]
    assert any("[redacted]" in line for line in named_job["log_tail"])
    listed = client.get("/v1/jobs", headers=op).json()["items"]
    _clean(json.dumps([{k: j[k] for k in ("error", "result")} for j in listed]), "GET /v1/jobs")

    assert len(receiver.received) == 2
    for _, body, _ in receiver.received:
        _clean(body.decode("utf-8"), "webhook body")

    con = sqlite3.connect(control_path(lake_dir))
    try:
        for error, result in con.execute("SELECT error, result FROM jobs"):
            _clean(f"{error} {result}", "jobs table")
        for (body,) in con.execute("SELECT body FROM outbox"):
            _clean(bytes(body).decode("utf-8"), "outbox")
    finally:
        con.close()


def test_scrub_keeps_counts_as_numbers_and_masks_the_log(tmp_path):
    jdir = tmp_path / "job"
    jdir.mkdir()
    (jdir / "stdout.json").write_text(
        json.dumps(
            {"rows_total": 12104152, "version": "20261201T080841985539-d87fc870", "note": ROW}
        ),
        encoding="utf-8",
    )
    (jdir / "stderr.log").write_text(f"line 1\nerror: {ROW}\nrows 12,104,152\n", encoding="utf-8")
    scrub_job_files(jdir)
    out = json.loads((jdir / "stdout.json").read_text(encoding="utf-8"))
    assert out["rows_total"] == 12104152
    assert out["version"] == "20261201T080841985539-d87fc870"
    err = (jdir / "stderr.log").read_text(encoding="utf-8")
    assert err.splitlines()[0] == "line 1" and err.splitlines()[2] == "rows 12,104,152"
    _clean(json.dumps(out) + err, "scrubbed files")
    assert sorted(p.name for p in jdir.iterdir()) == [SCRUBBED_MARKER, "stderr.log", "stdout.json"]


def test_records_left_unmasked_by_an_older_service_are_masked_at_startup(
    settings, lake_dir, keys, fast_options
):
    """Job rows, job folders and outbox bodies written before masking existed."""
    from fastapi.testclient import TestClient

    from cobranza.api import create_app

    db = ControlDB(control_path(lake_dir))
    db.execute(
        "INSERT INTO jobs (job_id, type, params, zones, status, created_at, error, result) "
        "VALUES ('0123456789abcdef', 'ingest', '{}', '[\"raw\"]', 'failed', "
        "'2026-01-01T00:00:00.000+00:00', ?, ?)",
        (f"clients.csv: header {ROW}", json.dumps({"rows": 12104152, "first": ROW})),
    )
    body = json.dumps(
        {"event": "job.failed", "job": {"job_id": "0123456789abcdef", "error": ROW, "result": None}}
    )
    db.execute(
        "INSERT INTO webhooks (webhook_id, url, secret, events, created_at, active) "
        "VALUES ('abcabcabcabc', 'http://127.0.0.1:9/x', 's', '[\"job.failed\"]', 'now', 0)"
    )
    db.execute(
        "INSERT INTO outbox (delivery_id, webhook_id, job_id, event, body, created_at, done_at) "
        "VALUES ('d1', 'abcabcabcabc', '0123456789abcdef', 'job.failed', ?, 'now', 'now')",
        (body.encode(),),
    )
    jdir = lake_dir / "control" / "jobs" / "0123456789abcdef"
    jdir.mkdir(parents=True)
    (jdir / "stdout.json").write_text(json.dumps({"error": ROW}), encoding="utf-8")
    (jdir / "stderr.log").write_text(f"error: {ROW}\n", encoding="utf-8")

    with TestClient(create_app(settings, fast_options)) as client:
        job = client.get("/v1/jobs/0123456789abcdef", headers=auth(keys["viewer"])).json()
    _clean(json.dumps(job), "GET job")
    assert job["result"]["rows"] == 12104152
    row = db.one("SELECT error, result FROM jobs WHERE job_id = '0123456789abcdef'")
    _clean(f"{row['error']} {row['result']}", "jobs table")
    _clean(bytes(db.one("SELECT body FROM outbox")["body"]).decode(), "outbox")
    for name in ("stdout.json", "stderr.log"):
        _clean((jdir / name).read_text(encoding="utf-8"), name)
