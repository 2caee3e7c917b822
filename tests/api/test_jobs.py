"""Jobs run as real `cobranza` subprocesses: validation per type, the zone conflict rule, cancel.

The jobs here fail fast on an empty lake (etl needs raw, score needs a champion), which is
enough to exercise the worker processes: they start, run the real CLI, and report its error.
"""

from __future__ import annotations

import json
import os
import time

import psutil
import pytest
from fastapi.testclient import TestClient

from cobranza.api import ApiOptions, create_app
from cobranza.stages import PathProblem, PipelineParams
from tests.api.conftest import auth, publish_results, results_frame


def _wait(client, headers, job_id, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"type": "nope", "params": {}}, ["body"]),
        ({"type": "ingest", "params": {}}, ["body", "ingest", "params", "extract_dir"]),
        (
            {"type": "ingest", "params": {"extract_dir": "/no/such/dir"}},
            ["body", "ingest", "params", "extract_dir"],
        ),
        ({"type": "train", "params": {"tune": 0}}, ["body", "train", "params", "tune"]),
        ({"type": "etl", "params": {"engine": "pandas"}}, ["body", "etl", "params", "engine"]),
        ({"type": "score", "params": {"as_of": "yesterday"}}, ["body", "score", "params", "as_of"]),
        ({"type": "etl", "params": {"shell": "rm -rf /"}}, ["body", "etl", "params", "shell"]),
    ],
)
def test_params_are_validated_per_type(client, keys, body, loc):
    resp = client.post("/v1/jobs", json=body, headers=auth(keys["operator"]))
    assert resp.status_code == 422
    detail = resp.json()["detail"]
    assert any(d["loc"][: len(loc)] == loc for d in detail), detail
    assert client.get("/v1/jobs", headers=auth(keys["viewer"])).json()["items"] == []


def test_job_runs_in_a_worker_process_and_reports_the_cli_error(client, keys, lake_dir):
    op = auth(keys["operator"])
    resp = client.post("/v1/jobs", json={"type": "etl", "params": {}}, headers=op)
    assert resp.status_code == 202
    job_id = resp.json()["job_id"]
    assert resp.headers["location"] == f"/v1/jobs/{job_id}"
    job = _wait(client, op, job_id)
    assert job["status"] == "failed"
    assert job["returncode"] == 1
    assert "raw zone" in job["error"] and "cobranza ingest" in job["error"]
    assert job["started_at"] and job["finished_at"] and job["seconds"] > 0
    assert (lake_dir / "control" / "jobs" / job_id / "stderr.log").exists()
    listed = client.get("/v1/jobs", params={"status": "failed"}, headers=op).json()["items"]
    assert [j["job_id"] for j in listed] == [job_id]


def test_second_job_on_the_same_zone_gets_409_with_the_running_id(client, keys, tmp_path):
    op = auth(keys["operator"])
    empty = tmp_path / "empty-extract"
    empty.mkdir()
    first = client.post("/v1/jobs", json={"type": "etl", "params": {}}, headers=op).json()
    # a pipeline needs an existing extract folder (validated, 422, before the conflict check)
    pipeline = {"type": "pipeline", "params": {"extract": str(empty)}}
    clash = client.post("/v1/jobs", json=pipeline, headers=op)
    assert clash.status_code == 409
    assert clash.json()["running_job_id"] == first["job_id"]
    assert clash.json()["running_job_type"] == "etl"
    again = client.post("/v1/jobs", json={"type": "etl", "params": {"horizon": 20}}, headers=op)
    assert again.status_code == 409 and again.json()["running_job_id"] == first["job_id"]
    other_zone = client.post(
        "/v1/jobs", json={"type": "ingest", "params": {"extract_dir": str(empty)}}, headers=op
    )
    assert other_zone.status_code == 202  # writes raw only: no conflict with etl
    _wait(client, op, first["job_id"])
    _wait(client, op, other_zone.json()["job_id"])
    after = client.post("/v1/jobs", json={"type": "etl", "params": {}}, headers=op)
    assert after.status_code == 202  # the zone is free again
    _wait(client, op, after.json()["job_id"])


def test_cancel_stops_the_process_group(client, keys):
    op = auth(keys["operator"])
    job_id = client.post("/v1/jobs", json={"type": "etl", "params": {}}, headers=op).json()[
        "job_id"
    ]
    deadline = time.monotonic() + 30
    job = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=op).json()
        if job["status"] == "running":
            break
        time.sleep(0.05)
    assert job["status"] == "running"
    from cobranza.api.control import ControlDB, control_path

    pid = ControlDB(control_path(client.app.state.services.settings.lake)).one(
        "SELECT pid FROM jobs WHERE job_id = ?", (job_id,)
    )["pid"]
    assert psutil.pid_exists(pid)
    resp = client.post(f"/v1/jobs/{job_id}/cancel", headers=op)
    assert resp.status_code == 200
    assert resp.json()["status"] == "cancelled"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    final = _wait(client, op, job_id)
    assert final["status"] == "cancelled"
    assert client.post("/v1/jobs/ffff/cancel", headers=op).status_code == 404
    # cancelling a finished job changes nothing
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=op).json()["status"] == "cancelled"


def test_params_map_to_cli_arguments_without_a_shell(tmp_path):
    from cobranza.stages import EtlParams, IngestParams, PipelineParams, ScoreParams, TrainParams

    assert IngestParams(extract_dir=str(tmp_path), dialect="bank-latin1").cli_args() == [
        "ingest",
        str(tmp_path.resolve()),
        "--dialect",
        "bank-latin1",
    ]
    assert EtlParams(engine="spark", horizon=20).cli_args() == [
        "etl",
        "--engine",
        "spark",
        "--horizon",
        "20",
    ]
    assert TrainParams(tune=5).cli_args() == ["train", "--tune", "5"]
    assert ScoreParams(as_of="2025-06-30").cli_args() == ["score", "--as-of", "2025-06-30"]
    args = PipelineParams(simulate_clients=100, months=6, extract="ext; rm -rf x").cli_args()
    # a hostile string stays one argument: no shell ever sees it
    assert args[args.index("--extract") + 1].endswith("ext; rm -rf x")
    assert args[:3] == ["pipeline", "--months", "6"] and "--simulate-clients" in args


def test_job_environment_reproduces_the_service_settings(monkeypatch, tmp_path):
    from cobranza.api.jobs import settings_env
    from cobranza.config import load_settings

    settings = load_settings(
        lake=tmp_path,
        horizon_days=20,
        costs={"collection_action": 9000},
        pseudonym_key="k" * 40,
    )
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    again = load_settings()
    assert again.model_dump() == settings.model_dump()
    assert again.pseudonym_key.get_secret_value() == settings.pseudonym_key.get_secret_value()


def test_log_tail_masks_emails_and_long_numbers():
    from cobranza.api.redaction import parse_result, redact

    line = "row 12 of clients.csv: ana.perez@mail.com phone 3001234567 amount 1,234,567.50"
    assert redact(line) == "row 12 of clients.csv: [redacted] phone [redacted] amount 1,234,567.50"
    assert parse_result('{"rows": 3}') == {"rows": 3}
    assert parse_result('noise\n{"rows": 4}') == {"rows": 4}
    assert parse_result("") is None


def test_prune_job_needs_admin_runs_alone_and_reports_what_it_kept(client, keys):
    op, admin = auth(keys["operator"]), auth(keys["admin"])
    denied = client.post("/v1/jobs", json={"type": "prune", "params": {}}, headers=op)
    assert denied.status_code == 403 and "admin role" in denied.json()["detail"]

    etl = client.post("/v1/jobs", json={"type": "etl", "params": {}}, headers=op).json()
    blocked = client.post("/v1/jobs", json={"type": "prune", "params": {}}, headers=admin)
    assert blocked.status_code == 409 and blocked.json()["running_job_id"] == etl["job_id"]
    _wait(client, op, etl["job_id"])

    prune = client.post(
        "/v1/jobs", json={"type": "prune", "params": {"keep": 2, "dry_run": True}}, headers=admin
    )
    assert prune.status_code == 202
    # while it runs, nothing else may start: it may be removing what another job would read
    monitor = client.post("/v1/jobs", json={"type": "monitor", "params": {}}, headers=op)
    assert monitor.status_code == 409
    job = _wait(client, admin, prune.json()["job_id"])
    assert job["status"] == "succeeded", (job["error"], job["log_tail"])
    assert job["result"]["dry_run"] is True and job["result"]["keep"] == 2
    assert job["result"]["pruned_versions"] == 0  # an empty lake has nothing to free


def test_prune_params_map_to_the_lake_prune_command():
    from cobranza.stages import PruneParams

    assert PruneParams().cli_args() == ["lake", "prune", "--keep", "3"]
    assert PruneParams(keep=1, dry_run=True).cli_args() == [
        "lake",
        "prune",
        "--keep",
        "1",
        "--dry-run",
    ]


def test_restart_settles_jobs_whose_worker_ended_while_the_service_was_down(
    settings, keys, fast_options, lake_dir
):
    """The service died, its workers finished on their own: their output says how they ended."""
    import json
    import subprocess

    from fastapi.testclient import TestClient

    from cobranza.api import create_app
    from cobranza.api.control import ControlDB, control_path, now_iso

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid whose process has ended
    outputs = {
        "a1": json.dumps({"rows": 3, "version": "v1"}),  # the CLI's summary: it finished
        "b2": json.dumps({"error": "etl failed at silver.clients"}),  # it failed
        "c3": "",  # killed before the end: nothing printed
    }
    db = ControlDB(control_path(lake_dir))
    for job_id, stdout in outputs.items():
        folder = lake_dir / "control" / "jobs" / job_id
        folder.mkdir(parents=True)
        (folder / "stdout.json").write_text(stdout, encoding="utf-8")
        (folder / "stderr.log").write_text("", encoding="utf-8")
        db.execute(
            "INSERT INTO jobs (job_id, type, params, zones, status, created_at, started_at, pid, "
            "versions_at_start) VALUES (?, 'etl', '{}', '[\"silver\", \"gold\"]', 'running', ?, ?, "
            "?, '{}')",
            (job_id, now_iso(), now_iso(), gone.pid),
        )
    db.close()
    with TestClient(create_app(settings, fast_options)) as client:
        jobs = {
            j: client.get(f"/v1/jobs/{j}", headers=auth(keys["viewer"])).json() for j in outputs
        }
    assert jobs["a1"]["status"] == "succeeded"
    assert (
        jobs["a1"]["result"]["rows"] == 3
        and "service was down" in jobs["a1"]["result"]["recovered"]
    )
    assert jobs["b2"]["status"] == "failed" and "silver.clients" in jobs["b2"]["error"]
    assert jobs["c3"]["status"] == "interrupted" and "service stopped" in jobs["c3"]["error"]


# ---- folders in job parameters: what an operator may make the service read or write ----------
# `ingest.extract_dir` and `pipeline.extract` are checked by the route against the server's file
# system and the optional extract roots (`COBRANZA_API_EXTRACT_ROOTS`); refusals are 422s that
# never quote the path, and outside the roots a missing and an existing folder get the same answer.
def _post(client, key, job_type, params):
    return client.post("/v1/jobs", json={"type": job_type, "params": params}, headers=auth(key))


def _no_jobs(client, keys) -> bool:
    return client.get("/v1/jobs", headers=auth(keys["viewer"])).json()["items"] == []


def test_pipeline_may_not_simulate_over_a_folder_the_simulator_did_not_write(
    client, keys, tmp_path
):
    victim = tmp_path / "victim"
    (victim / "_truth").mkdir(parents=True)
    (victim / "clients.csv").write_text("REAL BANK DATA\n", encoding="utf-8")
    (victim / "_truth" / "keep.txt").write_text("keep\n", encoding="utf-8")
    sneaky = str(tmp_path / "probes" / ".." / "victim")  # `..` resolves into another folder
    resp = _post(
        client,
        keys["operator"],
        "pipeline",
        {"extract": sneaky, "simulate_clients": 50, "months": 4},
    )
    assert resp.status_code == 422, resp.text
    (detail,) = resp.json()["detail"]
    assert detail["loc"] == ["body", "pipeline", "params", "extract"]
    assert "not an earlier simulator output" in detail["msg"]
    assert "victim" not in resp.text and str(tmp_path) not in resp.text
    assert (victim / "clients.csv").read_text(encoding="utf-8") == "REAL BANK DATA\n"
    assert (victim / "_truth" / "keep.txt").exists()
    assert _no_jobs(client, keys)


def test_pipeline_without_simulation_needs_an_existing_folder(client, keys, tmp_path):
    resp = _post(client, keys["operator"], "pipeline", {"extract": str(tmp_path / "missing")})
    assert resp.status_code == 422
    (detail,) = resp.json()["detail"]
    assert detail["loc"] == ["body", "pipeline", "params", "extract"]
    assert detail["msg"] == "is not an existing folder on the server"
    assert "missing" not in resp.text
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    for simulate in (None, 50):
        params = {"extract": str(a_file), "simulate_clients": simulate}
        assert _post(client, keys["operator"], "pipeline", params).status_code == 422
    assert _no_jobs(client, keys)


def test_pipeline_simulation_targets_that_are_accepted(tmp_path, sim_extract):
    """A new folder, an empty one, an earlier simulator output; the worker gets the resolved path."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for target in (tmp_path / "new" / "extract", empty, sim_extract):
        params = PipelineParams(extract=str(target), simulate_clients=50)
        params.check_paths(None)
        args = params.cli_args()
        assert args[args.index("--extract") + 1] == str(target.resolve())
    with pytest.raises(PathProblem):
        PipelineParams(extract=str(tmp_path / "nope")).check_paths(None)


def test_messages_do_not_echo_the_input(client, keys, tmp_path):
    secret = "/nonexistent/secret-path"
    resp = _post(client, keys["operator"], "ingest", {"extract_dir": secret})
    assert resp.status_code == 422 and "secret-path" not in resp.text
    assert resp.json()["detail"][0]["loc"] == ["body", "ingest", "params", "extract_dir"]
    tag = client.post("/v1/jobs", json={"type": "nope-secret"}, headers=auth(keys["operator"]))
    assert tag.status_code == 422 and "nope-secret" not in tag.text
    assert "ingest" in tag.json()["detail"][0]["msg"]  # says what is expected
    publish_results(client.app.state.services.settings.lake, results_frame(5))
    odd = "' OR 1=1--\u202e"
    miss = client.get(f"/v1/scores/{odd}", headers=auth(keys["viewer"]))
    assert miss.status_code == 404 and "OR 1=1" not in miss.text and "\\u202e" not in miss.text


@pytest.fixture
def rooted(settings, keys, fast_options, tmp_path):
    """An app whose job extracts must lie under `tmp_path/allowed`."""
    allowed = tmp_path / "allowed"
    (allowed / "extract").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "escape").symlink_to(outside, target_is_directory=True)
    options = fast_options.model_copy(update={"extract_roots": [str(allowed)]})
    with TestClient(create_app(settings, options)) as client:
        yield client, allowed, outside


def test_extract_roots_refuse_outside_paths_alike_whether_or_not_they_exist(rooted, keys):
    client, allowed, outside = rooted
    answers = set()
    for path in (
        "/etc",
        "/proc",
        "/root/.ssh",
        "/no/such/folder",
        str(outside),
        str(allowed / ".." / "outside"),  # `..` resolved
        str(allowed / "escape"),  # a symlink inside the root to a folder outside
        str(allowed / "escape" / "nothing-here"),
    ):
        resp = _post(client, keys["operator"], "ingest", {"extract_dir": path})
        assert resp.status_code == 422, (path, resp.text)
        answers.add(resp.text)
        for simulate in (None, 50):
            params = {"extract": path, "simulate_clients": simulate}
            assert _post(client, keys["operator"], "pipeline", params).status_code == 422
    assert len(answers) == 1  # the same answer: existence outside the roots is not revealed
    (detail,) = json.loads(answers.pop())["detail"]
    assert "COBRANZA_API_EXTRACT_ROOTS" in detail["msg"]
    assert _no_jobs(client, keys)

    inside = _post(client, keys["operator"], "ingest", {"extract_dir": str(allowed / "extract")})
    assert inside.status_code == 202, inside.text
    # shown relative to its extract root, the one root being `<extracts>`
    assert inside.json()["params"]["extract_dir"] == "<extracts>/extract"
    missing = _post(client, keys["operator"], "ingest", {"extract_dir": str(allowed / "nope")})
    assert missing.json()["detail"][0]["msg"] == "is not an existing folder on the server"


def test_list_options_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COBRANZA_API_EXTRACT_ROOTS", f"{tmp_path}/a, {tmp_path}/b")
    monkeypatch.setenv("COBRANZA_API_WEBHOOK_HOSTS", '["n8n", "hooks.internal"]')
    options = ApiOptions()
    assert options.extract_roots == [f"{tmp_path}/a", f"{tmp_path}/b"]
    assert options.webhook_hosts == ["n8n", "hooks.internal"]
    assert options.resolved_extract_roots() == (
        (tmp_path / "a").resolve(),
        (tmp_path / "b").resolve(),
    )
    monkeypatch.setenv("COBRANZA_API_EXTRACT_ROOTS", "")
    assert ApiOptions().extract_roots is None
    monkeypatch.delenv("COBRANZA_API_EXTRACT_ROOTS")
    monkeypatch.delenv("COBRANZA_API_WEBHOOK_HOSTS")
    assert ApiOptions().extract_roots is None and ApiOptions().webhook_hosts is None
    assert os.environ.get("COBRANZA_API_EXTRACT_ROOTS") is None


def _ingest_job(server, op, folder) -> dict:
    from tests.http import live_client

    with live_client(base_url=server.url, timeout=60) as http:
        body = {"type": "ingest", "params": {"extract_dir": str(folder)}}
        resp = http.post("/v1/jobs", json=body, headers=op)
        assert resp.status_code == 202, resp.text
        return resp.json()


def test_a_served_ingest_never_reads_outside_the_extract_roots(tmp_path, sim_extract):
    """A symlinked contract file, and a folder swapped for a symlink after the route checked it,
    make the job fail with a clear message; nothing from outside the roots is published."""
    import shutil

    from cobranza.api.keys import create_key
    from cobranza.config import load_settings
    from cobranza.lake import Lake
    from tests.api.conftest import LiveServer, free_port, wait_job

    lake = tmp_path / "lake"
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    shutil.copytree(sim_extract, outside / "extract", ignore=shutil.ignore_patterns("_truth"))
    linked = root / "linked"
    shutil.copytree(outside / "extract", linked)
    (linked / "payments.csv").unlink()
    (linked / "payments.csv").symlink_to(outside / "extract" / "payments.csv")
    swapped = root / "swapped"
    shutil.copytree(outside / "extract", swapped)
    op = {"X-API-Key": create_key(load_settings(lake=lake), "operator", "t")["key"]}
    server = LiveServer(lake, free_port(), env={"COBRANZA_API_EXTRACT_ROOTS": str(root)}).start()
    try:
        job = _ingest_job(server, op, linked)
        done = wait_job(server.url, op, job["job_id"])
        assert done["status"] == "failed"
        assert "payments.csv: is a symbolic link" in done["error"]
        # the route checked `swapped`; it becomes a symlink to a folder outside before the
        # worker (a new process) opens it
        job = _ingest_job(server, op, swapped)
        swapped.rename(root / "was-swapped")
        swapped.symlink_to(outside / "extract", target_is_directory=True)
        done = wait_job(server.url, op, job["job_id"])
        assert done["status"] == "failed", done
        assert "nothing was read" in done["error"]
    finally:
        server.stop()
    assert Lake(lake).current_version("raw") is None
