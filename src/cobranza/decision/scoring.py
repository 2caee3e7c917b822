"""Batch scoring: the champion's estimates, the policy's decision and three reason codes per row.

`score_frame` is the single scoring path, shared by `cobranza score` (a whole cut of
`gold.obligation_snapshots`) and the API's online predict: same model, same policy, same reasons.
`score` reads the cut, calls it and publishes `results.scores` (append-only history, one scoring
run id per run) and `results.latest` (this run's rows) through `lake.publish`, so a failed run
publishes nothing. Outputs carry `client_key` only: no personal data exists downstream of raw.

Per eligible row: `probability` (self-cure through the debit without management, the seed's
probability), `p_roll_no_action` and `p_roll_action` (the champion's roll model), `roll_loss` and
`expected_benefit` (`decision.loss`), and the decision (`decision.policy`). The costs and the
capacity are today's settings (`costs`): the models estimate probabilities, the costs are the
bank's operational knobs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cobranza.config import Settings
from cobranza.console import waiting
from cobranza.decision.attribution import DEFAULT_METHOD, probability_and_contributions
from cobranza.decision.estimates import Estimates, estimate
from cobranza.decision.experiment import CHALLENGER, CHAMPION, HOLDOUT, ArmDesign, assign_arms
from cobranza.decision.policy import (
    ASSIGN,
    NO_ASSIGN,
    Policy,
    champion_policy,
    decide_per_cut,
)
from cobranza.decision.reasons import (
    CONTROL_GROUP,
    CONTROL_GROUP_TEXTS,
    N_REASONS,
    NO_ACTIVE_MANDATE,
    NO_ACTIVE_MANDATE_TEXTS,
    decision_reason,
    feature_templates,
    reason_columns,
    top_reasons,
)
from cobranza.decision.scoring_runs import ScoreResult, record_run, summarize
from cobranza.errors import CobranzaError
from cobranza.lake import Lake
from cobranza.lake.layout import new_run_id
from cobranza.ml.model import model_input
from cobranza.ml.registry import (
    Champion,
    RegistryError,
    champion_oot_months,
    load_challenger,
    load_champion,
)
from cobranza.tables import LATEST, SCORES
from cobranza.transforms.schema import (
    CLIENT_KEY,
    CUT_DATE,
    DESCRIPTIVE,
    ELIGIBLE,
    GOLD_TABLE,
    OBLIGATION_ID,
)

CHUNK_ROWS = 100_000
ESTIMATE_COLUMNS = ("p_roll_no_action", "p_roll_action", "roll_loss", "expected_benefit")
REASON_COLUMNS = [
    f"reason_{i}_{part}"
    for i in range(1, N_REASONS + 1)
    for part in ("code", "text", "contribution")
]
OUTPUT_COLUMNS = [
    OBLIGATION_ID,
    CUT_DATE,
    CLIENT_KEY,
    *DESCRIPTIVE,
    ELIGIBLE,
    "probability",
    "decision",
    "capacity_limited",
    *ESTIMATE_COLUMNS,
    "model_version",
    "scoring_run_id",
    *REASON_COLUMNS,
    "arm",  # decision.experiment: CHAMPION, CHALLENGER or HOLDOUT (control group: do not contact)
]


class ScoringError(CobranzaError):
    """Scoring cannot run (no champion, no rows for the cut, missing feature columns...)."""


def score_frame(
    champion: Any,
    frame: pd.DataFrame,
    *,
    scoring_run_id: str | None = None,
    policy: Policy | None = None,
    as_of: date | None = None,
    templates: dict[str, str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    method: str = DEFAULT_METHOD,
    language: str = "en",
    design: ArmDesign | None = None,
    challenger: Any = None,
) -> pd.DataFrame:
    """Probability, decision and reasons for each row of `frame` (gold columns), in input order.

    `frame` needs obligation_id, eligible and the champion's feature columns; cut_date defaults to
    `as_of` (else today), descriptive columns to null. Capacity applies per cut_date. `method`
    picks the contributions behind the reason codes (see `decision.attribution`), `language` the
    words of their texts (`decision.reasons.LANGUAGES`). `design` draws each row's arm
    (`decision.experiment`): HOLDOUT rows are NO_ASSIGN, out of the capacity, with the control
    group as their only reason; without it every row is CHAMPION. `challenger` (a registered
    challenger, `ml.registry.load_challenger`) decides the CHALLENGER rows `design` draws: its
    own probability, estimates and reasons, the same policy; `model_version` names the version
    that decided each row. The capacity ranks both arms' rows together by expected benefit.
    """
    policy = policy or champion_policy(champion)
    templates = feature_templates(language) if templates is None else templates
    n = len(frame)
    frame = frame.reset_index(drop=True)
    for column in (OBLIGATION_ID, ELIGIBLE):
        if column not in frame.columns:
            raise ScoringError(f"the rows to score lack the column {column}")
    eligible = frame[ELIGIBLE].fillna(False).to_numpy(dtype=bool)
    cut = (
        pd.to_datetime(frame[CUT_DATE]).dt.date
        if CUT_DATE in frame.columns
        else pd.Series([as_of or date.today()] * n, dtype=object)
    )
    ids = frame[OBLIGATION_ID].astype(str).to_numpy(dtype=object)
    arm = (
        assign_arms(ids, cut.to_numpy(dtype=object), eligible, design, challenger is not None)
        if design is not None
        else np.full(n, CHAMPION, dtype=object)
    )
    routed = arm == CHALLENGER
    holdout = arm == HOLDOUT
    own = _ModelPart.of(champion, frame, eligible & ~routed, policy, method, chunk_rows)
    probability, est = own.probability, own.est
    other = None
    if routed.any():
        other = _ModelPart.of(
            challenger, frame, routed, policy, method, chunk_rows, role="challenger"
        )
        probability, est = other.merged(routed, probability, est)
    decision, limited = decide_per_cut(est.expected_benefit, eligible, cut, policy, holdout=holdout)

    reasons = own.reasons(decision, templates, language)
    if other is not None:
        theirs = other.reasons(decision, templates, language)
        reasons = {k: np.where(routed, theirs[k], v) for k, v in reasons.items()}
    _rule_reasons(reasons, probability, est, eligible, decision, limited, policy, language)
    _control_group_reason(reasons, holdout, language)
    columns = {
        OBLIGATION_ID: ids,
        CUT_DATE: cut.to_numpy(dtype=object),
        CLIENT_KEY: frame[CLIENT_KEY].to_numpy(dtype=object)
        if CLIENT_KEY in frame.columns
        else np.full(n, None, dtype=object),
    }
    for name in DESCRIPTIVE:
        columns[name] = frame[name].to_numpy() if name in frame.columns else np.full(n, None)
    columns |= {
        ELIGIBLE: eligible,
        "probability": probability,
        "decision": decision,
        "capacity_limited": limited,
        "p_roll_no_action": est.p_roll_no_action,
        "p_roll_action": est.p_roll_action,
        "roll_loss": est.roll_loss,
        "expected_benefit": est.expected_benefit,
        "model_version": np.where(
            routed, str(getattr(challenger, "version", "")), str(champion.version)
        ).astype(object),
        "scoring_run_id": np.full(n, scoring_run_id, dtype=object),
    }
    for name in REASON_COLUMNS:
        columns[name] = reasons[name]
    columns["arm"] = arm
    return pd.DataFrame(columns)


TopReasons = tuple[np.ndarray, np.ndarray]  # feature index and contribution, N_REASONS per row


@dataclass
class _ModelPart:
    """What one model gives the rows it decides: features, probability, reasons, estimates."""

    features: list[str]
    X: pd.DataFrame | None  # None when it decides no row
    probability: np.ndarray
    down: TopReasons
    up: TopReasons
    est: Estimates

    @classmethod
    def of(
        cls,
        holder: Any,
        frame: pd.DataFrame,
        rows: np.ndarray,
        policy: Policy,
        *how: Any,
        role: str = "champion",
    ):
        """`holder`'s (a loaded registry version, the `role` model) figures on the `rows` of
        `frame`, NaN elsewhere; `how`: the contribution method and the chunk size."""
        features = list(holder.model.feature_names_)
        needed_by = f"the {role} (version {holder.version})"
        X = model_input(frame, features, needed_by) if rows.any() else None
        probability, down, up = _probability_and_top_reasons(holder.model, X, rows, features, *how)
        est = estimate(holder.roll, X, frame, rows, policy.costs)
        return cls(features, X, probability, down, up, est)

    def merged(
        self, rows: np.ndarray, probability: np.ndarray, est: Estimates
    ) -> tuple[np.ndarray, Estimates]:
        """This model's probability and estimates on `rows`, the given ones elsewhere."""
        fields = (np.where(rows, getattr(self.est, n), getattr(est, n)) for n in ESTIMATE_COLUMNS)
        return np.where(rows, self.probability, probability), Estimates(*fields)

    def reasons(
        self, decision: np.ndarray, templates: dict[str, str], language: str
    ) -> dict[str, np.ndarray]:
        """The reason columns of its strongest contributions in each decision's direction."""
        no_assign = decision == NO_ASSIGN
        idx, val = self.down
        idx[no_assign], val[no_assign] = self.up[0][no_assign], self.up[1][no_assign]
        X = self.X if self.X is not None else pd.DataFrame(index=range(len(decision)))
        return reason_columns(idx, val, X, self.features, templates, language)


def _probability_and_top_reasons(
    model: Any,
    X_all: pd.DataFrame | None,
    eligible: np.ndarray,
    features: list[str],
    method: str,
    chunk_rows: int,
) -> tuple[np.ndarray, TopReasons, TopReasons]:
    """Probabilities of the eligible rows, and their strongest reasons in both directions
    (against self-cure, for it), chunk by chunk so the contribution matrix never exists whole;
    which direction applies is known once the decisions (capacity: per cut) are."""
    n = len(eligible)
    probability = np.full(n, np.nan)
    down = (np.full((n, N_REASONS), -1), np.full((n, N_REASONS), np.nan))
    up = (down[0].copy(), down[1].copy())
    eligible_rows = np.flatnonzero(eligible)
    for start in range(0, len(eligible_rows), chunk_rows):
        rows = eligible_rows[start : start + chunk_rows]
        proba, contrib = probability_and_contributions(model, X_all.iloc[rows], features, method)
        probability[rows] = proba
        up[0][rows], up[1][rows] = top_reasons(contrib, np.ones(len(rows), dtype=bool))
        down[0][rows], down[1][rows] = top_reasons(contrib, np.zeros(len(rows), dtype=bool))
    return probability, down, up


def _rule_reasons(
    reasons: dict[str, np.ndarray],
    probability: np.ndarray,
    est: Estimates,
    eligible: np.ndarray,
    decision: np.ndarray,
    limited: np.ndarray,
    policy: Policy,
    language: str,
) -> None:
    """The first reason of every row is its rule: no active mandate (the only reason of an
    ineligible row), or the decision's own reason (which probabilities and costs decided it)
    before the model's two strongest reasons."""
    ineligible = ~eligible
    reasons["reason_1_code"][ineligible] = NO_ACTIVE_MANDATE
    reasons["reason_1_text"][ineligible] = NO_ACTIVE_MANDATE_TEXTS[language]
    rows = np.flatnonzero(eligible)
    if not len(rows):
        return
    pairs = [
        decision_reason(
            decision[i] == ASSIGN,
            bool(limited[i]),
            probability[i],
            est.p_roll_no_action[i],
            est.p_roll_action[i],
            est.roll_loss[i],
            policy.collection_action,
            language,
            policy=policy,
        )
        for i in rows
    ]
    for i in range(N_REASONS, 1, -1):
        for part in ("code", "text", "contribution"):
            reasons[f"reason_{i}_{part}"][rows] = reasons[f"reason_{i - 1}_{part}"][rows]
    reasons["reason_1_code"][rows] = np.array([c for c, _ in pairs], dtype=object)
    reasons["reason_1_text"][rows] = np.array([t for _, t in pairs], dtype=object)
    reasons["reason_1_contribution"][rows] = np.nan


def _control_group_reason(
    reasons: dict[str, np.ndarray], holdout: np.ndarray, language: str
) -> None:
    """A holdout row's only reason is the control group: the model did not decide it."""
    if not holdout.any():
        return
    for i in range(1, N_REASONS + 1):
        reasons[f"reason_{i}_code"][holdout] = None
        reasons[f"reason_{i}_text"][holdout] = None
        reasons[f"reason_{i}_contribution"][holdout] = np.nan
    reasons["reason_1_code"][holdout] = CONTROL_GROUP
    reasons["reason_1_text"][holdout] = CONTROL_GROUP_TEXTS[language]


# ---- batch --------------------------------------------------------------------------------------
def pick_cut(cuts: list[date], as_of: date | None) -> date:
    """The cut to score among gold's cut dates (sorted): `as_of`, else the latest."""
    if not cuts:
        raise ScoringError(f"gold.{GOLD_TABLE} has no rows to score")
    if as_of is None:
        return cuts[-1]
    if as_of in cuts:
        return as_of
    shown = ", ".join(str(c) for c in cuts[-6:])
    raise ScoringError(
        f"gold.{GOLD_TABLE} has no rows for cut date {as_of}; latest cut dates: {shown}"
    )


def read_cut(
    lake: Lake, as_of: date | None = None, version: str | None = None
) -> tuple[pd.DataFrame, date]:
    """All gold rows (labeled or not) of one cut date: `as_of`, else the latest; of gold
    `version`, else the current one."""
    version = version or lake.require_version("gold")
    glob = lake.table_glob("gold", GOLD_TABLE, version)
    src = "read_parquet(?, union_by_name=true)"
    con = duckdb.connect()
    try:
        cuts = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {CUT_DATE} FROM {src} ORDER BY 1", [glob]
            ).fetchall()
        ]
        cut = pick_cut(cuts, as_of)
        frame = con.execute(
            f"SELECT * FROM {src} WHERE {CUT_DATE} = ? ORDER BY {OBLIGATION_ID}", [glob, cut]
        ).df()
    finally:
        con.close()
    return frame, cut


def to_arrow(scored: pd.DataFrame) -> pa.Table:
    """The results schema, explicit so that an all-null column still has its type."""
    str_t, f64 = pa.string(), pa.float64()
    types = {
        OBLIGATION_ID: str_t,
        CUT_DATE: pa.date32(),
        CLIENT_KEY: str_t,
        "product": str_t,
        "segment": str_t,
        "days_past_due": pa.int64(),
        "amount_past_due": f64,
        ELIGIBLE: pa.bool_(),
        "probability": f64,
        "decision": str_t,
        "capacity_limited": pa.bool_(),
        **{name: f64 for name in ESTIMATE_COLUMNS},
        "model_version": str_t,
        "scoring_run_id": str_t,
        "arm": str_t,
    }
    for i in range(1, N_REASONS + 1):
        types |= {
            f"reason_{i}_code": str_t,
            f"reason_{i}_text": str_t,
            f"reason_{i}_contribution": f64,
        }
    arrays = []
    for name in OUTPUT_COLUMNS:
        col = scored[name]
        if name == "probability" or name in ESTIMATE_COLUMNS or name.endswith("_contribution"):
            arrays.append(pa.array(col.to_numpy(dtype=np.float64), type=f64, from_pandas=True))
        else:
            arrays.append(pa.array(col.to_numpy(dtype=object), type=types[name], from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=pa.schema([(n, types[n]) for n in OUTPUT_COLUMNS]))


def scored_period(settings: Settings, champion: Champion, cut: date) -> str | None:
    """Where a cut sits for the model: "training" (its labels fitted it: realized figures are
    in-sample), "out_of_time" (held out at training) or "after_training"; None if unknown."""
    months = champion_oot_months(settings, str(champion.run_id))
    if not months:
        return None
    month = f"{cut:%Y-%m}"
    if month < min(months):
        return "training"
    return "out_of_time" if month <= max(months) else "after_training"


def challenger_for(
    settings: Settings, design: ArmDesign, columns: Any = None
) -> tuple[Champion | None, str | None]:
    """The registered challenger that decides the CHALLENGER arm, or None, and why none when one
    is registered but cannot decide (it cannot be loaded, has no roll model, or needs a column
    the rows lack; `columns` None: not checked): the champion then decides every row and the run
    says so."""
    if design.challenger_share <= 0:
        return None, None
    try:
        challenger = load_challenger(settings)
    except RegistryError as exc:
        return None, f"the challenger decides no row: {exc}"
    if challenger is None:
        return None, None
    why = None
    if challenger.roll is None:
        why = "it has no roll model (trained before the effect-aware decision)"
    elif columns is not None:
        missing = [f for f in challenger.features if f not in set(columns)]
        if missing:
            why = f"the rows lack feature column(s) it needs: {', '.join(missing[:10])}"
    if why:
        return None, f"challenger model {challenger.version} decides no row: {why}"
    return challenger, None


def announce(
    ui: Any,
    cut: date,
    period: str | None,
    champion: Champion,
    design: ArmDesign,
    routed: tuple[Champion | None, str | None],
) -> None:
    """What a scoring run tells the user before it scores, whichever engine: a cut in the
    model's training months, and who decides the CHALLENGER arm (`challenger_for`)."""
    challenger, skipped = routed
    if period == "training":
        ui.info(
            f"cut {cut} lies in model {champion.version}'s training months: its outcomes "
            "were used to fit it, so its realized figures will be in-sample"
        )
    if skipped or challenger is not None:
        ui.info(
            skipped
            or f"challenger model {challenger.version} decides a {design.challenger_share:.0%} "
            "share of the eligible obligations outside the holdout"
        )


def score(settings: Settings, as_of: date | None = None, ui=None) -> ScoreResult:
    """Score one cut with the champion and publish results.scores (history) and results.latest."""
    lake = Lake(settings.lake).ensure()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # resolved once: the rows scored and the gold_version recorded are the same version even
    # when an etl publishes meanwhile
    gold_version = lake.require_version("gold")
    frame, cut = read_cut(lake, as_of, gold_version)  # a wrong --as-of fails before the model
    timings["read_gold"] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    with waiting(ui, "loading the champion model"):
        champion = load_champion(settings)
    policy = champion_policy(champion, settings.costs.daily_capacity, settings.costs)
    timings["load_champion"] = round(time.perf_counter() - t0, 3)

    period = scored_period(settings, champion, cut)
    run_id = new_run_id()
    t0 = time.perf_counter()
    design = ArmDesign.from_settings(settings.experiment)
    challenger, skipped = challenger_for(settings, design, frame.columns)
    if ui is not None:
        ui.info(f"scoring {len(frame):,} obligations of cut {cut} with model {champion.version}")
        announce(ui, cut, period, champion, design, (challenger, skipped))
    scored = score_frame(
        champion,
        frame,
        scoring_run_id=run_id,
        policy=policy,
        language=settings.reason_language,
        design=design,
        challenger=challenger,
    )
    timings["score"] = round(time.perf_counter() - t0, 3)

    table = to_arrow(scored)
    inputs = {"gold_version": gold_version, "model_version": str(champion.version)}
    with lake.publish("results", run_id=run_id, inputs=inputs) as pub:
        with pub.timed("write"):
            pq.write_table(table, pub.table_dir(SCORES) / "part-0.parquet")
            pq.write_table(table, pub.table_dir(LATEST) / "part-0.parquet")
        record_run(
            pub,
            table.num_rows,
            run_id,
            champion,
            policy,
            cut,
            period,
            settings,
            design,
            routed=(challenger, skipped),
        )
        pub.timings.update(timings)
    timings["write"] = pub.timings.get("write", 0.0)
    return summarize(
        scored, run_id, pub.version, cut, period, champion, policy, timings, (challenger, skipped)
    )
