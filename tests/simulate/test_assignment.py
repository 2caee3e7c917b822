"""The bank's historical assignment: a reproducible randomized holdout, the legacy rule,
contamination and policy ids, as `collection_assignments.csv` records them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pytest

from cobranza.simulate import SimulationConfig, simulate
from cobranza.simulate.assignment import holdout_uniform, policy_ids


@pytest.fixture(scope="module")
def policy_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("policy") / "extract"
    cfg = SimulationConfig(
        clients=3000, months=14, seed=12, noise=0.0, legacy_rule=True, holdout_months=6
    )
    return out, simulate(out, cfg)


def test_holdout_hash_is_the_documented_sha256():
    ids = ["O000000001", "O000012345"]
    u = holdout_uniform("salt", ids, "2026-05-31")
    for oid, value in zip(ids, u, strict=True):
        digest = hashlib.sha256(f"salt|{oid}|2026-05-31".encode()).digest()
        assert value == int.from_bytes(digest[:8], "big") / 2**64
    many = holdout_uniform("s", [f"O{k:09d}" for k in range(20_000)], "2026-01-31")
    assert abs((many < 0.1).mean() - 0.1) < 0.01  # uniform


def test_policy_ids_name_the_policy_and_the_half_year():
    cut = np.array(["2026-03-31", "2026-07-31", "2025-12-31"], dtype="datetime64[D]")
    ids = policy_ids(np.array([1, 1, 0]), cut)
    assert list(ids) == ["holdout-2026h1", "holdout-2026h2", "bau-2025"]
    assert list(policy_ids(np.array([2]), cut[:1])) == ["legacy-rule"]


def test_holdout_is_a_random_tenth_of_the_last_six_labeled_cuts(policy_run):
    folder, summary = policy_run
    rows = duckdb.sql(
        f"""
        with a as (select * from read_csv('{folder / "collection_assignments.csv"}')),
             cuts as (select distinct cut_date from a order by cut_date desc limit 6)
        select a.cut_date in (select cut_date from cuts) as window, arm, policy_id, count(*)
        from a group by all order by all
        """
    ).fetchall()
    counts = {(w, arm, pid): n for w, arm, pid, n in rows}
    assert not any(not w and arm == "HOLDOUT" for w, arm, _ in counts)
    window = sum(n for (w, _, _), n in counts.items() if w)
    holdout = sum(n for (w, arm, _), n in counts.items() if arm == "HOLDOUT")
    assert window > 500 and abs(holdout / window - 0.10) < 4 * np.sqrt(0.09 / window)
    assert summary["holdout_share"] == pytest.approx(holdout / window, abs=1e-4)
    assert {pid for _, arm, pid in counts if arm == "HOLDOUT"} <= {
        "holdout-2026h1",
        "holdout-2026h2",
    }
    assert {pid for _, arm, pid in counts if arm == "ASSIGNED"} <= {"bau-2025", "bau-2026"}
    # the holdout is the documented hash of each row, reproducible by anyone with the salt
    hold = duckdb.sql(
        f"""select obligation_id, strftime(cut_date, '%Y-%m-%d'), arm
        from read_csv('{folder / "collection_assignments.csv"}')
        where cut_date >= (select max(cut_date) - interval 5 month
                           from read_csv('{folder / "collection_assignments.csv"}'))"""
    ).fetchall()
    for oid, cut, arm in hold[:400]:
        u = holdout_uniform("cobranza-holdout", [oid], cut)[0]
        assert (arm == "HOLDOUT") == (u < 0.10)


def test_legacy_rule_leaves_early_days_with_a_mandate_to_the_debit(policy_run):
    folder, _ = policy_run
    rows = duckdb.sql(
        f"""
        select a.arm, min(c.days_past_due), max(c.days_past_due), count(*),
               count(*) filter (where not exists (select 1 from read_csv('{folder / "debit_mandates.csv"}') m
                   where m.obligation_id = a.obligation_id and m.start_date <= a.cut_date
                     and (m.end_date is null or m.end_date > a.cut_date)))
        from read_csv('{folder / "collection_assignments.csv"}') a
        join read_csv('{folder / "portfolio_cuts.csv"}') c using (obligation_id, cut_date)
        group by 1
        """
    ).fetchall()
    by_arm = {r[0]: r[1:] for r in rows}
    lo, hi, n, no_mandate = by_arm["RULE"]
    assert n > 30 and lo >= 1 and hi <= 7 and no_mandate == 0
    assert by_arm["ASSIGNED"][1] > 20  # the rest of early delinquency is assigned


def test_contamination_is_the_configured_share_and_follows_the_treatment(tmp_path):
    cfg = SimulationConfig(clients=2500, months=10, seed=4, noise=0.0, holdout_share=0.5)
    simulate(tmp_path, cfg.__class__(**{**cfg.__dict__, "contamination": 0.25}))
    # an action belongs to the latest early-delinquency decision before it: one that follows a
    # later cut of the same obligation is that cut's, not the earlier row's
    outcomes = tmp_path / "_truth" / "outcomes.csv"
    rows = duckdb.sql(
        f"""
        select arm, treated, count(*), count(*) filter (where exists (
                select 1 from read_csv('{tmp_path / "collection_actions.csv"}') x
                where x.obligation_id = o.obligation_id and x.action_ts::date > o.cut_date
                  and x.action_ts::date <= o.cut_date + 30
                  and not exists (
                    select 1 from read_csv('{outcomes}') later
                    where later.obligation_id = o.obligation_id and later.cut_date > o.cut_date
                      and later.cut_date < x.action_ts::date)))
        from read_csv('{outcomes}') o where labeled group by all
        """
    ).fetchall()
    stats = {(arm, treated): (n, acted) for arm, treated, n, acted in rows}
    n_t, acted_t = stats[("HOLDOUT", True)]
    n_u, acted_u = stats[("HOLDOUT", False)]
    assert acted_t == n_t and acted_u == 0  # an action is what treated means
    share = n_t / (n_t + n_u)
    assert abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / (n_t + n_u))
    assert ("ASSIGNED", False) not in stats
