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
`decision/experiment.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from cobranza.config import Costs, Settings
from cobranza.contract import ASSIGNED_ARM, HOLDOUT_ARM
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
class ExperimentResult(Summary):
    """`arms` and `effects` pooled over the randomized cuts; `cuts` one by one."""

    gold_version: str
    population: str
    comparison: str
    estimator: str
    cuts_pooled: list[str]
    arms: list[ArmFigures]
    effects: list[EffectFigures]
    sample_size: SampleSize | None
    cuts: list[CutFigures] = field(default_factory=list)

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


def effects(holdout: pd.DataFrame, assigned: pd.DataFrame) -> list[Effect]:
    """HOLDOUT - ASSIGNED for every metric of one cut."""
    out = [
        rate_difference(
            name, holdout[column].astype(np.float64), assigned[column].astype(np.float64)
        )
        for name, column in RATES
    ]
    out.append(mean_difference(COST, holdout["cost"], assigned["cost"]))
    return out


def figures(
    frame: pd.DataFrame, mde: float, alpha: float = 0.05, power: float = 0.8
) -> tuple[list[CutFigures], list[str], list[ArmFigures], list[Effect], SampleSize | None]:
    """Per cut, the pooled cuts, pooled arms and effects, and the sample size, from labeled rows
    that carry `cost` (`with_cost`)."""
    cuts: list[CutFigures] = []
    pooled: list[str] = []
    keys: list[Any] = []
    per_cut: list[list[Effect]] = []
    sizes: list[int] = []
    for cut, rows in frame.groupby(CUT_DATE, sort=True):
        by_arm = {str(a): r for a, r in rows.groupby(ARM, sort=True)}
        holdout, assigned = by_arm.get(HOLDOUT_ARM), by_arm.get(ASSIGNED_ARM)
        randomized = (
            holdout is not None
            and assigned is not None
            and min(len(holdout), len(assigned)) >= MIN_ROWS
        )
        found = effects(holdout, assigned) if randomized else []
        name = str(pd.Timestamp(cut).date())
        arms = [arm_figures(a, r) for a, r in by_arm.items()]
        cuts.append(CutFigures(name, randomized, arms, [EffectFigures.of(e) for e in found]))
        if randomized:
            pooled.append(name)
            keys.append(cut)
            per_cut.append(found)
            sizes.append(len(holdout) + len(assigned))
    if not pooled:
        return cuts, pooled, [], [], None
    compared = frame[frame[CUT_DATE].isin(keys) & frame[ARM].isin([HOLDOUT_ARM, ASSIGNED_ARM])]
    arms = [arm_figures(a, compared[compared[ARM] == a]) for a in (HOLDOUT_ARM, ASSIGNED_ARM)]
    total = [
        stratified(metric, [cut[i] for cut in per_cut], sizes) for i, metric in enumerate(METRICS)
    ]
    return cuts, pooled, arms, total, _sample_size(arms, len(pooled), mde, alpha, power)


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
    cuts, pooled, arms, total, size = figures(
        with_cost(frame, settings.costs), mde, xp.alpha, xp.power
    )
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
    )
