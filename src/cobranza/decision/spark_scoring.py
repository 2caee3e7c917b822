"""Distributed scoring: `cobranza score` on Spark (`engine = "spark"`), equal to the DuckDB path.

The executors run the same code as the DuckDB path, `scoring.score_frame`, on Arrow batches of the
cut's gold rows (`mapInArrow`), and write the results' Parquet straight into the results version;
the driver reads the cut dates, loads the champion once, ranks the capacity and publishes. The
champion's fitted objects (self-cure and roll models, with their encoders and calibrators) are
pickled once into a Spark broadcast: no executor calls MLflow.

What is per row and what is global:

- probability, roll estimates, roll loss, expected benefit, the arm (a salted hash of obligation and
  cut, `decision.experiment`), the reason codes and texts: per row. `score_frame` on any batch
  gives a row the values it gets in the whole cut (the online-equals-batch property).
- the decision: per row **without** a capacity (NO_ASSIGN iff eligible and benefit < 0, or
  HOLDOUT). With `costs.daily_capacity` the ranking is global per cut, so it runs on the driver:

  1. every row is scored with the capacity lifted (`policy.capacity = None`);
  2. the driver collects the decision columns only (obligation_id, cut_date, eligible,
     expected_benefit, arm, decision: about 60 bytes a row, 20 MB for a cut of 350k obligations),
     sorted by obligation_id as the DuckDB path reads them, and calls `decide_per_cut` with the
     real capacity: the same function on the same rows in the same order, hence the same ties;
  3. a capacity only turns ASSIGN rows into NO_ASSIGN ones (`capacity_limited`); those rows, and
     only those, are scored again as a cut with no room left (`capacity = 0`): the policy's own
     rule then makes each of them NO_ASSIGN and capacity-limited, with its reasons in that
     direction and CAPACITY_LIMITED first, exactly what the capacity gives them in one pass.
     The other rows keep step 1's output (checked: their decisions equal the global ones).

Publishing is the DuckDB path's (`scoring_runs.record_run`, `scoring_runs.summarize`): one results version,
`results.scores` and `results.latest` with `scoring.to_arrow`'s schema (each batch goes through it),
sorted by obligation_id, in Spark's part files (`part-*.parquet`: readers glob `**/*.parquet`).
`results.latest` is a copy of the files of `results.scores`, so the rows are computed once. The
driver and every executor must see the lake at the same path (`docs/scale-out.md`).
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cobranza.config import Settings
from cobranza.console import waiting
from cobranza.decision.experiment import HOLDOUT, ArmDesign
from cobranza.decision.policy import Policy, champion_policy, decide_per_cut
from cobranza.decision.scoring import (
    OUTPUT_COLUMNS,
    ScoringError,
    announce,
    challenger_for,
    pick_cut,
    score_frame,
    scored_period,
    to_arrow,
)
from cobranza.decision.scoring_runs import ScoreResult, record_run, summarize
from cobranza.lake import Lake
from cobranza.lake.layout import new_run_id
from cobranza.ml.registry import Champion, load_champion
from cobranza.tables import LATEST, SCORES
from cobranza.transforms.schema import CUT_DATE, ELIGIBLE, GOLD_TABLE, OBLIGATION_ID

APP_NAME = "cobranza-score"
# what the driver collects per row: the capacity's inputs and the summary's
DECISION_COLUMNS = [
    OBLIGATION_ID,
    CUT_DATE,
    ELIGIBLE,
    "probability",
    "expected_benefit",
    "decision",
    "capacity_limited",
    "arm",
]


def results_schema() -> pa.Schema:
    """`scoring.to_arrow`'s schema: the columns and types of `results.scores`."""
    return to_arrow(pd.DataFrame({name: [] for name in OUTPUT_COLUMNS})).schema


def scored_batches(
    batches: Iterator[pa.RecordBatch],
    shared: Any,
    policy: Policy,
    scoring_run_id: str,
    language: str,
    design: ArmDesign,
) -> Iterator[pa.RecordBatch]:
    """`score_frame` on each Arrow batch of gold rows (in an executor), as results batches.

    `shared` is the broadcast of the champion and the challenger (or None), unpickled once per
    Python worker.
    """
    champion, challenger = shared.value
    for batch in batches:
        if batch.num_rows == 0:
            continue
        scored = score_frame(
            champion,
            batch.to_pandas(),
            scoring_run_id=scoring_run_id,
            policy=policy,
            language=language,
            design=design,
            challenger=challenger,
        )
        yield from to_arrow(scored).to_batches()


def read_gold_cut(session: Any, lake: Lake, version: str, as_of: date | None) -> tuple[Any, date]:
    """The Spark DataFrame of one cut's gold rows (`as_of`, else the latest) and that cut."""
    from pyspark.sql import functions as sf

    gold = (
        session.read.option("recursiveFileLookup", "true")
        .option("mergeSchema", "true")
        .parquet(str(lake.table_dir("gold", GOLD_TABLE, version)))
    )
    cuts = sorted(row[0] for row in gold.select(CUT_DATE).distinct().collect())
    cut = pick_cut(cuts, as_of)
    return gold.where(sf.col(CUT_DATE) == sf.lit(cut)), cut


def score_rows(
    session: Any,
    rows: Any,
    champion: Champion,
    policy: Policy,
    scoring_run_id: str,
    language: str,
    design: ArmDesign,
    challenger: Champion | None = None,
) -> tuple[Any, pd.DataFrame, list[Any]]:
    """The results DataFrame of gold `rows` (persisted; the caller unpersists the third item's
    frames) and its decision columns on the driver, with the capacity ranked globally (one
    ranking over the champion's and the challenger's arms, as `score_frame` ranks them)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as sf
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(results_schema())
    models = tuple(
        None if m is None else dataclasses.replace(m, naive=None) for m in (champion, challenger)
    )
    shared = session.sparkContext.broadcast(models)
    persisted: list[Any] = []

    def scored_with(frame: Any, room: Policy) -> Any:
        fn = functools.partial(
            scored_batches,
            shared=shared,
            policy=room,
            scoring_run_id=scoring_run_id,
            language=language,
            design=design,
        )
        df = frame.mapInArrow(fn, schema).persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(df)
        return df

    scored = scored_with(rows, dataclasses.replace(policy, capacity=None))
    decided = scored.select(*DECISION_COLUMNS).orderBy(OBLIGATION_ID).toArrow().to_pandas()
    if policy.capacity is None or decided.empty:
        return scored, decided, [*persisted, shared]
    decision, limited = decide_per_cut(
        decided["expected_benefit"].to_numpy(dtype=np.float64),
        decided[ELIGIBLE].to_numpy(dtype=bool),
        decided[CUT_DATE].to_numpy(dtype=object),
        policy,
        holdout=decided["arm"].to_numpy(dtype=object) == HOLDOUT,
    )
    if (decision[~limited] != decided["decision"].to_numpy(dtype=object)[~limited]).any():
        raise ScoringError("the capacity changed decisions other than the capacity-limited ones")
    decided["decision"], decided["capacity_limited"] = decision, limited
    if not limited.any():
        return scored, decided, [*persisted, shared]
    ids = session.createDataFrame(pa.table({OBLIGATION_ID: decided[OBLIGATION_ID][limited]}))
    no_room = scored_with(
        rows.join(sf.broadcast(ids), OBLIGATION_ID, "left_semi"),
        dataclasses.replace(policy, capacity=0),
    )
    if no_room.count() != int(limited.sum()):
        raise ScoringError("the capacity-limited rows were not all scored again")
    kept = scored.join(sf.broadcast(ids), OBLIGATION_ID, "left_anti")
    return kept.unionByName(no_room), decided, [*persisted, shared]


def write_results(results: Any, scores_dir: Path, latest_dir: Path) -> None:
    """`results.scores` written by the executors, sorted by obligation_id; `results.latest` the
    same Parquet files, copied."""
    results.orderBy(OBLIGATION_ID).write.mode("overwrite").parquet(str(scores_dir))
    for part in sorted(scores_dir.glob("*.parquet")):
        shutil.copyfile(part, latest_dir / part.name)


def score(
    settings: Settings, as_of: date | None = None, ui=None, spark_session: Any = None
) -> ScoreResult:
    """Score one cut on Spark and publish results.scores and results.latest as `scoring.score`
    does; `spark_session` reuses a session (tests), else one is started on `spark_master`."""
    from cobranza.transforms.engines import spark_session as start_session

    lake = Lake(settings.lake).ensure()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    gold_version = lake.require_version("gold")  # resolved once, as in `scoring.score`
    with waiting(ui, f"starting Spark ({settings.spark_master})"):
        session = spark_session or start_session(settings, APP_NAME)
    timings["start_spark"] = round(time.perf_counter() - t0, 3)
    held: list[Any] = []
    try:
        t0 = time.perf_counter()
        rows, cut = read_gold_cut(session, lake, gold_version, as_of)
        timings["read_gold"] = round(time.perf_counter() - t0, 3)

        t0 = time.perf_counter()
        with waiting(ui, "loading the champion model"):
            champion = load_champion(settings)
        policy = champion_policy(champion, settings.costs.daily_capacity, settings.costs)
        timings["load_champion"] = round(time.perf_counter() - t0, 3)

        period = scored_period(settings, champion, cut)
        run_id = new_run_id()
        design = ArmDesign.from_settings(settings.experiment)
        challenger, skipped = challenger_for(settings, design, rows.columns)
        if ui is not None:
            ui.info(f"scoring cut {cut} with model {champion.version} on Spark")
            announce(ui, cut, period, champion, design, (challenger, skipped))
        t0 = time.perf_counter()
        results, decided, held = score_rows(
            session, rows, champion, policy, run_id, settings.reason_language, design, challenger
        )
        timings["score"] = round(time.perf_counter() - t0, 3)

        inputs = {"gold_version": gold_version, "model_version": str(champion.version)}
        with lake.publish("results", run_id=run_id, inputs=inputs) as pub:
            with pub.timed("write"):
                write_results(results, pub.table_dir(SCORES), pub.table_dir(LATEST))
            record_run(
                pub,
                len(decided),
                run_id,
                champion,
                policy,
                cut,
                period,
                settings,
                design,
                "spark",
                (challenger, skipped),
            )
            pub.timings.update(timings)
        timings["write"] = pub.timings.get("write", 0.0)
    finally:
        for item in held:  # persisted frames and the champion's broadcast
            item.unpersist()
        if spark_session is None:
            session.stop()
    return summarize(
        decided, run_id, pub.version, cut, period, champion, policy, timings, (challenger, skipped)
    )
