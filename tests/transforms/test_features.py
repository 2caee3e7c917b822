"""The FEATURES registry, the gold columns and docs/features.md agree exactly; the treatment and
the labels are never features."""

from __future__ import annotations

import pyarrow.dataset as ds

from cobranza.docs import NOT_FEATURES_DOC, features_markdown, write_docs
from cobranza.lake import Lake
from cobranza.transforms.features import FEATURES
from cobranza.transforms.gold import HEAD
from cobranza.transforms.schema import GOLD_TABLE, LABELS, NON_FEATURES, TREATMENT

ARROW_OF = {"float64": "double", "int64": "int64", "string": "string"}


def test_registry_matches_gold_columns(duckdb_lake):
    schema = ds.dataset(str(Lake(duckdb_lake).table_dir("gold", GOLD_TABLE))).schema
    assert tuple(schema.names[: len(HEAD)]) == HEAD
    gold_features = [n for n in schema.names if n not in NON_FEATURES]
    assert sorted(gold_features) == sorted(f.name for f in FEATURES)
    for f in FEATURES:
        assert str(schema.field(f.name).type) == ARROW_OF[f.dtype], f.name
    assert str(schema.field("eligible").type) == "bool"
    assert str(schema.field("self_cure_debit").type) == "int64"
    assert str(schema.field("cut_date").type) == "date32[day]"


def test_reason_templates_format(duckdb_lake):
    for f in FEATURES:
        assert f.meaning and f.window and f.group
        text = f.reason.format(value="X" if f.categorical else 3.0)
        assert text and "{" not in text


def test_features_doc_lists_every_feature_and_every_other_column(tmp_path):
    write_docs(tmp_path / "docs")
    text = (tmp_path / "docs" / "features.md").read_text(encoding="utf-8")
    for f in FEATURES:
        assert f"| `{f.name}` |" in text
    assert set(NOT_FEATURES_DOC) == set(NON_FEATURES)
    for name in NON_FEATURES:
        assert f"| `{name}` | {NOT_FEATURES_DOC[name][0]} |" in text


def test_committed_features_doc_is_current():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "features.md"
    assert doc.read_text(encoding="utf-8") == features_markdown()


def test_treatment_and_labels_are_never_features(duckdb_lake):
    """ml.data takes every gold column outside NON_FEATURES as a feature: the treatment and the
    labels, which happen at or after d, must be outside it."""
    from cobranza.ml.data import feature_columns
    from tests.transforms.conftest import read_gold

    gold = read_gold(duckdb_lake)
    features, _ = feature_columns(gold)
    for name in (*TREATMENT, *LABELS):
        assert name in gold.columns and name in NON_FEATURES
        assert name not in features, name
    assert sorted(features) == sorted(f.name for f in FEATURES)
