"""A stage's typed result has one JSON form: its fields in order, nested results as objects, flat
parts merged in, optional keys left out, and any key a layer added kept."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cobranza.runs import EtlResult, typed
from cobranza.summary import EXTRA, FLAT, OMIT_NONE, Summary


@dataclass
class Part(Summary):
    a: int
    b: float | None


@dataclass
class Whole(Summary):
    name: str
    part: Part
    parts: dict[str, Part]
    flat: Part | None = field(default=None, metadata=FLAT)
    note: str | None = field(default=None, metadata=OMIT_NONE)
    kept: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, metadata=EXTRA)


def test_fields_in_order_nested_results_as_objects_and_none_kept_unless_omitted():
    whole = Whole("w", Part(1, None), {"x": Part(2, 0.5)}, extra={"added": [1, 2]})
    assert whole.to_json() == {
        "name": "w",
        "part": {"a": 1, "b": None},
        "parts": {"x": {"a": 2, "b": 0.5}},
        "kept": None,
        "added": [1, 2],
    }
    assert list(whole.to_json()) == ["name", "part", "parts", "kept", "added"]
    json.dumps(whole.to_json())  # plain JSON, nothing left to convert


def test_a_flat_part_writes_its_keys_into_its_parent_and_an_omitted_key_appears_once_set():
    whole = Whole("w", Part(1, 2.0), {}, flat=Part(3, 4.0), note="n")
    assert whole.to_json() == {
        "name": "w",
        "part": {"a": 1, "b": 2.0},
        "parts": {},
        "a": 3,
        "b": 4.0,
        "note": "n",
        "kept": None,
    }


def test_a_layers_dict_becomes_its_typed_result_with_every_key_it_had():
    summary = {
        "engine": "duckdb",
        "raw_version": "r",
        "silver_version": "s",
        "gold_version": "g",
        "as_of": "2026-01-31",
        "latest_cut": "2026-01-31",
        "horizon_days": 30,
        "silver_rows": {"clients": 3},
        "gold": {"rows": 1},
        "seconds": {"gold": 0.1},
        "spark_ui": "http://localhost:4040",  # a key the ETL may add one day
    }
    result = typed(EtlResult, summary)
    assert result.gold_version == "g" and result.extra == {"spark_ui": "http://localhost:4040"}
    assert result.to_json() == summary
