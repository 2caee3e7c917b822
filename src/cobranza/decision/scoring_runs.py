"""What a scoring run leaves beside its rows, whichever engine scored it (`decision.scoring` on
DuckDB, `decision.spark_scoring` on Spark): the results version's record (`record_run`) and the
summary the run returns (`ScoreResult`, `summarize`). One place, so both engines publish and
report the same run the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from cobranza.config import Settings
from cobranza.decision.experiment import CHALLENGER, HOLDOUT, ArmDesign
from cobranza.decision.policy import ASSIGN, NO_ASSIGN, Policy
from cobranza.lake import Publication
from cobranza.ml.registry import Champion
from cobranza.summary import Summary
from cobranza.tables import LATEST, SCORES
from cobranza.transforms.schema import ELIGIBLE


@dataclass
class ScoreResult(Summary):
    """A scoring run published as a results version: the cut's decisions, counted."""

    scoring_run_id: str
    results_version: str
    cut_date: str
    scored_period: str | None  # training, out_of_time or after_training (see `scored_period`)
    model_version: str
    capacity: int | None
    obligations: int
    eligible: int
    ineligible_assign: int
    no_assign: int
    assign: int
    no_assign_share_eligible: float
    capacity_limited: int
    holdout: int  # eligible rows set aside as the experiment's control group (NO_ASSIGN)
    challenger_version: str | None  # the registered challenger that decided the CHALLENGER arm
    challenger: int  # eligible rows decided by it (arm CHALLENGER)
    challenger_skipped: str | None  # why a registered challenger decided no row
    mean_probability: float | None
    expected_benefit_of_decisions: float | None  # pesos, eligible rows, against leaving all
    rows_per_second: int
    seconds: float
    timings: dict[str, float]


def record_run(
    pub: Publication,
    rows: int,
    run_id: str,
    champion: Champion,
    policy: Policy,
    cut: date,
    period: str | None,
    settings: Settings,
    design: ArmDesign,
    engine: str = "duckdb",
    routed: tuple[Champion | None, str | None] = (None, None),
) -> None:
    """What a results version records of its scoring run, whichever engine scored it; `routed`:
    the challenger that decided the CHALLENGER arm (or None) and why none did (`challenger_for`)."""
    challenger, skipped = routed
    pub.record(SCORES, rows=rows)
    pub.record(LATEST, rows=rows)
    pub.history_tables.add(SCORES)
    pub.meta["policy"] = policy.to_dict()
    pub.meta["model_version"] = str(champion.version)
    pub.meta["model_run_id"] = str(champion.run_id)
    pub.meta["as_of"] = str(cut)
    pub.meta["scoring_run_id"] = run_id
    pub.meta["reason_language"] = settings.reason_language
    pub.meta["scored_period"] = period
    # the salt stays in the settings: recorded results need not carry it
    pub.meta["experiment"] = {
        "holdout_share": design.holdout_share,
        "challenger_share": design.challenger_share if challenger is not None else 0.0,
        "challenger_version": None if challenger is None else str(challenger.version),
        "challenger_skipped": skipped,
    }
    pub.meta["engine"] = engine


def summarize(
    scored: pd.DataFrame,
    run_id: str,
    results_version: str,
    cut: date,
    period: str | None,
    champion: Champion,
    policy: Policy,
    timings: dict[str, float],
    routed: tuple[Champion | None, str | None] = (None, None),
) -> ScoreResult:
    """The run's summary from its rows' eligible, decision, capacity_limited, arm, probability
    and expected_benefit columns (the other columns are not needed); `routed` as in
    `record_run`."""
    challenger, skipped = routed
    eligible = scored[ELIGIBLE].to_numpy(dtype=bool)
    decision = scored["decision"].to_numpy()
    n_elig = int(eligible.sum())
    seconds = sum(timings.values())
    return ScoreResult(
        scoring_run_id=run_id,
        results_version=results_version,
        cut_date=str(cut),
        scored_period=period,
        model_version=str(champion.version),
        capacity=policy.capacity,
        obligations=len(scored),
        eligible=n_elig,
        ineligible_assign=int((~eligible).sum()),
        no_assign=int((decision == NO_ASSIGN).sum()),
        assign=int((decision == ASSIGN).sum()),
        no_assign_share_eligible=round(
            float((decision[eligible] == NO_ASSIGN).mean()) if n_elig else 0.0, 6
        ),
        capacity_limited=int(scored["capacity_limited"].sum()),
        holdout=int((scored["arm"] == HOLDOUT).sum()),
        challenger_version=None if challenger is None else str(challenger.version),
        challenger=int((scored["arm"] == CHALLENGER).sum()),
        challenger_skipped=skipped,
        mean_probability=round(float(np.nanmean(scored["probability"])), 6) if n_elig else None,
        expected_benefit_of_decisions=round(
            float(
                scored["expected_benefit"]
                .where(scored["decision"].eq(ASSIGN) & scored[ELIGIBLE], 0.0)
                .sum()
            ),
            2,
        )
        if n_elig
        else None,
        rows_per_second=round(len(scored) / max(timings["score"], 1e-9)),
        seconds=round(seconds, 3),
        timings=timings,
    )
