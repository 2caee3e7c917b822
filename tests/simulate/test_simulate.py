"""The simulator: contract conformance in both dialects, determinism, rates, internal consistency."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

import cobranza.simulate as sim
from cobranza.contract import (
    BANK_LATIN1,
    MANIFEST,
    STANDARD,
    TRUTH_DIR,
    TRUTH_FILE,
)
from cobranza.errors import CobranzaError
from cobranza.simulate import SimulationConfig, extract_files, oracle_auc, simulate
from cobranza.simulate.writer import sha256
from tests.conftest import sim_config
from tests.simulate.contract_check import find_defects, read_rows

HORIZON = 30
FILES = extract_files()  # the version-2 extract: ten files, payments with reversed_ts


def _recorded(folder: Path) -> dict[str, dict[int, set[str]]]:
    noise = json.loads((folder / TRUTH_DIR / "noise.json").read_text(encoding="utf-8"))
    out: dict[str, dict[int, set[str]]] = {}
    for name, items in noise["files"].items():
        lines: dict[int, set[str]] = {}
        for item in items:
            lines.setdefault(item["line"], set()).add(item["kind"])
        out[name] = lines
    return out


@pytest.fixture(scope="module")
def band_run(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("band") / "extract"
    summary = simulate(out, SimulationConfig(clients=3000, months=18, seed=11, noise=0.0))
    return out, summary


@pytest.fixture(scope="module")
def con(sim_extract_clean: Path):
    db = duckdb.connect()
    for spec in FILES:
        types = ", types={'reversed_ts': 'TIMESTAMP'}" if spec.stem == "payments" else ""
        db.execute(
            f"create view {spec.stem} as select * from read_csv('{sim_extract_clean / spec.filename}', header=true{types})"
        )
    db.execute(
        f"create view outcomes as select * from read_csv('{sim_extract_clean / TRUTH_DIR / 'outcomes.csv'}')"
    )
    return db


def test_clean_extract_conforms_to_contract(sim_extract_clean: Path):
    defects = find_defects(sim_extract_clean, STANDARD)
    assert {name: lines for name, lines in defects.items() if lines} == {}
    manifest = json.loads((sim_extract_clean / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["as_of"] == "2026-10-31"
    assert set(manifest["files"]) == {spec.filename for spec in FILES}
    for spec in FILES:
        entry = manifest["files"][spec.filename]
        _, rows = read_rows(sim_extract_clean / spec.filename, STANDARD)
        assert entry["rows"] == len(rows) > 0
        assert entry["sha256"] == sha256(sim_extract_clean / spec.filename)


@pytest.mark.parametrize("dialect", [STANDARD, BANK_LATIN1], ids=lambda d: d.name)
def test_noisy_extract_has_exactly_the_recorded_defects(
    dialect, sim_extract: Path, sim_extract_latin1: Path
):
    folder = sim_extract if dialect is STANDARD else sim_extract_latin1
    found = find_defects(folder, dialect)
    recorded = _recorded(folder)
    assert sum(len(v) for v in recorded.values()) > 0
    for spec in FILES:
        assert found[spec.filename] == recorded.get(spec.filename, {}), spec.filename


def test_latin1_spells_the_same_data(sim_extract: Path, sim_extract_latin1: Path):
    raw = (sim_extract_latin1 / "clients.csv").read_bytes()
    assert raw.startswith(b"client_id;document_type;")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # accents are single Latin-1 bytes, not UTF-8
    names = {r[3] for r in read_rows(sim_extract_latin1 / "clients.csv", BANK_LATIN1)[1]}
    assert any(ch in "".join(names) for ch in "áéíóúñÁÉÍÓÚÑ")
    for spec in FILES:
        _, std_rows = read_rows(sim_extract / spec.filename, STANDARD)
        _, lat_rows = read_rows(sim_extract_latin1 / spec.filename, BANK_LATIN1)
        assert len(std_rows) == len(lat_rows)
        for col_idx, col in enumerate(spec.columns):
            for std_row, lat_row in zip(std_rows[:300], lat_rows[:300], strict=True):
                a, b = std_row[col_idx], lat_row[col_idx]
                if col.type == "decimal":
                    b = b.replace(",", ".")
                elif col.type == "date" and len(b) == 10 and b[2] == "/":
                    b = f"{b[6:10]}-{b[3:5]}-{b[0:2]}"
                elif col.type == "timestamp" and len(b) == 19 and b[2] == "/":
                    b = f"{b[6:10]}-{b[3:5]}-{b[0:2]}{b[10:]}"
                assert a == b, (spec.filename, col.name, a, b)


def test_same_arguments_give_identical_bytes(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(sim, "CHUNK_CLIENTS", 150)  # several chunks in a small run
    cfg = SimulationConfig(clients=400, months=6, seed=3, noise=0.02)
    a = simulate(tmp_path / "a", cfg)
    b = simulate(tmp_path / "b", cfg)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == len(FILES) + 1 + 4 == 15  # ten files, manifest, four truth files
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert a["rows"] == b["rows"]
    other = simulate(tmp_path / "c", SimulationConfig(clients=400, months=6, seed=4, noise=0.02))
    assert (tmp_path / "c" / "payments.csv").read_bytes() != (
        tmp_path / "a" / "payments.csv"
    ).read_bytes()
    assert other["clients"] == 400 and other["rows"]["clients.csv"] >= 400
    # Across chunk boundaries ids stay unique and recorded defect lines stay exact.
    found = find_defects(tmp_path / "a", STANDARD)
    recorded = _recorded(tmp_path / "a")
    for spec in FILES:
        assert found[spec.filename] == recorded.get(spec.filename, {}), spec.filename


def test_noise_rate_is_about_the_requested_rate(tmp_path: Path):
    rate = 0.03
    simulate(tmp_path, SimulationConfig(clients=400, months=8, seed=5, noise=rate))
    recorded = _recorded(tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    kinds = set()
    for spec in FILES:
        rows = manifest["files"][spec.filename]["rows"]
        lines = recorded.get(spec.filename, {})
        inserted = (
            sum(1 for k in lines.values() if k != {"conflicting_duplicate"})
            + sum(1 for k in lines.values() if k == {"conflicting_duplicate"}) / 2
        )
        clean_rows = rows - inserted
        expected = rate * clean_rows
        assert abs(inserted - expected) <= 4 * np.sqrt(expected) + 2, spec.filename
        kinds |= {k for ks in lines.values() for k in ks}
    assert kinds >= {
        "duplicate",
        "conflicting_duplicate",
        "broken_reference",
        "negative_amount",
        "unknown_enum",
        "non_numeric",
        "bad_date",
        "missing_required",
    }


def test_self_cure_rate_and_oracle_auc_in_documented_bands(band_run):
    folder, summary = band_run
    assert 0.30 <= summary["self_cure_rate"] <= 0.50
    assert 0.80 <= summary["oracle_auc"] <= 0.92
    truth = duckdb.sql(
        f"select p_true, outcome from read_csv('{folder / TRUTH_DIR / 'outcomes.csv'}') "
        "where eligible and labeled"
    ).fetchnumpy()
    assert len(truth["outcome"]) == summary["labeled_eligible"] > 500
    auc = oracle_auc(truth["p_true"], truth["outcome"].astype(bool))
    assert auc == pytest.approx(summary["oracle_auc"], abs=1e-3)
    # Not a perfect oracle: outcomes are drawn, so even p_true misranks some pairs.
    assert auc < 0.95


def test_truth_file_is_exactly_the_contract_columns(sim_extract_clean: Path):
    lines = (sim_extract_clean / TRUTH_DIR / TRUTH_FILE).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "cut_date,obligation_id,p_true"
    p = np.array([float(line.split(",")[2]) for line in lines[1:]])
    assert len(p) > 50 and ((p > 0) & (p < 1)).all()


def test_debit_payments_match_successful_attempts(con):
    unmatched = con.execute(
        """
        select count(*) from payments p
        where p.channel = 'RECURRING_DEBIT' and not exists (
            select 1 from debit_attempts a join debit_mandates m using (mandate_id)
            where m.obligation_id = p.obligation_id and a.attempt_ts = p.payment_ts
              and a.amount_debited = p.amount and a.result in ('SUCCESS', 'PARTIAL'))
        """
    ).fetchone()[0]
    orphan = con.execute(
        """
        select count(*) from debit_attempts a join debit_mandates m using (mandate_id)
        where a.amount_debited > 0 and not exists (
            select 1 from payments p where p.channel = 'RECURRING_DEBIT'
              and p.obligation_id = m.obligation_id and p.payment_ts = a.attempt_ts
              and p.amount = a.amount_debited)
        """
    ).fetchone()[0]
    n_debits = con.execute(
        "select count(*) from payments where channel = 'RECURRING_DEBIT'"
    ).fetchone()[0]
    assert n_debits > 1000 and unmatched == 0 and orphan == 0
    bad = con.execute(
        """
        select count(*) from debit_attempts where
           (result = 'SUCCESS' and (amount_debited <> amount_requested or reject_reason is not null))
        or (result = 'PARTIAL' and not (amount_debited > 0 and amount_debited < amount_requested))
        or (result = 'REJECTED' and (amount_debited <> 0 or reject_reason is null))
        """
    ).fetchone()[0]
    assert bad == 0


def test_attempts_only_while_the_mandate_runs(con):
    """Before its start no attempt; from the day it stops, only MANDATE_INACTIVE rejections, and
    only on a SUSPENDED mandate (a cancelled mandate is not attempted at all)."""
    outside = con.execute(
        """
        select count(*) from debit_attempts a join debit_mandates m using (mandate_id)
        where a.attempt_ts::date <= m.start_date
           or (m.end_date is not null and a.attempt_ts::date >= m.end_date
               and not (m.status = 'SUSPENDED' and a.result = 'REJECTED'
                        and a.reject_reason = 'MANDATE_INACTIVE'))
        """
    ).fetchone()[0]
    assert outside == 0
    inactive = con.execute(
        """
        select count(*), count(*) filter (where m.status <> 'SUSPENDED'
                  or (m.end_date is not null and a.attempt_ts::date < m.end_date))
        from debit_attempts a join debit_mandates m using (mandate_id)
        where a.reject_reason = 'MANDATE_INACTIVE'
        """
    ).fetchone()
    assert inactive[1] == 0


def test_days_past_due_follow_fifo_allocation(con):
    mismatches = con.execute(
        """
        with due as (
            select c.cut_date, c.obligation_id, i.due_date, i.amount_due,
                   sum(i.amount_due) over (partition by c.cut_date, c.obligation_id
                       order by i.installment_no) as cum_due
            from portfolio_cuts c join installments i
              on i.obligation_id = c.obligation_id and i.due_date <= c.cut_date),
        paid as (
            select c.cut_date, c.obligation_id, coalesce(sum(p.amount), 0) as paid
            from portfolio_cuts c left join payments p
              on p.obligation_id = c.obligation_id and p.payment_ts::date <= c.cut_date
              and (p.reversed_ts is null or p.reversed_ts::date > c.cut_date)
            group by all),
        fifo as (
            select d.cut_date, d.obligation_id,
                   greatest(max(d.cum_due) - any_value(p.paid), 0) as apd,
                   coalesce(datediff('day', min(d.due_date) filter (where d.cum_due > p.paid),
                                     d.cut_date), 0) as dpd
            from due d join paid p using (cut_date, obligation_id) group by d.cut_date, d.obligation_id)
        select count(*), count(*) filter (where c.days_past_due <> coalesce(f.dpd, 0)
                 or abs(c.amount_past_due - coalesce(f.apd, 0)) > 0.01)
        from portfolio_cuts c left join fifo f using (cut_date, obligation_id)
        """
    ).fetchone()
    assert mismatches[0] > 5000 and mismatches[1] == 0
    spread = con.execute(
        "select count(distinct days_past_due) filter (where days_past_due between 1 and 30), "
        "avg((days_past_due between 1 and 30)::int) from portfolio_cuts"
    ).fetchone()
    assert spread[0] >= 20 and 0.01 < spread[1] < 0.15


def test_target_recomputed_from_files_equals_drawn_outcome(con):
    as_of = con.execute("select max(cut_date) from portfolio_cuts").fetchone()[0]
    rows = con.execute(
        f"""
        with early as (
            select * from portfolio_cuts where days_past_due between 1 and 30),
        horizon as (
            select e.cut_date, e.obligation_id, any_value(e.amount_past_due) as apd,
                   coalesce(sum(p.amount), 0) as paid,
                   count(p.payment_id) filter (where p.channel <> 'RECURRING_DEBIT') as other
            from early e left join payments p on p.obligation_id = e.obligation_id
              and p.payment_ts::date > e.cut_date
              and p.payment_ts::date <= e.cut_date + interval {HORIZON} day
              and (p.reversed_ts is null
                   or p.reversed_ts::date > e.cut_date + interval {HORIZON} day)
            group by all),
        elig as (
            select e.cut_date, e.obligation_id, count(m.mandate_id) > 0 as eligible
            from early e left join debit_mandates m on m.obligation_id = e.obligation_id
              and m.start_date <= e.cut_date and (m.end_date is null or m.end_date > e.cut_date)
              and (e.cut_date < DATE '{as_of}' or m.status = 'ACTIVE')
            group by all)
        select h.cut_date, h.obligation_id, e.eligible,
               (h.cut_date + interval {HORIZON} day <= DATE '{as_of}') as labeled,
               (h.paid >= h.apd and h.other = 0)::int as target,
               o.eligible as t_eligible, o.labeled as t_labeled, o.outcome
        from horizon h join elig e using (cut_date, obligation_id)
        full join outcomes o using (cut_date, obligation_id)
        """
    ).fetchall()
    assert len(rows) > 300
    assert all(r[0] is not None and r[5] is not None for r in rows)  # same row set
    assert all(r[2] == r[5] and r[3] == r[6] for r in rows)
    labeled = [r for r in rows if r[3]]
    assert sum(r[4] for r in labeled) > 50
    assert [r[4] for r in labeled] == [r[7] for r in labeled]
    assert all(r[4] == 0 for r in labeled if not r[2])  # no covering mandate, no self-cure


def test_collection_actions_follow_the_assignment(con):
    """Every ASSIGNED row is managed within its horizon; a HOLDOUT or RULE row only by an
    operational error (contamination, a few percent)."""
    rows = con.execute(
        """
        select s.arm, count(*), count(*) filter (where exists (
                select 1 from collection_actions a where a.obligation_id = s.obligation_id
                  and a.action_ts::date > s.cut_date and a.action_ts::date <= s.cut_date + 30))
        from collection_assignments s group by 1
        """
    ).fetchall()
    managed = {arm: (n, k) for arm, n, k in rows}
    assert managed["ASSIGNED"][0] > 300 and managed["ASSIGNED"][1] == managed["ASSIGNED"][0]
    n, k = managed["HOLDOUT"]
    assert n > 20 and k <= 0.2 * n


def test_drift_lowers_balances_and_debit_success_in_the_last_months(tmp_path: Path):
    def rates(folder: Path) -> tuple[float, float, float, float]:
        q = duckdb.sql(
            f"""
            with a as (select attempt_ts, result from read_csv('{folder / "debit_attempts.csv"}')),
                 b as (select month, avg_balance from read_csv('{folder / "account_monthly.csv"}')),
                 lim as (select max(month) - interval 3 month as start from b)
            select avg((result = 'REJECTED')::int) filter (where attempt_ts >= (select start from lim)),
                   avg((result = 'REJECTED')::int) filter (where attempt_ts < (select start from lim)),
                   median(avg_balance) filter (where month >= (select start from lim)),
                   median(avg_balance) filter (where month < (select start from lim))
            from a full join b on false
            """
        ).fetchone()
        return q

    # the bank's holdout only in the last 6 cuts, as the drift figures below were measured
    cfg = dict(clients=1200, months=10, seed=9, noise=0.0, holdout_months=6)
    simulate(tmp_path / "drift", SimulationConfig(drift=True, **cfg))
    simulate(tmp_path / "flat", SimulationConfig(drift=False, **cfg))
    d_late, d_early, d_bal_late, d_bal_early = rates(tmp_path / "drift")
    f_late, f_early, _, _ = rates(tmp_path / "flat")
    assert d_late > d_early + 0.04
    assert d_bal_late < 0.85 * d_bal_early
    assert abs(f_late - f_early) < 0.04


def test_identifiers_carry_no_personal_data(sim_extract_clean: Path):
    _, rows = read_rows(sim_extract_clean / "clients.csv", STANDARD)
    assert all(r[0].startswith("C") and r[0][1:].isdigit() for r in rows)
    docs = {r[2] for r in rows}
    assert not docs & {r[0][1:] for r in rows}


def test_bad_config_is_an_actionable_error(tmp_path: Path):
    from datetime import date

    with pytest.raises(CobranzaError, match="month-end"):
        simulate(tmp_path, SimulationConfig(clients=10, months=6, end=date(2026, 10, 15)))
    with pytest.raises(CobranzaError, match="months"):
        simulate(tmp_path, SimulationConfig(clients=10, months=2))


def test_fixture_config_matches_conftest():
    cfg = sim_config()
    assert cfg.noise > 0 and sim_config(noise=0.0).noise == 0


def test_account_balances_follow_the_monthly_identity(con):
    broken = con.execute(
        """
        with a as (
            select *, lag(end_balance) over (partition by account_id order by month) as prev_end
            from account_monthly)
        select count(*) filter (where prev_end is not null), count(*) filter (
            where (prev_end is not null
                   and abs(prev_end + inflow_total - outflow_total - end_balance) > 0.05)
               or payroll_inflow > inflow_total + 0.005 or min_balance > avg_balance
               or min_balance > end_balance + 0.005)
        from a
        """
    ).fetchone()
    assert broken[0] > 1000 and broken[1] == 0


def test_the_story_shows_in_the_files(con):
    bonus = con.execute(
        """
        select avg(payroll_inflow) filter (where month(month) in (6, 12))
               / avg(payroll_inflow) filter (where month(month) not in (6, 12))
        from account_monthly a join clients c on a.account_id = 'A0' || substr(c.client_id, 2)
        where c.employment_type = 'SALARIED'
        """
    ).fetchone()[0]
    assert bonus > 1.3  # mid-year and December primas
    reject = dict(
        con.execute(
            """
            select m.account_bank, avg((a.reject_reason = 'TECHNICAL')::int)
            from debit_attempts a join debit_mandates m using (mandate_id) group by 1
            """
        ).fetchall()
    )
    assert reject["OTHER"] > 2 * reject["OWN"]  # ACH fails more
    timing = dict(
        con.execute(
            """
            select o.due_day between 15 and 21, avg((a.result = 'SUCCESS')::int)
            from debit_attempts a join debit_mandates m using (mandate_id)
            join obligations o using (obligation_id) join clients c using (client_id)
            where c.employment_type = 'SALARIED' and o.due_day between 8 and 21
              and day(a.attempt_ts) = o.due_day
            group by 1
            """
        ).fetchall()
    )
    assert timing[True] > timing[False]  # due right after the 15th payday succeeds more
    by_bank = dict(
        con.execute(
            """
            select m.account_bank, avg(t.p_true) from outcomes t
            join debit_mandates m on m.obligation_id = t.obligation_id
              and m.start_date <= t.cut_date and (m.end_date is null or m.end_date > t.cut_date)
            where t.eligible group by 1
            """
        ).fetchall()
    )
    assert by_bank["OWN"] > by_bank["OTHER"]


def test_refuses_a_folder_it_did_not_write_and_reuses_its_own(tmp_path: Path):
    """Audit D2: a run overwrites the contract files and removes `_truth/`; only a new folder, an
    empty one or an earlier output of the simulator may take that."""
    cfg = SimulationConfig(clients=60, months=4, seed=2, noise=0.0)
    victim = tmp_path / "bank-extract"
    (victim / TRUTH_DIR).mkdir(parents=True)
    (victim / "clients.csv").write_text("REAL BANK DATA\n", encoding="utf-8")
    (victim / TRUTH_DIR / "keep.txt").write_text("keep\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in victim.rglob("*") if p.is_file()}
    with pytest.raises(CobranzaError, match="did not write"):
        simulate(victim, cfg)
    with pytest.raises(CobranzaError, match="did not write"):  # `..` changes nothing
        simulate(tmp_path / "x" / ".." / "bank-extract", cfg)
    assert {p: p.read_bytes() for p in victim.rglob("*") if p.is_file()} == before

    only_csv = tmp_path / "only-csv"  # the contract's files but no `_truth/`: a real extract
    only_csv.mkdir()
    (only_csv / "clients.csv").write_text("REAL\n", encoding="utf-8")
    with pytest.raises(CobranzaError, match="did not write"):
        simulate(only_csv, cfg)

    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    with pytest.raises(CobranzaError, match="not a folder"):
        simulate(a_file, cfg)

    empty = tmp_path / "empty"
    empty.mkdir()
    simulate(empty, cfg)
    assert sim.is_simulator_output(empty)
    simulate(empty, cfg)  # its own earlier output: overwritten
    # a symlink inside its own output would make the next run write through it
    (empty / "payments.csv").unlink()
    (empty / "payments.csv").symlink_to(victim / "clients.csv")
    assert not sim.is_simulator_output(empty)
    with pytest.raises(CobranzaError, match="did not write"):
        simulate(empty, cfg)
    assert (victim / "clients.csv").read_text(encoding="utf-8") == "REAL BANK DATA\n"
