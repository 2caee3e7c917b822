"""Commands that are not stages print typed results as tables: `cobranza models`."""

from __future__ import annotations

from cobranza.views import ModelList


def test_models_are_one_row_per_version_with_notes_apart():
    models = [
        {
            "version": "1",
            "aliases": [],
            "created_at": "2025-06-30T10:11:12.000+00:00",
            "training_status": "succeeded",
            "gate_passed": False,
            "gate_reason": "OOT AUC 0.70 below the champion's",
            "oot_auc": 0.7012,
            "oracle_oot_auc": 0.8,
            "oot_ece": 0.02,
            "psi": 0.01,
            "gold_version": "g1",
        },
        {
            "version": "2",
            "aliases": ["champion"],
            "created_at": "2025-07-31T10:11:12.000+00:00",
            "training_status": "succeeded",
            "gate_passed": True,
            "oot_auc": 0.87,
            "oracle_oot_auc": None,
            "oot_ece": 0.016,
            "psi": 0.02,
            "gold_version": "g2",
            "promoted_by": "ana",
            "promoted_reason": "better",
        },
    ]
    result = ModelList(models)
    (heading, columns, rows), (notes_heading, _, notes) = result.sections()
    assert heading == "registered versions" and columns[0] == "version"
    assert rows[0][:6] == ("1", "", "2025-06-30 10:11", "succeeded", "failed", "0.701")
    assert rows[1][:7] == ("2", "champion", "2025-07-31 10:11", "succeeded", "passed", "0.870", "")
    assert notes_heading == "notes"
    assert ("1", "gate reason", "OOT AUC 0.70 below the champion's") in notes
    assert ("2", "promoted reason by ana", "better") in notes
    assert result.to_json() == {"models": models}  # --json keeps every field


def test_no_model_yet_says_how_to_get_one():
    [(heading, _, rows)] = ModelList([]).sections()
    assert "cobranza train" in heading and rows == []
