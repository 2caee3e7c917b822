"""The promotion gate: a challenger against the champion on the same recent rows.

Figures stored by the champion's own training were measured on another window, and out-of-time
AUC moves by about ±0.007 from month to month: comparing them decides on the calendar. So the
gate scores **the challenger's out-of-time rows** with both models and compares them there:

- ranking: AUC(challenger) - AUC(champion) with its paired bootstrap interval (`ml.stats`);
- decisions: each model's decisions on those rows (`decide(model, frame) -> (p_self_cure,
  assign)`: the self-cure probability and the effect-aware policy's decisions) valued off
  policy on the randomized rows among them (`decision.value`): the saving of the challenger,
  V(champion) - V(challenger) in pesos per obligation, with its paired interval. Without
  randomized rows (no holdout among those cuts) the value is not compared, and the reason says so.

Rule (margins in `config.Gate`, intervals at 95%):
- real gain: a lower bound above 0 on AUC or on the saving, the other non-inferior;
- non-inferiority: the AUC difference's lower bound at least -`auc_margin` and the saving's at
  least -`value_margin` (pesos per obligation);
- anything else is refused, the reason naming the interval that failed;
- and whatever the intervals, a challenger whose effect of management is not identified by its
  randomized rows (its policy assigns every eligible obligation, `decision.policy`) is refused
  against a champion whose effect is.
On top, as before, out-of-time ECE at most max(`max_ece`, its sampling noise) and score PSI at
most `max_psi`. The first version, with no champion, needs only ECE and PSI. A champion that
cannot be loaded or cannot score these rows refuses the promotion (a person may still promote
by hand, `cobranza promote`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cobranza.config import Costs, Gate, Settings
from cobranza.decision.estimates import estimate
from cobranza.decision.policy import ASSIGN, champion_policy, decide_per_cut
from cobranza.decision.value import ValueComparison, compare_policies, randomized_rows_of
from cobranza.errors import first_line
from cobranza.ml import metrics as M
from cobranza.ml import stats as S
from cobranza.ml.model import model_input
from cobranza.transforms.schema import ASSIGNED

GATE_METRICS = ("oot_auc", "oot_ece", "psi")
FIRST, GAIN, NON_INFERIOR, REFUSED = "first champion", "gain", "non-inferior", "refused"

Decide = Callable[[Any, pd.DataFrame], tuple[np.ndarray, np.ndarray]]


def decide_with_policy(
    model: Any, frame: pd.DataFrame, costs: Costs | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A registered model's (`registry.Champion`-shaped: model, roll, features, policy)
    probability of self-cure on `frame`, in the arm each row was actually in (what its labels
    saw), and its decisions there (True = ASSIGN) under the effect-aware policy with `costs`
    (else its own logged ones), per cut."""
    X = model_input(frame, list(model.features))
    treatment = getattr(getattr(model.model, "encoder_", None), "treatment_", None)
    observed = (
        X.assign(**{treatment: frame[ASSIGNED].fillna(True).astype(float).to_numpy()})
        if treatment and ASSIGNED in frame
        else X
    )
    p = model.model.predict_proba(observed)[:, 1]
    policy = champion_policy(model, costs=costs)
    eligible = np.ones(len(frame), dtype=bool)
    est = estimate(model.roll, X, frame, eligible, policy.costs)
    decision, _ = decide_per_cut(est.expected_benefit, eligible, frame["cut_date"], policy)
    return p, decision == ASSIGN


@dataclass(frozen=True)
class Comparison:
    """Challenger and champion on the same rows; `problem` when they could not be compared."""

    champion_version: str
    rows: int = 0
    champion_auc: float = float("nan")
    challenger_auc: float = float("nan")
    auc_difference: S.Interval | None = None  # challenger - champion
    value: ValueComparison | None = None  # a = challenger, b = champion
    problem: str | None = None
    champion_effect_identified: bool = True
    challenger_effect_identified: bool = True

    def value_text(self) -> str:
        if self.value is None:
            return "net value not compared (no randomized holdout rows among them)"
        v = self.value
        return (
            f"net value: challenger saves {v.saving.text(0)} COP per obligation against the "
            f"champion on {v.a.rows:,} randomized rows"
        )

    def tags(self) -> dict[str, str]:
        """The evidence as model version tags."""
        out = {
            "gate_champion_version": self.champion_version,
            "gate_rows": str(self.rows),
            "gate_champion_effect_identified": str(self.champion_effect_identified).lower(),
            "gate_challenger_effect_identified": str(self.challenger_effect_identified).lower(),
        }
        if self.problem is not None:
            return out | {"gate_problem": self.problem[:5000]}
        assert self.auc_difference is not None
        d = self.auc_difference
        out |= {
            "gate_champion_auc": repr(self.champion_auc),
            "gate_challenger_auc": repr(self.challenger_auc),
            "gate_auc_difference": repr(d.estimate),
            "gate_auc_difference_low": repr(d.low),
            "gate_auc_difference_high": repr(d.high),
        }
        if self.value is not None:
            s = self.value.saving
            out |= {
                "gate_value_saving": repr(s.estimate),
                "gate_value_saving_low": repr(s.low),
                "gate_value_saving_high": repr(s.high),
                "gate_value_rows": str(self.value.a.rows),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion_version": self.champion_version,
            "rows": self.rows,
            "champion_auc": _finite(self.champion_auc),
            "challenger_auc": _finite(self.challenger_auc),
            "auc_difference": self.auc_difference.to_dict() if self.auc_difference else None,
            "value": self.value.to_dict() if self.value else None,
            "problem": self.problem,
            "champion_effect_identified": self.champion_effect_identified,
            "challenger_effect_identified": self.challenger_effect_identified,
        }


def _effect_identified(model: Any) -> bool:
    """Whether a registered model's policy says its effect of management is identified (a model
    without a policy, or a policy logged before it was recorded, reads as identified)."""
    policy = getattr(model, "policy", None)
    if isinstance(policy, dict):
        return bool(policy.get("effect_identified", True))
    return bool(getattr(policy, "effect_identified", True))


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def compare(
    champion: Any,
    challenger: Any,
    frame: pd.DataFrame,
    y: np.ndarray,
    decide: Decide,
    settings: Settings,
) -> Comparison:
    """Both models on the challenger's out-of-time rows (see the module docstring)."""
    version = str(champion.version)
    try:
        p_champion, assign_champion = decide(champion, frame)
    except Exception as exc:  # any reason it cannot score these rows refuses, with that reason
        return Comparison(
            version,
            len(frame),
            problem=f"champion v{version} cannot score these rows ({type(exc).__name__}: "
            f"{first_line(exc)})",
        )
    p_challenger, assign_challenger = decide(challenger, frame)
    seed, resamples = settings.seed, settings.gate.resamples
    rows = randomized_rows_of(frame, settings.costs)
    value = None
    if rows is not None and rows.rows > 0:
        value = compare_policies(rows, assign_challenger, assign_champion, resamples, seed)
    return Comparison(
        champion_version=version,
        rows=len(frame),
        champion_auc=M.auc(y, p_champion),
        challenger_auc=M.auc(y, p_challenger),
        auc_difference=S.auc_difference(y, p_challenger, p_champion, resamples, seed),
        value=value,
        champion_effect_identified=_effect_identified(champion),
        challenger_effect_identified=_effect_identified(challenger),
    )


@dataclass
class GateResult:
    passed: bool
    reason: str
    champion_version: str | None
    champion_oot_auc: float | None  # on the same rows as the challenger's
    verdict: str = REFUSED  # first champion, gain, non-inferior or refused
    comparison: Comparison | None = None

    @property
    def alias(self) -> str:
        """The alias this outcome gives the new version."""
        return "champion" if self.passed else "challenger"

    def tags(self, gate: Gate) -> dict[str, str]:
        """Verdict, margins and the comparison's evidence, as model version tags."""
        out = {
            "gate_verdict": self.verdict,
            "gate_auc_margin": repr(gate.auc_margin),
            "gate_value_margin": repr(gate.value_margin),
        }
        return out | (self.comparison.tags() if self.comparison is not None else {})

    def evidence(self) -> dict[str, Any]:
        """For summaries and the report."""
        return {
            "verdict": self.verdict,
            "comparison": self.comparison.to_dict() if self.comparison is not None else None,
        }


def _same_rows(comparison: Comparison, gate: Gate) -> tuple[str, str]:
    """(verdict, text) of the comparison on the same rows: gain, non-inferior or refused."""
    d = comparison.auc_difference
    where = f"on the same {comparison.rows:,} out-of-time rows as champion v"
    where += comparison.champion_version
    if comparison.problem is not None or d is None:
        return REFUSED, f"not compared with champion v{comparison.champion_version}: " + str(
            comparison.problem
        )
    if comparison.champion_effect_identified and not comparison.challenger_effect_identified:
        return REFUSED, (
            "the challenger's effect of management is not identified by its randomized holdout "
            f"while champion v{comparison.champion_version}'s is: its policy would assign every "
            "eligible obligation on no evidence of what management changes"
        )
    if not (math.isfinite(d.low) and math.isfinite(d.high)):
        return REFUSED, f"the AUC difference cannot be measured {where} (one class only)"
    auc = (
        f"AUC {comparison.challenger_auc:.4f} vs {comparison.champion_auc:.4f}, "
        f"challenger - champion {d.text()}"
    )
    saving = comparison.value.saving if comparison.value is not None else None
    auc_gain, auc_ok = d.low > 0, d.low >= -gate.auc_margin
    value_gain = saving is not None and saving.low > 0
    value_ok = saving is None or saving.low >= -gate.value_margin
    margins = f"margins AUC -{gate.auc_margin:.4f}, net value -{gate.value_margin:,.0f} COP"
    text = f"{where}: {auc}; {comparison.value_text()}; {margins}"
    if (auc_gain and value_ok) or (value_gain and auc_ok):
        gained = "AUC" if auc_gain else "net value"
        return GAIN, f"real gain in {gained} {text}"
    if auc_ok and value_ok:
        return NON_INFERIOR, f"non-inferior within the margins {text}"
    failed = []
    if not auc_ok:
        failed.append(
            f"AUC interval lower bound {d.low:+.4f} below the margin -{gate.auc_margin:.4f}"
        )
    if not value_ok and saving is not None:
        failed.append(
            f"net value interval lower bound {saving.low:+,.0f} COP below the margin "
            f"-{gate.value_margin:,.0f}"
        )
    return REFUSED, f"{' and '.join(failed)} {text}"


def evaluate_gate(
    candidate: dict[str, float], gate: Gate, comparison: Comparison | None = None
) -> GateResult:
    """The gate on the candidate's `oot_auc`, `oot_ece`, `psi` (and `oot_ece_noise`) and, when
    there is a champion, the comparison on the same rows (see the module docstring)."""
    failures = []
    noise = candidate.get("oot_ece_noise")
    noise = noise if noise is not None and math.isfinite(noise) else None
    ece_limit = max(gate.max_ece, noise) if noise is not None else gate.max_ece
    ece_text = f"max_ece {gate.max_ece:.4f}"
    if noise is not None and noise > gate.max_ece:
        ece_text = f"{ece_limit:.4f} (sampling noise on this OOT size; max_ece {gate.max_ece:.4f})"
    for key in GATE_METRICS:
        if key not in candidate or not math.isfinite(candidate[key]):
            failures.append(f"{key} is missing")
    if not failures:
        if candidate["oot_ece"] > ece_limit:
            failures.append(f"OOT ECE {candidate['oot_ece']:.4f} > {ece_text}")
        if candidate["psi"] > gate.max_psi:
            failures.append(f"PSI {candidate['psi']:.4f} > max_psi {gate.max_psi:.4f}")
    champion = comparison.champion_version if comparison is not None else None
    champion_auc = _finite(comparison.champion_auc) if comparison is not None else None
    verdict, compared = FIRST, ""
    if comparison is not None:
        verdict, compared = _same_rows(comparison, gate)
        if verdict == REFUSED:
            failures.append(compared)
    if failures:
        return GateResult(False, "; ".join(failures), champion, champion_auc, REFUSED, comparison)
    limits = (
        f"OOT ECE {candidate['oot_ece']:.4f} <= {ece_text}, "
        f"PSI {candidate['psi']:.4f} <= {gate.max_psi:.4f}"
    )
    reason = f"first champion: {limits}" if comparison is None else f"{compared}; {limits}"
    return GateResult(True, reason, champion, champion_auc, verdict, comparison)
