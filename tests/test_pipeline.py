"""The main job: a model that fails the gate never decides, the champion before it does; the report
people read after a run shows the run's own figures."""

from __future__ import annotations

import pytest

from cobranza.config import load_settings
from cobranza.lake import Lake
from cobranza.pipeline import PipelineError, report, run_pipeline

STRICT = {"max_psi": 0.0}  # no model passes: PSI is never exactly 0
LENIENT = {"max_ece": 1.0, "max_psi": 100.0}
# A fixed pseudonym key: the client split (by client_key), and so every figure below, is the same
# every run.
KEY = "pipeline-tests-key-2b7e94c1a05d3f86e1c4"


@pytest.mark.slow
def test_gate_failure_without_champion_stops_before_scoring_then_the_champion_keeps_deciding(
    tmp_path, sim_extract
):
    lake = tmp_path / "lake"

    with pytest.raises(PipelineError) as err:
        run_pipeline(load_settings(lake=lake, gate=STRICT, pseudonym_key=KEY), extract=sim_extract)
    message = str(err.value)
    assert "model version 1 failed the promotion gate" in message and "PSI" in message
    assert "cobranza promote 1" in message and "nothing was scored" in message
    store = Lake(lake)
    assert all(store.current_version(z) for z in ("raw", "silver", "gold"))
    assert store.current_version("results") is None

    first = run_pipeline(
        load_settings(lake=lake, gate=LENIENT, pseudonym_key=KEY), extract=sim_extract
    )
    assert first.stages["train"].version == "2" and first.stages["train"].gate.passed
    assert first.stages["score"].model_version == "2"

    second = run_pipeline(
        load_settings(lake=lake, gate=STRICT, pseudonym_key=KEY), extract=sim_extract
    )
    assert second.stages["train"].version == "3" and not second.stages["train"].gate.passed
    # the champion still decides; the refused version decides the experiment's challenger arm
    assert second.stages["score"].model_version == "2"
    assert second.stages["score"].challenger_version == "3"

    sections = {heading: rows for heading, _cols, rows in second.sections()}
    assert "model version 3 (LightGBM, calibrated)" in sections
    gate = dict(sections["promotion gate"])
    assert gate["result"] == "FAILED: challenger" and "PSI" in gate["why"]
    scored = second.stages["score"]
    cut = scored.cut_date
    decisions = {r[0]: r[1] for r in sections[f"decisions for cut {cut} (model version 2)"]}
    assert decisions["obligations in early delinquency"] == f"{scored.obligations:,}"
    assert decisions["NO_ASSIGN (managing does not pay)"] == f"{scored.no_assign:,}"
    assert decisions["ASSIGN to collections"] == f"{scored.assign:,}"
    # the latest cut of this small extract has a few dozen rows: the challenger's 10% may be none
    routed = decisions.get("decided by challenger model version 3")
    assert routed == (f"{scored.challenger:,}" if scored.challenger else None)


def test_report_shows_each_figure_of_the_run_it_is_given():
    result = {
        "seconds": {"ingest": 2.0, "etl": 1.5},
        "ingest": {
            "as_of": "2026-10-31",
            "rows_read": 1000,
            "rows_accepted": 990,
            "rows_quarantined": 8,
            "duplicates_collapsed": 2,
            "quality_report": {"html": "/l/raw/q.html", "csv": "/l/raw/q.csv"},
        },
        "etl": {"gold": {"rows": 50, "eligible": 40, "labeled": 45}},
        "impact": {
            "out_of_time": {
                "rows": 20,
                "expected_net_savings": 1000.0,
                "expected_baseline_cost": 4000.0,
                "no_assign": 4,
                "beats_both_extremes": True,
            }
        },
    }
    sections = {heading: rows for heading, _cols, rows in report(result)}
    assert sections["stages"] == [("ingest", "2.0"), ("etl", "1.5"), ("total", "3.5")]
    data = {r[0]: r[1:] for r in sections["data (as of 2026-10-31)"]}
    assert data["quarantined (raw.quarantine)"] == ("8", "0.8%")
    assert data["  eligible (mandate covers the cut)"] == ("40", "80.0%")
    impact = {r[0]: r[1:] for r in sections["business impact against assigning everyone"]}
    assert impact["out of time, 20 decisions: expected net savings"] == (
        "COP 1,000",
        "25.0% of the assign-all cost",
    )
    assert impact["  the oracle's"] == ("-", "no simulator truth")
    assert impact["  cheaper than assigning everyone and no one"] == ("yes", "")
    assert "model version" not in " ".join(sections)  # no training in this run: no model table
    assert sections["files"] == [("data-quality report (quarantine)", "/l/raw/q.html")]


def test_report_values_every_rule_with_the_simulator_truth():
    truth = {
        "rows": 10,
        "expected_net_savings": 500.0,
        "expected_baseline_cost": 2000.0,
        "true_net_savings": 450.0,
        "share_of_oracle_captured": 0.75,
        "oracle_net_savings": 600.0,
        "naive_true_net_savings": 300.0,
        "naive_share_of_oracle_captured": 0.5,
        "no_model_true_net_savings": -900.0,
        "no_model_share_of_oracle_captured": -1.5,
        "beats_both_extremes": False,
    }
    result = {"seconds": {}, "impact": {"out_of_time": truth, "current": {}}}
    sections = {heading: rows for heading, _cols, rows in report(result)}
    impact = {r[0]: r[1:] for r in sections["business impact against assigning everyone"]}
    assert impact["  true net savings (simulator truth)"] == (
        "COP 450",
        "75.0% of the oracle's captured",
    )
    assert impact["  the oracle's (true probabilities)"] == ("COP 600", "")
    assert impact["  the naive rule"] == ("COP 300", "50.0% of the oracle's captured")
    assert impact["  the no-model rule (no mandate managed)"] == (
        "COP -900",
        "-150.0% of the oracle's captured",
    )
    assert impact["  cheaper than assigning everyone and no one"] == ("no", "")


def test_report_shows_todays_net_savings_split_into_the_policys_and_the_control_groups():
    current = {
        "expected_net_savings": -1200.0,
        "expected_savings_without_holdout": 3000.0,
        "expected_holdout_cost": 4200.0,
        "holdout": 7,
    }
    result = {"seconds": {}, "impact": {"out_of_time": {}, "current": current}}
    sections = {heading: rows for heading, _cols, rows in report(result)}
    impact = {r[0]: r[1:] for r in sections["business impact against assigning everyone"]}
    assert impact["expected net savings today"] == ("COP -1,200", "")
    assert impact["  the policy's decisions (control group as the policy decides it)"] == (
        "COP 3,000",
        "",
    )
    assert impact["  less the control group's cost (holdout left unmanaged)"] == (
        "COP 4,200",
        "7 obligations",
    )
