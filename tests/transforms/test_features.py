"""The FEATURES registry, the gold columns and docs/features.md agree exactly."""

from __future__ import annotations

import pyarrow.dataset as ds

from cobranza.lake import Lake
from cobranza.transforms.features import FEATURES, write_features_doc
from cobranza.transforms.gold import HEAD
from cobranza.transforms.schema import GOLD_TABLE, NON_FEATURES

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


def test_features_doc_lists_every_feature(tmp_path):
    path = write_features_doc(tmp_path / "docs" / "features.md")
    text = path.read_text(encoding="utf-8")
    for f in FEATURES:
        assert f"| `{f.name}` |" in text


def test_committed_features_doc_is_current():
    from pathlib import Path

    from cobranza.transforms.features import features_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "features.md"
    assert doc.read_text(encoding="utf-8") == features_markdown()
