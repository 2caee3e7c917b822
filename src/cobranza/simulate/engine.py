"""One chunk of clients, start to end: the story in order, then its tables and its truth.

Clients and their accounts (`population`), obligations and mandates (`portfolio`), the month loop
(`months`, outcomes drawn from `truth.p_true`), then the contract tables (`assemble`). One random
generator per chunk, consumed in that order, so the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cobranza.simulate import assemble
from cobranza.simulate.common import id_array
from cobranza.simulate.config import Calendar, SimulationConfig
from cobranza.simulate.ground_truth import truth_tables
from cobranza.simulate.months import run_months
from cobranza.simulate.population import draw_accounts, draw_clients
from cobranza.simulate.portfolio import draw_obligations, first_mandates
from cobranza.simulate.state import World


@dataclass
class IdCounters:
    """Running identifier counters across chunks (chunks run in order, so ids are deterministic)."""

    client: int = 0
    obligation: int = 0
    mandate: int = 0
    payment: int = 0
    attempt: int = 0
    action: int = 0


@dataclass
class ChunkResult:
    tables: dict[str, pa.Table]
    truth: pa.Table  # ground_truth.OUTCOME_COLUMNS
    potential: pa.Table  # contract.POTENTIAL_OUTCOME_COLUMNS, then the latent details
    stats: dict = field(default_factory=dict)


def build_world(cfg: SimulationConfig, cal: Calendar, chunk: int, n: int, obl_base: int) -> World:
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, chunk]))
    clients = draw_clients(rng, cfg, cal, n)
    accounts = draw_accounts(rng, cfg, cal, clients)
    obligations = draw_obligations(rng, cal, clients, cfg.has("card_minimums"))
    mandates = first_mandates(rng, cal, clients, obligations)
    return World(rng, cfg, cal, clients, accounts, obligations, mandates, obl_base)


def assemble_chunk(w: World, ids: IdCounters) -> ChunkResult:
    """The contract tables and the truth of a simulated chunk; advances the id counters."""
    n, no = w.c.n, w.o.no
    c_ids = ids.client + np.arange(n)
    o_ids = ids.obligation + np.arange(no)
    client_id = id_array("C", c_ids, 8)
    obligation_id = id_array("O", o_ids, 9)
    earliest = np.full(n, np.datetime64("2100-01-01"), "datetime64[D]")
    np.minimum.at(earliest, w.o.ocl, w.o.orig_date)
    customer_since = earliest - w.rng.integers(0, 3 * 365, n).astype("timedelta64[D]")
    tables: dict[str, pa.Table] = {}
    tables["clients"] = assemble.clients_table(w, client_id, customer_since)
    tables["obligations"] = assemble.obligations_table(w, client_id, obligation_id)
    tables["debit_mandates"], mand_rank = assemble.mandates_table(
        w, c_ids, obligation_id, ids.mandate
    )
    tables["installments"] = assemble.installments_table(w, obligation_id)
    mandate_ids = id_array("M", ids.mandate + mand_rank, 9)
    tables["debit_attempts"] = assemble.attempts_table(w, mandate_ids, ids.attempt)
    tables["payments"] = assemble.payments_table(w, obligation_id, ids.payment)
    tables["account_monthly"] = assemble.accounts_table(w, c_ids, customer_since)
    tables["portfolio_cuts"] = assemble.cuts_table(w, obligation_id)
    tables["collection_actions"] = assemble.actions_table(w, obligation_id, ids.action)
    truth = truth_tables(w, obligation_id)
    tables["collection_assignments"] = truth["assignments"]
    ids.client += n
    ids.obligation += no
    ids.mandate += len(mand_rank)
    ids.attempt += tables["debit_attempts"].num_rows
    ids.payment += tables["payments"].num_rows
    ids.action += tables["collection_actions"].num_rows
    return ChunkResult(tables, truth["outcomes"], truth["potential"])


def simulate_chunk(
    cfg: SimulationConfig, cal: Calendar, chunk: int, n: int, ids: IdCounters
) -> ChunkResult:
    """Generate every table of one chunk of `n` clients; advances the id counters in `ids`."""
    w = build_world(cfg, cal, chunk, n, ids.obligation)
    run_months(w)
    return assemble_chunk(w, ids)
