"""The experiment report: what the randomized holdout shows, per closed cut and pooled.

Source: `gold.obligation_snapshots`' rows whose horizon has closed (`self_cure_debit`, `cure_any`
and `roll_31_plus` all known), with the arm the bank actually executed at the cut (`arm`, from
`collection_assignments`). Population: the **eligible** rows by default (an active debit mandate:
the rows cobranza decides for and draws its own holdout from; a bank holdout drawn among all rows
restricted to eligible ones is still randomized), or all rows (`population="all"`).

Per cut and per arm: rows, the debit-only cure rate (`self_cure_debit`), the any-channel cure
rate, the roll rate (31+ days past due at the next cut) and the realized cost per obligation
(`decision.loss.realized_cost`: the collection action when managed, the roll's loss when it
rolled, with the settings' costs). Effects: HOLDOUT - ASSIGNED for each metric. RULE rows are
shown but never compared: a bank rule chose them, so they differ from the others by more than
the management. Pooled: over the cuts where both HOLDOUT and ASSIGNED are present (randomized
cuts), stratified by cut; the estimators and the sample-size formula are in
`decision/experiment_stats.py`.

The challenger (`challenger`): the arm cobranza's own scoring drew for each eligible row
(`results.scores`, the last scoring run of each cut; `decision.experiment`), joined to the same
closed rows. CHALLENGER rows were decided by the challenger model, CHAMPION rows by the champion,
both drawn by the same hash, so CHALLENGER - CHAMPION on each metric is the effect of deciding
by the challenger (intention to treat: the bank executed the decisions, the cost counts the
action where it managed). The same estimators, per cut and pooled over the cuts where both arms
have rows. Absent while no scoring run has routed a row to a challenger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from cobranza.config import Costs, Settings
from cobranza.contract import ASSIGNED_ARM, HOLDOUT_ARM
from cobranza.decision.experiment import CHALLENGER, CHAMPION
from cobranza.decision.experiment_stats import (
    Effect,
    mean_difference,
    rate_difference,
    sample_size,
    stratified,
)
from cobranza.decision.loss import realized_cost, roll_loss
from cobranza.errors import CobranzaError
from cobranza.lake import Lake
from cobranza.summary import Section, Summary
from cobranza.tables import SCORES
from cobranza.transforms.schema import (
    ARM,
    CURE_ANY,
    CUT_DATE,
    ELIGIBLE,
    EXPOSURE,
    GOLD_TABLE,
    OBLIGATION_ID,
    ROLL_31_PLUS,
    TARGET,
)

Population = Literal["eligible", "all"]
RATES = (("cure_debit_rate", TARGET), ("cure_any_rate", CURE_ANY), ("roll_rate", ROLL_31_PLUS))
COST = "cost_per_obligation"
METRICS = (*(name for name, _ in RATES), COST)
MIN_ROWS = 2  # per arm and cut, for an effect (Welch needs two rows)
COLUMNS = (OBLIGATION_ID, CUT_DATE, ELIGIBLE, ARM, TARGET, CURE_ANY, ROLL_31_PLUS, EXPOSURE)


class ExperimentError(CobranzaError):
    """The report cannot be made (no gold, no closed horizon)."""


@dataclass
class ArmFigures(Summary):
    arm: str
    rows: int
    cure_debit_rate: float
    cure_any_rate: float
    roll_rate: float
    cost_per_obligation: float


@dataclass
class EffectFigures(Summary):
    metric: str
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float

    @classmethod
    def of(cls, e: Effect) -> EffectFigures:
        return cls(e.metric, e.difference, e.ci_low, e.ci_high, e.p_value, e.se)


@dataclass
class CutFigures(Summary):
    """One closed cut: every arm present, and the effects when it was randomized."""

    cut_date: str
    randomized: bool
    arms: list[ArmFigures]
    effects: list[EffectFigures]


@dataclass
class SampleSize(Summary):
    """Rows per arm to detect `mde` on the roll rate (alpha two-sided, power)."""

    metric: str
    mde: float
    alpha: float
    power: float
    base_rate: float  # ASSIGNED's pooled roll rate
    ratio: float  # ASSIGNED rows per HOLDOUT row
    holdout_rows: int | None  # None: no rate lies `mde` away from the base rate
    assigned_rows: int | None
    holdout_rows_per_cut: float | None  # observed, over the pooled cuts
    cuts_needed: int | None


@dataclass
class ChallengerFigures(Summary):
    """CHALLENGER - CHAMPION on the rows cobranza's scoring routed, pooled and by cut."""

    comparison: str
    challenger_versions: list[str]  # the versions that decided the pooled CHALLENGER rows
    champion_versions: list[str]
    cuts_pooled: list[str]
    arms: list[ArmFigures]
    effects: list[EffectFigures]
    cuts: list[CutFigures] = field(default_factory=list)


@dataclass
class ExperimentResult(Summary):
    """`arms` and `effects` pooled over the randomized cuts; `cuts` one by one; `challenger`
    the scoring's CHALLENGER arm against its CHAMPION arm (None while no row was routed)."""

    gold_version: str
    population: str
    comparison: str
    estimator: str
    cuts_pooled: list[str]
    arms: list[ArmFigures]
    effects: list[EffectFigures]
    sample_size: SampleSize | None
    cuts: list[CutFigures] = field(default_factory=list)
    challenger: ChallengerFigures | None = None

    def sections(self) -> list[Section]:
        out: list[Section] = []
        pooled = f"pooled over {len(self.cuts_pooled)} randomized cuts ({self.population} rows)"
        out.append((pooled, ARM_HEADER, [_arm_row(a) for a in self.arms]))
        out.append(
            (
                f"effects {self.comparison}, 95% CI ({self.estimator})",
                ["metric", "difference", "95% CI", "p-value"],
                [_effect_row(e) for e in self.effects],
            )
        )
        rows = [(c.cut_date, *_arm_row(a)) for c in self.cuts for a in c.arms]
        out.append(("by closed cut", ["cut", *ARM_HEADER], rows))
        roll = [
            (c.cut_date, *_effect_row(e)[1:])
            for c in self.cuts
            for e in c.effects
            if e.metric == "roll_rate"
        ]
        if roll:
            out.append(
                ("roll-rate effect by cut", ["cut", "difference", "95% CI", "p-value"], roll)
            )
        if self.sample_size is not None:
            s = self.sample_size
            out.append(
                (
                    f"sample size for an effect of {s.mde:g} on the roll rate",
                    None,
                    [
                        ("base rate (ASSIGNED)", f"{s.base_rate:.4f}"),
                        ("arm ratio ASSIGNED / HOLDOUT", f"{s.ratio:.2f}"),
                        ("alpha, power", f"{s.alpha:g}, {s.power:g}"),
                        ("HOLDOUT rows needed", _text(s.holdout_rows)),
                        ("ASSIGNED rows needed", _text(s.assigned_rows)),
                        ("cuts needed at the observed pace", _text(s.cuts_needed)),
                    ],
                )
            )
        if self.challenger is not None:
            out.extend(_challenger_sections(self.challenger))
        return out


def _challenger_sections(c: ChallengerFigures) -> list[Section]:
    versions = ", ".join(c.challenger_versions) or "-"
    heading = (
        f"challenger (model {versions}) against the champion, pooled over "
        f"{len(c.cuts_pooled)} closed cuts (eligible rows, the scoring's arms)"
    )
    out: list[Section] = [(heading, ARM_HEADER, [_arm_row(a) for a in c.arms])]
    if c.effects:
        out.append(
            (
                f"effects {c.comparison}, 95% CI",
                ["metric", "difference", "95% CI", "p-value"],
                [_effect_row(e) for e in c.effects],
            )
        )
    rows = [(cut.cut_date, *_arm_row(a)) for cut in c.cuts for a in cut.arms]
    out.append(("challenger by closed cut", ["cut", *ARM_HEADER], rows))
    return out


ARM_HEADER = ["arm", "rows", "cure (debit)", "cure (any)", "roll", "cost / obligation"]


def _arm_row(a: ArmFigures) -> tuple[str, ...]:
    return (
        a.arm,
        f"{a.rows:,}",
        f"{a.cure_debit_rate:.4f}",
        f"{a.cure_any_rate:.4f}",
        f"{a.roll_rate:.4f}",
        f"{a.cost_per_obligation:,.0f}",
    )


def _effect_row(e: EffectFigures) -> tuple[str, ...]:
    digits = 0 if e.metric == COST else 4
    return (
        e.metric,
        f"{e.difference:+,.{digits}f}",
        f"[{e.ci_low:,.{digits}f}, {e.ci_high:,.{digits}f}]",
        f"{e.p_value:.3g}",
    )


def _text(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


# ---- the figures, from a frame of labeled rows -------------------------------------------------
def with_cost(frame: pd.DataFrame, costs: Costs) -> pd.DataFrame:
    """The rows with their realized cost (`cost`): the action when ASSIGNED, the loss if rolled."""
    loss = roll_loss(
        frame[EXPOSURE].to_numpy(dtype=np.float64, na_value=np.nan), frame["product"], costs
    )
    assigned = (frame[ARM] == ASSIGNED_ARM).to_numpy()
    cost = realized_cost(assigned, frame[ROLL_31_PLUS].to_numpy(dtype=np.float64), loss, costs)
    return frame.assign(cost=cost)


def arm_figures(arm: str, rows: pd.DataFrame) -> ArmFigures:
    rates = {name: float(rows[column].astype(np.float64).mean()) for name, column in RATES}
    return ArmFigures(arm, len(rows), **rates, cost_per_obligation=float(rows["cost"].mean()))


def effects(treated: pd.DataFrame, control: pd.DataFrame) -> list[Effect]:
    """treated - control (HOLDOUT - ASSIGNED, CHALLENGER - CHAMPION) for every metric of a cut."""
    out = [
        rate_difference(
            name, treated[column].astype(np.float64), control[column].astype(np.float64)
        )
        for name, column in RATES
    ]
    out.append(mean_difference(COST, treated["cost"], control["cost"]))
    return out


def compare_arms(
    frame: pd.DataFrame, treated: str, control: str
) -> tuple[list[CutFigures], list[str], list[ArmFigures], list[Effect]]:
    """Per cut (every arm of `frame[ARM]`), the cuts where both compared arms have rows, and
    over those the pooled arms and the stratified effects treated - control."""
    cuts: list[CutFigures] = []
    pooled: list[str] = []
    keys: list[Any] = []
    per_cut: list[list[Effect]] = []
    sizes: list[int] = []
    for cut, rows in frame.groupby(CUT_DATE, sort=True):
        by_arm = {str(a): r for a, r in rows.groupby(ARM, sort=True)}
        one, other = by_arm.get(treated), by_arm.get(control)
        randomized = one is not None and other is not None and min(len(one), len(other)) >= MIN_ROWS
        found = effects(one, other) if randomized else []
        name = str(pd.Timestamp(cut).date())
        arms = [arm_figures(a, r) for a, r in by_arm.items()]
        cuts.append(CutFigures(name, randomized, arms, [EffectFigures.of(e) for e in found]))
        if randomized:
            pooled.append(name)
            keys.append(cut)
            per_cut.append(found)
            sizes.append(len(one) + len(other))
    if not pooled:
        return cuts, pooled, [], []
    compared = frame[frame[CUT_DATE].isin(keys) & frame[ARM].isin([treated, control])]
    arms = [arm_figures(a, compared[compared[ARM] == a]) for a in (treated, control)]
    total = [
        stratified(metric, [cut[i] for cut in per_cut], sizes) for i, metric in enumerate(METRICS)
    ]
    return cuts, pooled, arms, total


def figures(
    frame: pd.DataFrame, mde: float, alpha: float = 0.05, power: float = 0.8
) -> tuple[list[CutFigures], list[str], list[ArmFigures], list[Effect], SampleSize | None]:
    """Per cut, the pooled cuts, pooled arms and effects, and the sample size, from labeled rows
    that carry `cost` (`with_cost`)."""
    cuts, pooled, arms, total = compare_arms(frame, HOLDOUT_ARM, ASSIGNED_ARM)
    if not pooled:
        return cuts, pooled, [], [], None
    return cuts, pooled, arms, total, _sample_size(arms, len(pooled), mde, alpha, power)


def challenger_figures(frame: pd.DataFrame, scoring: pd.DataFrame) -> ChallengerFigures | None:
    """CHALLENGER - CHAMPION on the eligible labeled rows (with `cost`) that scoring routed.

    `scoring`: obligation_id, cut_date, arm and model_version of the scored rows (one per
    obligation and cut). None when no closed row was routed to a challenger.
    """
    routed = scoring[scoring[ARM].isin([CHALLENGER, CHAMPION])]
    if not (routed[ARM] == CHALLENGER).any():
        return None
    rows = frame[frame[ELIGIBLE].astype(bool)].drop(columns=[ARM])
    keys = {CUT_DATE: lambda d: pd.to_datetime(d[CUT_DATE]), OBLIGATION_ID: _as_str}
    rows = rows.assign(**keys).merge(
        routed.assign(**keys), on=[OBLIGATION_ID, CUT_DATE], how="inner"
    )
    if not (rows[ARM] == CHALLENGER).any():
        return None
    cuts, pooled, arms, total = compare_arms(rows, CHALLENGER, CHAMPION)
    in_pooled = rows[pd.to_datetime(rows[CUT_DATE]).dt.strftime("%Y-%m-%d").isin(pooled)]

    def versions(arm: str) -> list[str]:
        found = in_pooled.loc[in_pooled[ARM] == arm, "model_version"].dropna().astype(str)
        return sorted(set(found), key=lambda v: (len(v), v))

    return ChallengerFigures(
        comparison=f"{CHALLENGER} - {CHAMPION}",
        challenger_versions=versions(CHALLENGER),
        champion_versions=versions(CHAMPION),
        cuts_pooled=pooled,
        arms=arms,
        effects=[EffectFigures.of(e) for e in total],
        cuts=cuts,
    )


def _sample_size(
    arms: list[ArmFigures], n_cuts: int, mde: float, alpha: float, power: float
) -> SampleSize:
    holdout, assigned = arms
    ratio = assigned.rows / holdout.rows
    base = assigned.roll_rate
    try:
        n1, n0 = sample_size(base, mde, ratio, alpha, power)
    except ValueError:  # no rate differs from the base rate by mde (both sides leave [0, 1])
        n1 = n0 = None
    pace = holdout.rows / n_cuts
    return SampleSize(
        metric="roll_rate",
        mde=mde,
        alpha=alpha,
        power=power,
        base_rate=base,
        ratio=ratio,
        holdout_rows=n1,
        assigned_rows=n0,
        holdout_rows_per_cut=round(pace, 3),
        cuts_needed=None if n1 is None else int(np.ceil(n1 / pace)),
    )


# ---- the stage ----------------------------------------------------------------------------------
def read_labeled(lake: Lake, version: str, population: Population) -> pd.DataFrame:
    """Gold's rows whose horizon has closed (all three labels known) and whose arm is known."""
    glob = lake.table_glob("gold", GOLD_TABLE, version)
    where = " AND ".join(f"{c} IS NOT NULL" for c in (TARGET, CURE_ANY, ROLL_31_PLUS, ARM))
    if population == "eligible":
        where += f" AND {ELIGIBLE}"
    columns = ", ".join((*COLUMNS, "product"))
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT {columns} FROM read_parquet(?, union_by_name=true) WHERE {where} "
            f"ORDER BY {CUT_DATE}, {OBLIGATION_ID}",
            [glob],
        ).df()
    finally:
        con.close()


def _as_str(frame: pd.DataFrame) -> pd.Series:
    return frame[OBLIGATION_ID].astype(str)


def read_scoring_arms(lake: Lake) -> pd.DataFrame:
    """The scoring arm and deciding model of every scored (obligation, cut) in `results.scores`,
    from the last scoring run of that cut (the decisions the bank received last)."""
    empty = pd.DataFrame(columns=[OBLIGATION_ID, CUT_DATE, ARM, "model_version"])
    folders = [
        lake.version_dir("results", info["version"]) / SCORES
        for info in lake.versions("results")
        if SCORES in info.get("history_tables", [])
    ]
    globs = [str(f / "**" / "*.parquet") for f in folders if f.is_dir()]
    if not globs:
        return empty
    con = duckdb.connect()
    try:
        names = {
            r[0]
            for r in con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?, union_by_name=true)", [globs]
            ).fetchall()
        }
        if ARM not in names:  # results written before the experiment's arms
            return empty
        return con.execute(
            f"SELECT {OBLIGATION_ID}, {CUT_DATE}, {ARM}, model_version "
            "FROM read_parquet(?, union_by_name=true) "
            f"QUALIFY row_number() OVER (PARTITION BY {OBLIGATION_ID}, {CUT_DATE} "
            "ORDER BY scoring_run_id DESC) = 1",
            [globs],
        ).df()
    finally:
        con.close()


def report(
    settings: Settings, mde: float | None = None, population: Population = "eligible"
) -> ExperimentResult:
    """The experiment report over the current gold version."""
    lake = Lake(settings.lake).ensure()
    version = lake.require_version("gold")
    frame = read_labeled(lake, version, population)
    if frame.empty:
        raise ExperimentError(
            f"gold version {version} has no {population} rows with a closed horizon and a known arm"
        )
    xp = settings.experiment
    mde = xp.mde if mde is None else mde
    costed = with_cost(frame, settings.costs)
    cuts, pooled, arms, total, size = figures(costed, mde, xp.alpha, xp.power)
    return ExperimentResult(
        gold_version=version,
        population=population,
        comparison=f"{HOLDOUT_ARM} - {ASSIGNED_ARM}",
        estimator="difference of rates with the unpooled normal interval, Welch for the cost; "
        "stratified by cut",
        cuts_pooled=pooled,
        arms=arms,
        effects=[EffectFigures.of(e) for e in total],
        sample_size=size,
        cuts=cuts,
        challenger=challenger_figures(costed, read_scoring_arms(lake)),
    )
