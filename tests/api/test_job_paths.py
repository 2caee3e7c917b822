"""Folders in job parameters (audit D2, D4, D5): what an operator may make the service read or write.

`ingest.extract_dir` and `pipeline.extract` are checked by the route against the server's file
system and the optional extract roots (`COBRANZA_API_EXTRACT_ROOTS`); refusals are 422s that
never quote the path, and outside the roots a missing and an existing folder get the same answer.
"""

from __future__ import annotations

import json
import os

import pytest
from fastapi.testclient import TestClient

from cobranza.api import ApiOptions, create_app
from cobranza.stages import PathProblem, PipelineParams
from tests.api.conftest import auth, publish_results, results_frame


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
    sneaky = str(tmp_path / "probes" / ".." / "victim")  # the audit's path
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
    assert inside.json()["params"]["extract_dir"] == str((allowed / "extract").resolve())
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
