"""The FEATURES registry, the gold columns and docs/features.md agree exactly; the treatment and
the labels are never features; the per-period aggregates of debit attempts follow their rule."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta

import ibis
import pyarrow.dataset as ds

from cobranza.docs import NOT_FEATURES_DOC, features_markdown, write_docs
from cobranza.lake import Lake
from cobranza.transforms.features import FEATURES, attempts_by_period
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


def test_tail_failures_are_the_rejections_after_the_periods_last_debited_attempt():
    """Per (obligation, period): the REJECTED attempts strictly after the last SUCCESS or PARTIAL
    one, or all of them when the period has none; checked against a row-by-row count on random
    attempts with ties on the timestamp."""
    rng = random.Random(11)
    cuts = [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]
    starts = [date(2023, 12, 31), *cuts[:-1]]
    rows = []
    for o in range(40):
        for start in starts:
            for _ in range(rng.randint(0, 5)):
                day = start + timedelta(days=rng.choice([1, 5, 5, 20]))  # ties on purpose
                rows.append(
                    {
                        "obligation_id": f"O{o:02d}",
                        "attempt_ts": datetime(day.year, day.month, day.day, 6),
                        "attempt_date": day,
                        "result": rng.choice(["SUCCESS", "PARTIAL", "REJECTED", "REJECTED"]),
                        "reject_reason": "INSUFFICIENT_FUNDS",
                    }
                )
    calendar = ibis.memtable(
        {"cut_date": cuts, "period": [1, 2, 3], "period_start": starts, "is_cut": [True] * 3}
    )
    con = ibis.duckdb.connect(threads=1)
    got = con.to_pyarrow(attempts_by_period(ibis.memtable(rows), calendar)).to_pylist()
    con.disconnect()

    by_group = defaultdict(list)
    for r in rows:
        period = next(i + 1 for i, cut in enumerate(cuts) if r["attempt_date"] <= cut)
        by_group[(r["obligation_id"], period)].append(r)
    expected = {}
    for key, group in by_group.items():
        debited = [r["attempt_ts"] for r in group if r["result"] != "REJECTED"]
        last = max(debited, default=None)
        expected[key] = sum(
            r["result"] == "REJECTED" and (last is None or r["attempt_ts"] > last) for r in group
        )
    assert {(g["obligation_id"], g["period"]): g["tail_failures"] for g in got} == expected
    # the data reaches every case: no rejection after the last debit, some, all (no debit)
    tails = [(t, len(by_group[k])) for k, t in expected.items()]
    assert any(t == 0 for t, _ in tails) and any(0 < t < n for t, n in tails)
    assert any(t == n for t, n in tails if n > 1)
