"""Outcome exactness: the outcomes computed from the files alone (plain `csv`, contract version 2)
are exactly the outcomes the simulator drew, under the arm that actually happened."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cobranza.contract import BANK_LATIN1, STANDARD, TRUTH_DIR
from cobranza.simulate import SimulationConfig, simulate
from tests.simulate.contract_check import outcomes_from_files, read_table

RUNS = {
    "baseline-standard": (dict(seed=31), STANDARD),
    "latin1-legacy-rule": (dict(seed=32, legacy_rule=True, contamination=0.2), BANK_LATIN1),
    "mandate-churn-compressed": (dict(seed=33, scenario="mandate_churn", compress=True), STANDARD),
    "fee-hike": (dict(seed=34, scenario="fee_hike"), STANDARD),
    "bank-migration": (dict(seed=35, scenario="bank_migration"), BANK_LATIN1),
    "strike-no-holidays": (
        dict(seed=36, scenario="collections_strike", without=frozenset({"holidays"})),
        STANDARD,
    ),
}


def _truth(folder: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (folder / TRUTH_DIR / "outcomes.csv").open(encoding="utf-8", newline="") as f:
        return {(r["cut_date"], r["obligation_id"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module", params=sorted(RUNS))
def run(request, tmp_path_factory):
    overrides, dialect = RUNS[request.param]
    out = tmp_path_factory.mktemp("outcomes") / "extract"
    cfg = SimulationConfig(clients=900, months=12, noise=0.0, **overrides)
    simulate(out, cfg, dialect)
    return out, dialect


def test_outcomes_from_the_files_equal_the_drawn_outcomes(run):
    folder, dialect = run
    files = outcomes_from_files(folder, dialect)
    truth = _truth(folder)
    assert set(files) == set(truth)  # the same early-delinquency rows
    labeled = 0
    for key, t in truth.items():
        f = files[key]
        assert f["eligible"] == (t["eligible"] == "true"), key
        assert f["labeled"] == (t["labeled"] == "true"), key
        if t["labeled"] != "true":
            assert t["outcome"] == t["cure_any"] == t["roll_31_plus"] == "", key
            continue
        labeled += 1
        assert int(f["self_cure_debit"]) == int(t["outcome"]), (key, t["mode"])
        assert int(f["cure_any"]) == int(t["cure_any"]), (key, t["mode"])
        assert f["roll_31_plus"] is not None and int(f["roll_31_plus"]) == int(t["roll_31_plus"])
        assert f["amount_recovered"] == pytest.approx(float(t["amount_recovered"]), abs=0.5)
    assert labeled > 150
    modes = {t["mode"] for t in truth.values() if t["labeled"] == "true"}
    assert {"debit_due_cure", "other_channel", "roll", "partial_other"} <= modes


def test_every_mode_of_the_story_is_exercised_and_exact(tmp_path):
    """A larger run shows every outcome mode, each with the target the files give it."""
    out = tmp_path / "extract"
    simulate(out, SimulationConfig(clients=2500, months=12, seed=8, noise=0.0))
    files = outcomes_from_files(out, STANDARD)
    by_mode: dict[str, set[tuple[int, int, int]]] = {}
    for key, t in _truth(out).items():
        if t["labeled"] == "true":
            f = files[key]
            triple = (int(f["self_cure_debit"]), int(f["cure_any"]), int(f["roll_31_plus"]))
            by_mode.setdefault(t["mode"], set()).add(triple)
    assert by_mode == {
        "debit_retry_cure": {(1, 1, 0)},
        "debit_due_cure": {(1, 1, 0)},
        "preempt_transfer": {(0, 1, 0)},
        "other_channel": {(0, 1, 0)},
        "partial_debit": {(0, 0, 1)},
        "partial_other": {(0, 0, 1)},
        "returned_debit": {(0, 0, 1)},
        "roll": {(0, 0, 1)},
    }


def test_assignments_are_the_decided_early_delinquency_rows(run):
    """One assignment per early-delinquency row at every cut but the latest, arm as recorded."""
    folder, dialect = run
    truth = _truth(folder)
    rows = read_table(folder, "collection_assignments", dialect)
    fmt = dialect.date_format

    def iso(value: str) -> str:
        from datetime import datetime

        return datetime.strptime(value, fmt).date().isoformat()

    got = {(iso(r["cut_date"]), r["obligation_id"]): r["arm"] for r in rows}
    decided = {k: t["arm"] for k, t in truth.items() if t["arm"] != ""}
    assert got == decided
    latest = max(k[0] for k in truth)
    assert all(t["arm"] == "" and t["treated"] == "" for k, t in truth.items() if k[0] == latest)
    assert all(k[0] < latest for k in got)
