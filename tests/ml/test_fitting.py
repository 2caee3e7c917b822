"""A training whose randomized holdout does not identify the effect of management: the bank keeps
managing everyone (not the holdout), says why on every row, in the run and in the report, and
the gate keeps a champion whose effect is identified. Real trainings on a real MLflow store in a
tmp lake, scored by the batch path."""

from __future__ import annotations

import logging

import duckdb
import mlflow
import numpy as np
import pandas as pd
import pytest

from cobranza.decision.experiment import HOLDOUT, ArmDesign
from cobranza.decision.policy import ASSIGN, NO_ASSIGN, champion_policy
from cobranza.decision.reasons import CONTROL_GROUP, EFFECT_NOT_IDENTIFIED
from cobranza.decision.scoring import score_frame
from cobranza.lake import Lake
from cobranza.ml.registry import load_champion, promote
from cobranza.ml.tracking import download_run_artifact
from cobranza.ml.training import train
from tests.ml.conftest import make_lake, settings_for
from tests.ml.gold import publish_gold

OOT_MONTHS = 3
KEPT_HOLDOUT_ROWS = 2


def without_holdout_before_oot(gold: pd.DataFrame) -> pd.DataFrame:
    """`gold` whose cuts before the out-of-time months hold only KEPT_HOLDOUT_ROWS randomized
    control rows: the others become unmanaged by the legacy rule (arm RULE, not randomized)."""
    out = gold.copy()
    labeled = sorted(out.loc[out["self_cure_debit"].notna(), "cut_date"].unique())
    before = out["cut_date"].isin(labeled[:-OOT_MONTHS]).to_numpy()
    held = np.flatnonzero(before & (out["arm"] == HOLDOUT).to_numpy())
    arm = out["arm"].to_numpy(dtype=object).copy()
    arm[held[KEPT_HOLDOUT_ROWS:]] = "RULE"
    out["arm"] = arm
    return out


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, gold_frame):
    """A champion trained on the full holdout, then a challenger on gold whose training window
    holds two randomized control rows."""
    root = tmp_path_factory.mktemp("ml-effect")
    lake, truth = make_lake(root, gold_frame)
    settings = settings_for(root, truth, oot_months=OOT_MONTHS)
    first = train(settings)
    publish_gold(lake, without_holdout_before_oot(gold_frame), truth)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("cobranza.ml.fitting").addHandler(handler)
    try:
        second = train(settings)
    finally:
        logging.getLogger("cobranza.ml.fitting").removeHandler(handler)
    return {"settings": settings, "first": first, "second": second, "records": records}


def test_the_full_holdout_identifies_the_effect(guarded):
    effect = guarded["first"].effect
    assert effect["identified"] and effect["warning"] is None
    assert effect["log_odds_low"] < effect["log_odds_high"] < 0
    assert guarded["first"].alias == "champion"


def test_two_control_rows_do_not_identify_it_and_training_says_so_everywhere(guarded):
    settings, second = guarded["settings"], guarded["second"]
    effect = second.effect
    assert not effect["identified"]
    assert effect["log_odds_high"] is None or effect["log_odds_high"] >= 0
    assert "does not show that management lowers the roll" in effect["warning"]
    warnings = [r.getMessage() for r in guarded["records"] if r.levelno == logging.WARNING]
    assert any(effect["warning"] in w for w in warnings)
    assert second.policy["no_assign_share"] == 0.0  # every eligible test row assigned

    run = mlflow.MlflowClient(tracking_uri=settings.tracking_uri).get_run(second.run_id)
    assert run.data.tags["effect_identified"] == "false"
    assert run.data.tags["effect_warning"] == effect["warning"]
    assert run.data.params["policy.effect_identified"] == "False"
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    report = download_run_artifact(settings, client, second.run_id, "report/model_report.html")
    with open(report, encoding="utf-8") as fh:
        assert "Effect of management not identified" in fh.read()


def test_the_gate_keeps_the_champion_whose_effect_is_identified(guarded):
    second = guarded["second"]
    assert second.alias == "challenger" and not second.gate.passed
    assert "effect of management is not identified" in second.gate.reason
    comparison = second.gate.comparison
    assert comparison["champion_effect_identified"] is True
    assert comparison["challenger_effect_identified"] is False


def test_its_policy_assigns_every_eligible_obligation_but_the_control_group(guarded):
    """Promoted by hand, the model decides: ASSIGN with EFFECT_NOT_IDENTIFIED first on every
    eligible row but the scoring holdout's, which stay the control group."""
    settings, second = guarded["settings"], guarded["second"]
    promote(settings, second.version, "test", "scoring an unidentified effect")
    champion = load_champion(settings)
    policy = champion_policy(champion)
    assert not policy.effect_identified
    glob = Lake(settings.lake).table_glob("gold", "obligation_snapshots")
    frame = duckdb.connect().execute(f"SELECT * FROM read_parquet('{glob}')").df()
    frame = frame.loc[frame["cut_date"] == frame["cut_date"].max()].reset_index(drop=True)
    scored = score_frame(
        champion, frame, policy=policy, design=ArmDesign(holdout_share=0.2, salt="effect-test")
    )
    eligible = scored["eligible"].astype(bool)
    held = (scored["arm"] == HOLDOUT).to_numpy()
    managed = eligible & ~held
    assert managed.sum() > 50 and held.sum() > 5
    assert (scored.loc[managed, "decision"] == ASSIGN).all()
    assert (scored.loc[managed, "reason_1_code"] == EFFECT_NOT_IDENTIFIED).all()
    assert scored.loc[managed, "reason_1_text"].str.contains("95% interval|too few").all()
    assert (scored.loc[held, "decision"] == NO_ASSIGN).all()
    assert (scored.loc[held, "reason_1_code"] == CONTROL_GROUP).all()
    assert (scored.loc[~eligible, "decision"] == ASSIGN).all()
