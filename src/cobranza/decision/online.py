"""Online scoring of a few obligations without pandas: the API's fast path, equal to `score_frame`.

`score_frame` pays a fixed cost per call in pandas (frames, per-column dtype handling, factorize
for the reason texts) of a few milliseconds, whatever the number of rows: too much for an online
request of one obligation at 200 requests per second. `OnlineScorer` does the same steps on plain
Python values and small NumPy arrays, reusing the batch's own pieces so the results are the same:

- encoding: numbers as float64 (None -> NaN), categories as their index in the learned lists
  (unseen or missing -> NaN), exactly what `FeatureEncoder.codes` gives;
- probability and contributions: the same `PathTable.contributions` (LightGBM `pred_leaf`, one
  thread) and the same calibrator; the table must already be trusted (checked against
  `predict_proba` by one batch call), else the caller uses the batch path;
- roll with and without management: the roll model on the same codes (`ml.causal.predict_codes`),
  the roll loss and the expected benefit (`decision.loss`), as `decision.estimates` gives them;
- arms: `assign_arms` with the same design (the hash of obligation and cut), so a row lands in
  the same arm online and in batch; HOLDOUT rows NO_ASSIGN with the control group as their reason;
  CHALLENGER rows (when a `challenger` scorer is given: the registered challenger, same policy)
  get that scorer's probability, estimates and reasons, and its version;
- decisions: `decide_per_cut` over the call's rows, capacity per cut date, as the batch;
- reasons: `top_reasons` in the decision's direction, texts by `format_reason`, numbers through
  `significant` as the batch's are (fractions rounded to a few significant digits, whole numbers
  as they are, value by value, so a text never depends on the other rows of the call).

Anything the fast path cannot reproduce (a model without the path internals, an untrusted or
unverified table) makes `score` return None: the caller then goes through `score_frame`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from cobranza.decision.attribution import PathTable, checked_path_table
from cobranza.decision.experiment import CHALLENGER, CHAMPION, HOLDOUT, ArmDesign, assign_arms
from cobranza.decision.loss import expected_benefit, roll_loss
from cobranza.decision.policy import (
    ASSIGN,
    NO_ASSIGN,
    Policy,
    decide_per_cut,
)
from cobranza.decision.reasons import (
    CONTROL_GROUP,
    CONTROL_GROUP_TEXTS,
    N_REASONS,
    NO_ACTIVE_MANDATE,
    NO_ACTIVE_MANDATE_TEXTS,
    decision_reason,
    format_reason,
    reason_code,
    significant,
    top_reasons,
)
from cobranza.ml.causal import predict_codes
from cobranza.transforms.schema import EXPOSURE

# Up to this many rows this path is the faster one (CPU per call, 73 features, on this machine:
# 1 row 0.26-0.44 ms vs 7.7 ms through frame + score_frame; 64 rows 3.9 vs 13 ms; 256 rows 12 vs
# 22 ms); above it, the batch path's vectorized work and multi-threaded LightGBM take over.
MAX_ROWS = 256


@dataclass(frozen=True)
class OnlineRow:
    """One obligation to score: identity, eligibility and its feature values by name."""

    obligation_id: str
    cut_date: date
    eligible: bool
    features: Mapping[str, Any]


class OnlineScorer:
    """The champion's model, policy and templates, prepared once for per-request scoring."""

    def __init__(
        self,
        model: Any,
        policy: Policy,
        templates: Mapping[str, str],
        version: str,
        language: str = "en",
        roll: Any = None,
        design: ArmDesign | None = None,
        challenger: OnlineScorer | None = None,
    ):
        self.model = model
        self.challenger = challenger  # decides the CHALLENGER arm; the same policy and design
        self.roll = roll  # ml.causal.RollModel
        self.design = design
        self.policy = policy
        self.templates = dict(templates)
        self.version = str(version)
        self.language = language
        self.features: list[str] = list(getattr(model, "feature_names_", []))
        # the path internals (checked in full by `checked_path_table` on every call)
        self.supported = hasattr(model, "encoder_") and hasattr(model, "booster_")
        self._columns: list[tuple[str, dict[str, int] | None]] = []
        if self.supported:
            encoder = model.encoder_
            categories = getattr(encoder, "categories_", {})
            for name in self.features:
                lookup = (
                    {v: i for i, v in enumerate(categories[name])} if name in categories else None
                )
                self._columns.append((name, lookup))
        self._codes = [reason_code(f) for f in self.features]

    def _table(self) -> PathTable | None:
        """The model's path table if the batch path has already checked it, else None."""
        return checked_path_table(self.model) if self.supported else None

    @property
    def ready(self) -> bool:
        return self._table() is not None

    def encode(self, rows: Sequence[OnlineRow]) -> np.ndarray:
        """rows x features float64 codes, as `FeatureEncoder.codes` gives them."""
        nan = math.nan
        out = np.empty((len(rows), len(self._columns)), dtype=np.float64)
        for i, row in enumerate(rows):
            feats = row.features
            values = []
            for name, lookup in self._columns:
                v = feats.get(name)
                if lookup is None:
                    values.append(nan if v is None else float(v))
                else:
                    values.append(lookup.get(v, nan) if isinstance(v, str) else nan)
            out[i] = values
        treatment = getattr(self.model.encoder_, "treatment_", None)
        if treatment:  # the counterfactual arm, as `FeatureEncoder.codes` appends it
            out = np.column_stack(
                [out, np.full(len(rows), float(self.model.encoder_.counterfactual_))]
            )
        return out

    def score(self, rows: Sequence[OnlineRow]) -> list[dict[str, Any]] | None:
        """One prediction dict per row, in order; None when only the batch path can score them.

        Each dict: obligation_id, cut_date (date), eligible, probability (None when ineligible),
        decision, capacity_limited, the four estimates (p_roll_no_action, p_roll_action,
        roll_loss, expected_benefit), reasons (rank, code, text, contribution), arm and the
        model_version that decided the row.
        """
        table = self._table()
        if table is None:
            return None
        n = len(rows)
        eligible = np.fromiter((bool(r.eligible) for r in rows), dtype=bool, count=n)
        cuts = [r.cut_date for r in rows]
        other = self.challenger
        if self.design is None:
            arm = np.full(n, CHAMPION, dtype=object)
        else:
            ids = [str(r.obligation_id) for r in rows]
            days = np.array(cuts, dtype="datetime64[D]")
            arm = assign_arms(ids, days, eligible, self.design, other is not None)
        routed = arm == CHALLENGER
        other_table = other._table() if routed.any() else None
        if routed.any() and other_table is None:
            return None
        mine = eligible & ~routed
        probability, contrib, codes = self._probability(table, rows, mine)
        estimates = self._estimates(rows, mine, codes)
        if estimates is None:
            return None
        if other_table is not None:
            p_other, c_other, codes_other = other._probability(other_table, rows, routed)
            e_other = other._estimates(rows, routed, codes_other)
            if e_other is None:
                return None
            probability = np.where(routed, p_other, probability)
            estimates = {k: np.where(routed, e_other[k], v) for k, v in estimates.items()}
        holdout = arm == HOLDOUT
        benefit = estimates["expected_benefit"]
        decision, limited = decide_per_cut(benefit, eligible, cuts, self.policy, holdout=holdout)
        reasons = self._reasons(rows, mine, contrib, decision, limited, holdout)
        if other_table is not None:
            theirs = other._reasons(rows, routed, c_other, decision, limited, holdout)
            reasons = [theirs[i] if routed[i] else reasons[i] for i in range(n)]
        out = []
        for i, r in enumerate(rows):
            p = float(probability[i])
            if eligible[i] and not holdout[i]:  # the decision's own reason first
                code, text = decision_reason(
                    decision[i] == ASSIGN,
                    bool(limited[i]),
                    probability[i],
                    estimates["p_roll_no_action"][i],
                    estimates["p_roll_action"][i],
                    estimates["roll_loss"][i],
                    self.policy.collection_action,
                    self.language,
                    policy=self.policy,
                )
                rule = {"rank": 1, "code": code, "text": text, "contribution": None}
                reasons[i] = [rule] + [
                    {**x, "rank": x["rank"] + 1} for x in reasons[i][: N_REASONS - 1]
                ]
            out.append(
                {
                    "obligation_id": str(r.obligation_id),
                    "cut_date": r.cut_date,
                    "eligible": bool(eligible[i]),
                    "probability": p if math.isfinite(p) else None,
                    "decision": str(decision[i]),
                    "capacity_limited": bool(limited[i]),
                    **{
                        name: (float(v[i]) if math.isfinite(float(v[i])) else None)
                        for name, v in estimates.items()
                    },
                    "reasons": reasons[i],
                    "arm": str(arm[i]),
                    "model_version": other.version if routed[i] else self.version,
                }
            )
        return out

    def _probability(
        self, table: PathTable, rows: Sequence[OnlineRow], eligible: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Self-cure probability and contributions of the eligible rows, and their codes."""
        n = len(rows)
        probability = np.full(n, np.nan)
        n_features = len(self.features)
        contrib = np.zeros((n, n_features), dtype=np.float32)
        elig_rows = np.flatnonzero(eligible)
        if not len(elig_rows):
            return probability, contrib, None
        codes = self.encode([rows[i] for i in elig_rows])
        c, raw = table.contributions(self.model.booster_, codes)
        c = c[:, :n_features]
        probability[elig_rows] = np.asarray(self.model.calibrator_.transform(raw), dtype=np.float64)
        contrib = np.zeros((n, c.shape[1]), dtype=c.dtype)
        contrib[elig_rows] = c
        return probability, contrib, codes

    def _estimates(
        self, rows: Sequence[OnlineRow], eligible: np.ndarray, codes: np.ndarray | None
    ) -> dict[str, np.ndarray] | None:
        """The roll risks, the roll loss and the expected benefit (None without a roll model)."""
        n = len(rows)
        p_no, p_act = np.full(n, np.nan), np.full(n, np.nan)
        if codes is not None:
            if self.roll is None:
                return None
            elig_rows = np.flatnonzero(eligible)
            p_no[elig_rows], p_act[elig_rows] = predict_codes(
                self.roll, codes[:, : len(self.features)], self.model.encoder_.categories_
            )
        balance = np.fromiter(
            (_amount(r.features.get(EXPOSURE)) for r in rows), dtype=np.float64, count=n
        )
        loss = roll_loss(balance, [r.features.get("product") for r in rows], self.policy.costs)
        return {
            "p_roll_no_action": p_no,
            "p_roll_action": p_act,
            "roll_loss": loss,
            "expected_benefit": expected_benefit(p_no, p_act, loss, self.policy.costs),
        }

    def _reasons(
        self,
        rows: Sequence[OnlineRow],
        eligible: np.ndarray,
        contrib: np.ndarray,
        decision: np.ndarray,
        limited: np.ndarray,
        holdout: np.ndarray,
    ) -> list[list[dict[str, Any]]]:
        """Each row's reasons before the decision's own: the model's strongest contributions in
        the decision's direction, no active mandate, or the control group."""
        elig_rows = np.flatnonzero(eligible)
        if len(elig_rows):
            idx, val = top_reasons(contrib[elig_rows], (decision == NO_ASSIGN)[elig_rows])
        out: list[list[dict[str, Any]]] = []
        pos = 0
        integer_columns: dict[str, bool] = {}
        for i, r in enumerate(rows):
            reasons: list[dict[str, Any]] = []
            if not eligible[i]:
                text = NO_ACTIVE_MANDATE_TEXTS[self.language]
                out.append(
                    [{"rank": 1, "code": NO_ACTIVE_MANDATE, "text": text, "contribution": None}]
                )
                continue
            for k in range(N_REASONS):
                j = int(idx[pos, k])
                if j < 0:
                    continue
                name = self.features[j]
                if name not in integer_columns:
                    integer_columns[name] = integer_column([x.features.get(name) for x in rows])
                value = float(val[pos, k])
                reasons.append(
                    {
                        "rank": k + 1,
                        "code": self._codes[j],
                        "text": self._text(name, r.features.get(name), integer_columns[name]),
                        "contribution": value if math.isfinite(value) else None,
                    }
                )
            pos += 1
            # the model did not decide a holdout row: the control group is its reason
            out.append([_control_group(self.language)] if holdout[i] else reasons)
        return out

    def _text(self, name: str, value: Any, integer: bool) -> str:
        """The batch's text for this value: floats rounded to a few significant digits first."""
        if value is None or isinstance(value, str) or integer:
            shown = value
        else:
            shown = float(significant(np.array([float(value)]))[0])
        return format_reason(name, shown, self.templates.get(name), self.language)


def _control_group(language: str) -> dict[str, Any]:
    text = CONTROL_GROUP_TEXTS[language]
    return {"rank": 1, "code": CONTROL_GROUP, "text": text, "contribution": None}


def integer_column(values: Sequence[Any]) -> bool:
    """Whether these values of one feature make an int64 column (no null, no float, no bool)."""
    return all(type(v) is int and -(2**63) <= v < 2**63 for v in values)


def _amount(value: Any) -> float:
    if value is None or isinstance(value, str):
        return math.nan
    return float(value)
