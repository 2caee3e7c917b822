"""`cobranza monitor` end to end: an income shock in the simulator shows up as drift, a stable
portfolio does not, and past scoring runs are checked against the labels their horizons produced."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from cobranza.config import load_settings
from cobranza.contract import STANDARD
from cobranza.lake import Lake
from tests.conftest import sim_config

pytestmark = pytest.mark.slow
# PSI needs a few hundred early-delinquent rows per side: about 10k clients
DRIFT_CLIENTS = 10_000


def _gold_lake(root, drift: bool, clients: int):
    from cobranza.ingest import ingest_extract
    from cobranza.simulate import simulate
    from cobranza.transforms import run_etl

    extract = root / "extract"
    simulate(
        extract, sim_config(noise=0.0, drift=drift, clients=clients, months=24, seed=21), STANDARD
    )
    settings = load_settings(lake=root / "lake")
    ingest_extract(settings, extract, STANDARD)
    run_etl(settings)
    return settings


@pytest.fixture(scope="module")
def shocked(tmp_path_factory):
    from cobranza.monitoring.monitor import data_drift

    settings = _gold_lake(tmp_path_factory.mktemp("mon-drift"), True, DRIFT_CLIENTS)
    return data_drift(settings, Lake(settings.lake))


@pytest.fixture(scope="module")
def stable(tmp_path_factory):
    """A stable portfolio, trained and scored twice (once on a cut whose horizon has closed)."""
    from cobranza.decision.scoring import score
    from cobranza.ml.registry import champion_version, list_models, promote
    from cobranza.ml.training import train
    from cobranza.monitoring import monitor

    settings = _gold_lake(tmp_path_factory.mktemp("mon-stable"), False, DRIFT_CLIENTS)
    train(settings)
    if (
        champion_version(settings) is None
    ):  # the gate is the ML layer's test; any model will do here
        promote(
            settings, list_models(settings)[-1]["version"], who="test", reason="monitoring test"
        )
    gold = Lake(settings.lake).table_glob("gold", "obligation_snapshots")
    con = duckdb.connect()
    labeled = con.execute(
        f"SELECT max(cut_date) FROM read_parquet('{gold}') WHERE self_cure_debit IS NOT NULL"
    ).fetchone()[0]
    score(settings, as_of=labeled)
    score(settings)
    return settings, monitor(settings)


def _alerts(drift):
    return {r["feature"] for r in drift if r["status"] == "ALERT"}


def test_income_shock_is_flagged_beyond_seasonality(shocked, stable):
    _, calm = stable
    assert calm.current_rows >= 100 and calm.reference_rows >= 300
    assert calm.score_status != "INSUFFICIENT_DATA"
    # The simulator is seasonal (mid-year bonus in the reference months), so a stable portfolio
    # may alert on a trend feature; the shock must move more features, and the balance ones that
    # stay quiet without it.
    calm_alerts = set(calm.features_alert)
    moved = _alerts(shocked["drift"])
    assert len(moved) > len(calm_alerts)
    shock_only = moved - calm_alerts
    assert {"avg_balance_3m", "balance_to_installment"} <= shock_only, shock_only
    # and more clients fall into early delinquency
    assert len(shocked["current"]) > 1.5 * calm.current_rows


def test_realized_performance_of_a_closed_horizon(stable):
    _, result = stable
    assert result.realized, "the scoring run on a labeled cut must be evaluated"
    row = result.realized[0]
    assert row["rows"] > 0 and 0.5 < row["auc"] <= 1.0
    assert 0.0 <= row["observed_rate"] <= 1.0


def test_monitoring_tables_in_the_catalog(stable):
    settings, result = stable
    con = duckdb.connect(str(Lake(settings.lake).catalog_path), read_only=True)
    (n,) = con.execute(
        "SELECT count(*) FROM ml_metadata.monitoring_drift WHERE monitoring_run_id = ?",
        [result.monitoring_run_id],
    ).fetchone()
    assert n > 10
    assert con.execute("SELECT count(*) FROM ml_metadata.monitoring_performance").fetchone()[0] >= 1


def test_each_run_writes_its_report_next_to_its_results(stable):
    settings, run = stable
    result = run.to_json()
    report = Path(result["report"])
    lake = Lake(settings.lake)
    assert report.parent == lake.metadata_dir / "monitoring_reports"
    assert report.name == f"{result['monitoring_run_id']}.html"
    text = report.read_text(encoding="utf-8")
    assert f'data-status="{result["status"]}"' in text
    assert result["top_drift"][0]["feature"] in text
    assert text.count("data:image/png;base64,") >= len(result["top_drift"]) + 2
    assert result["status_reason"] and "realized" in result


def test_too_few_current_rows_are_insufficient_data_with_the_count(tmp_path):
    """A current cut of 48 eligible rows: not judged, and the summary and the report say so."""
    from cobranza.ml.training import train
    from cobranza.monitoring import monitor
    from cobranza.monitoring.drift import MIN_ROWS
    from cobranza.monitoring.monitor import DRIFT_EXIT_CODE, exit_code
    from tests.ml.gold import make_gold, publish_gold

    gold = make_gold(clients=400, months=8, seed=5)
    last = gold["cut_date"].max()
    eligible_last = gold.index[(gold["cut_date"] == last) & gold["eligible"].astype(bool)]
    dropped = eligible_last[48:]
    gold = gold.drop(index=dropped).reset_index(drop=True)
    lake = Lake(tmp_path / "lake").ensure()
    publish_gold(lake, gold)
    settings = load_settings(lake=tmp_path / "lake", gate={"max_ece": 1.0}, reason_language="es")
    train(settings)
    result = monitor(settings).to_json()
    assert result["current_rows"] == 48 and result["reference_rows"] >= MIN_ROWS
    assert result["status"] == "INSUFFICIENT_DATA"
    assert result["status_reason"] == f"48 rows in the current cut, minimum {MIN_ROWS}"
    text = Path(result["report"]).read_text(encoding="utf-8")
    assert f"48 filas en el corte actual, mínimo {MIN_ROWS}" in text
    assert exit_code(result, "alert") == 0
    assert exit_code(result, "insufficient_data") == DRIFT_EXIT_CODE


def test_fail_on_sets_the_exit_code_of_the_command(stable, capsys):
    """`--fail-on never` exits 0 and prints the run's tables; the level at which the run's status
    stops exits 3, with the JSON summary still one document on stdout."""
    from cobranza.cli import run
    from cobranza.monitoring.monitor import DRIFT_EXIT_CODE, FAIL_LEVELS

    settings, calm = stable
    lake = str(settings.lake)
    assert run(["--lake", lake, "monitor", "--fail-on", "never"]) == 0
    out = capsys.readouterr().out
    assert "drift (PSI, largest first)" in out and "score (probability)" in out
    # the narrowest level that stops at this run's status (none when it is OK)
    stopping = next((k for k, stops in FAIL_LEVELS.items() if calm.status in stops), None)
    code = run(["--lake", lake, "--json", "monitor", "--fail-on", stopping or "alert"])
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] in {"OK", "WARN", "ALERT", "INSUFFICIENT_DATA"}
    assert code == (DRIFT_EXIT_CODE if stopping else 0)


def test_monitor_tables_for_people():
    """The status and why, the score's and the features' PSI, realized figures, the report."""
    from cobranza.monitoring.monitor import MonitorResult

    result = MonitorResult(
        status="WARN",
        status_reason="1 feature moved",
        report="/lake/ml_metadata/monitoring_reports/r.html",
        current_cut="2025-06-30",
        model_version="3",
        reference_rows=1200,
        current_rows=400,
        score_psi=0.0412,
        score_status="OK",
        features_alert=[],
        features_warn=["avg_balance_3m"],
        top_drift=[{"feature": "avg_balance_3m", "psi": 0.14, "status": "WARN"}],
        realized=[
            {
                "cut_date": "2025-04-30",
                "model_version": "3",
                "rows": 350,
                "auc": 0.81,
                "ece": 0.02,
                "observed_rate": 0.4,
                "predicted_rate": 0.41,
                "leakage_rate": None,
            }
        ],
        monitoring_run_id="r",
    )
    sections = {heading: rows for heading, _, rows in result.sections()}
    assert ("status", "WARN") in sections["monitoring run r"]
    assert ("features in WARN", "avg_balance_3m") in sections["monitoring run r"]
    assert sections["drift (PSI, largest first)"] == [
        ("score (probability)", "0.0412", "OK"),
        ("avg_balance_3m", "0.1400", "WARN"),
    ]
    realized = sections["realized performance of closed horizons"]
    assert realized == [("2025-04-30", "3", "350", "0.810", "0.020", "0.400", "0.410", "-")]
    assert sections["report"] == [(result.report,)]
