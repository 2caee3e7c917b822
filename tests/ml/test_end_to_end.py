"""simulate -> ingest -> etl -> train on the shared small simulated extract (real components).

The oracle figures come from the extract's `_truth/p_true.csv`, found through the raw zone's
`extract_dir` (no truth_path set). The extract is small (1,500 clients x 15 months), so the test
checks the wiring and sanity bounds; the AUC-vs-oracle figures at 20k clients are in the report.
"""

from __future__ import annotations

import pytest

from cobranza.config import load_settings
from cobranza.contract import STANDARD
from cobranza.lake import Lake


@pytest.mark.slow
def test_train_on_simulated_gold(tmp_path, sim_extract):
    from cobranza.ingest import ingest_extract
    from cobranza.ml.registry import list_models, load_champion
    from cobranza.ml.training import train
    from cobranza.transforms import run_etl

    settings = load_settings(lake=tmp_path / "lake")
    ingest_extract(settings, sim_extract, STANDARD)
    run_etl(settings)
    summary = train(settings)

    gold = Lake(settings.lake).run_info("gold")
    assert summary.gold_version == gold["version"]
    oot = summary.auc_vs_oracle["oot"]
    assert oot["oracle_auc"] is not None, "the oracle must be found through raw's extract_dir"
    assert 0.6 < oot["model_auc"] < 1
    assert oot["model_auc"] <= oot["oracle_auc"] + 0.05
    assert summary.auc_vs_oracle["test"]["model_auc"] > 0.6
    rows = list_models(settings)
    assert [r["version"] for r in rows] == [summary.version]
    assert rows[0]["gate_passed"] is summary.gate.passed
    if summary.gate.passed:
        champion = load_champion(settings)
        assert champion.version == summary.version
        assert "p_true" not in champion.features
