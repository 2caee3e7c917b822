"""`GET /v1/monitoring` and the `monitor` job against a real `cobranza serve` process on loopback.

The lake is trained and scored twice (an older labeled cut, then the latest one); the monitor runs
as an API job in a worker process. The endpoint must say 404 before the first run, then report
the run the job wrote: the same status and PSI as the job's own summary, the reference window the
monitor's rule gives on the synthetic gold, and the realized figures of the closed scoring run,
recomputed here from the scores and the labels (AUC with scikit-learn, pesos by hand).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cobranza.lake import Lake
from tests.api.conftest import wait_job
from tests.api.dashboard_lake import build_scored_lake, serving
from tests.http import live_client

pytestmark = pytest.mark.slow
http = live_client(timeout=120)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    # A lake of its own: the dashboard tests run monitoring on the shared one, and this test
    # must see the lake before monitoring ever ran.
    with serving(build_scored_lake(tmp_path_factory), "monitoring") as served:
        yield served


def _h(keys, role):
    return {"X-API-Key": keys[role]}


def _labeled_scores(lake_root, scoring_run_id: str):
    """The closed run's eligible scored rows joined with their labels, straight from Parquet."""
    lake = Lake(lake_root)
    versions = [
        v["version"] for v in lake.versions("results") if "scores" in v.get("history_tables", [])
    ]
    scores = [lake.table_glob("results", "scores", v) for v in versions]
    gold = lake.table_glob("gold", "obligation_snapshots")
    return (
        duckdb.connect()
        .execute(
            "SELECT s.probability, s.decision, s.amount_past_due, s.p_roll_action, s.roll_loss, "
            "g.self_cure_debit AS y, g.roll_31_plus AS rolled "
            "FROM read_parquet(?, union_by_name=true) s JOIN read_parquet(?) g "
            "USING (obligation_id, cut_date) "
            "WHERE s.scoring_run_id = ? AND s.probability IS NOT NULL "
            "AND g.self_cure_debit IS NOT NULL",
            [scores, gold, scoring_run_id],
        )
        .df()
    )


def test_monitor_job_and_report(served):
    built, server, keys = served
    url = server.url
    # never ran: 404 that says how to start it
    resp = http.get(f"{url}/v1/monitoring", headers=_h(keys, "viewer"))
    assert resp.status_code == 404
    assert "monitor" in resp.json()["detail"]
    # roles: no key 401, a viewer may read but not run, an operator runs
    assert http.get(f"{url}/v1/monitoring").status_code == 401
    body = {"type": "monitor", "params": {}}
    assert http.post(f"{url}/v1/jobs", json=body, headers=_h(keys, "viewer")).status_code == 403
    resp = http.post(f"{url}/v1/jobs", json=body, headers=_h(keys, "operator"))
    assert resp.status_code == 202, resp.text
    job = wait_job(url, _h(keys, "operator"), resp.json()["job_id"], timeout=300)
    assert job["status"] == "succeeded", (job["error"], job["log_tail"])
    assert job["type"] == "monitor" and job["progress"]["fraction"] == 1.0
    summary = job["result"]

    resp = http.get(f"{url}/v1/monitoring", headers=_h(keys, "viewer"))
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["monitoring_run_id"] == summary["monitoring_run_id"]
    assert report["runs"] == 1
    assert report["status"] == summary["status"]
    assert report["model_version"] == summary["model_version"] == "1"
    assert report["score"]["status"] == summary["score_status"]
    assert round(report["score"]["psi"], 4) == summary["score_psi"]
    # periods: the 3 labeled months before the 3 out-of-time ones; current = the latest cut
    cuts = [c.isoformat() for c in built.cuts]
    assert report["reference"]["cut_dates"] == cuts[1:4]
    assert (report["reference"]["start"], report["reference"]["end"]) == (cuts[1], cuts[3])
    assert report["reference"]["rows"] == summary["reference_rows"]
    assert report["current"]["cut_dates"] == [cuts[-1]]
    assert report["current"]["rows"] == summary["current_rows"]
    # every feature of the model, largest PSI first, status by the documented bands
    features = report["features"]
    names = {f["feature"] for f in features}
    assert {"balance_to_installment", "debit_rejects_3m", "noise_feature"} <= names
    psis = [f["psi"] for f in features]
    assert psis == sorted(psis, reverse=True)
    for f in features:
        expected = "OK" if f["psi"] < 0.10 else "WARN" if f["psi"] < 0.25 else "ALERT"
        assert f["status"] == expected, f
    assert summary["top_drift"][0]["feature"] == features[0]["feature"]

    # realized performance: only the older run's horizon has closed
    perf = report["performance"]
    assert len(perf) == 1
    run = perf[0]
    assert run["scoring_run_id"] == built.past_run.scoring_run_id
    assert run["cut_date"] == cuts[-2]
    rows = _labeled_scores(built.lake, run["scoring_run_id"])
    y = rows["y"].to_numpy(dtype=np.int64)
    assert run["rows"] == len(rows) == built.past_run.eligible
    assert run["auc"] == pytest.approx(roc_auc_score(y, rows["probability"]), abs=1e-6)
    assert run["self_cure_rate"] == pytest.approx(y.mean(), abs=1e-6)
    no_assign = rows["decision"].to_numpy() == "NO_ASSIGN"
    assert run["no_assign"] == no_assign.sum() == built.past_run.no_assign
    policy = Lake(built.lake).run_info("results", built.past_run.results_version)["policy"]
    leaked = no_assign & (y == 0)
    avoided = no_assign.sum() * policy["collection_action"]
    # the rolls of the NO_ASSIGN rows beyond the risk management would have left, at the roll loss
    left = rows[no_assign]
    leakage = ((left["rolled"] - left["p_roll_action"]) * left["roll_loss"]).sum()
    assert run["actions_avoided_cost"] == pytest.approx(avoided, abs=0.01)
    assert run["leakage_cost"] == pytest.approx(leakage, abs=0.01)
    assert run["net_savings"] == pytest.approx(avoided - leakage, abs=0.02)
    assert run["leakage_rate"] == pytest.approx(leaked.sum() / no_assign.sum(), abs=1e-6)

    # the job list filters by the new type
    listed = http.get(f"{url}/v1/jobs", params={"type": "monitor"}, headers=_h(keys, "viewer"))
    assert [j["job_id"] for j in listed.json()["items"]] == [job["job_id"]]


def test_monitor_locks_only_against_another_monitor(served):
    _, server, keys = served
    url, op = server.url, _h(keys, "operator")
    first = http.post(f"{url}/v1/jobs", json={"type": "monitor"}, headers=op)
    assert first.status_code == 202, first.text
    second = http.post(f"{url}/v1/jobs", json={"type": "monitor"}, headers=op)
    assert second.status_code == 409
    assert second.json()["running_job_id"] == first.json()["job_id"]
    # scoring writes results, not the monitor's lock: it may run beside it
    score = http.post(f"{url}/v1/jobs", json={"type": "score"}, headers=op)
    assert score.status_code == 202, score.text
    for job_id in (first.json()["job_id"], score.json()["job_id"]):
        job = wait_job(url, op, job_id, timeout=300)
        assert job["status"] == "succeeded", (job["type"], job["error"], job["log_tail"])
    report = http.get(f"{url}/v1/monitoring", headers=_h(keys, "viewer")).json()
    assert (
        report["monitoring_run_id"]
        == wait_job(url, op, first.json()["job_id"])["result"]["monitoring_run_id"]
    )
    done = http.get(
        f"{url}/v1/jobs", params={"type": "monitor", "status": "succeeded"}, headers=op
    ).json()["items"]
    assert report["runs"] == len(done) >= 1


def test_status_rule_and_a_run_without_closed_horizons(tmp_path):
    """In process, on hand-written monitoring files: the overall status and an empty performance."""
    from fastapi.testclient import TestClient

    from cobranza.api import create_app
    from cobranza.api.keys import create_key
    from cobranza.api.routers.monitoring import overall_status
    from cobranza.config import load_settings

    ok = [{"status": "OK"}]
    assert overall_status(ok, "OK") == "OK"
    assert overall_status([*ok, {"status": "WARN"}], "OK") == "WARN"
    assert overall_status(ok, "WARN") == "WARN"
    assert overall_status([*ok, {"status": "WARN"}], "ALERT") == "ALERT"
    assert overall_status([{"status": "INSUFFICIENT_DATA"}], "INSUFFICIENT_DATA") == (
        "INSUFFICIENT_DATA"
    )

    settings = load_settings(lake=tmp_path / "lake")
    lake = Lake(settings.lake).ensure()
    viewer = {"X-API-Key": create_key(settings, "viewer", "mon-unit")["key"]}
    stamp = {
        "gold_version": None,
        "current_cut": "2026-01-31",
        "model_version": "2",
    }
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/monitoring", headers=viewer).status_code == 404
        for run_id, psi in (("20260101T000000000000", 0.3), ("20260201T000000000000", 0.12)):
            status = "ALERT" if psi >= 0.25 else "WARN"
            rows = [
                {
                    **stamp,
                    "monitoring_run_id": run_id,
                    "feature": "a",
                    "psi": psi,
                    "status": status,
                },
                {
                    **stamp,
                    "monitoring_run_id": run_id,
                    "feature": "__score__",
                    "psi": None,
                    "status": "INSUFFICIENT_DATA",
                },
            ]
            lake.write_metadata("monitoring_drift", rows, run_id)
        report = client.get("/v1/monitoring", headers=viewer).json()
    assert report["monitoring_run_id"] == "20260201T000000000000"  # the newest run
    assert report["runs"] == 2
    assert report["status"] == "WARN"
    assert report["features"] == [{"feature": "a", "psi": 0.12, "status": "WARN"}]
    assert report["score"] == {"psi": None, "status": "INSUFFICIENT_DATA"}
    assert report["current"]["cut_dates"] == ["2026-01-31"]
    assert report["reference"]["cut_dates"] == [] and report["reference"]["rows"] is None
    assert report["performance"] == []
    assert report["run_at"].startswith("2026-02-01T00:00:00")
