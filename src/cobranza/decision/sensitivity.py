"""How the decisions' value depends on the costs: the benefit-threshold curve and a cost grid.

Curve: sorting the eligible rows by expected benefit of managing, the k with the smallest benefit
are NO_ASSIGN, the rest ASSIGN; k = 0 is "assign everyone" (the bank's current rule), k = n
"assign no one with a mandate", and the policy (NO_ASSIGN iff benefit < 0) one point between.
Cost per obligation for every k from two cumulative sums (expected with the model's
probabilities; with the simulator's truth, also with the true ones).

Grid: the provision steps and the collection action scaled by factors. For every pair, the net
savings against assigning everyone of (a) today's decisions valued under those costs, and (b) the
policy re-decided under them. Today's decisions' savings are linear in each parameter, so their
break-even has a closed form: with Δ = p_roll_no_action - p_roll_action and stake =
outstanding_balance x provision_step, over the NO_ASSIGN rows,

    savings(m) = Σ (action - Δ x (m x stake + later_collection_cost))   (steps scaled by m)
    m* = Σ (action - Δ x later_collection_cost) / Σ (Δ x stake)
    action* = Σ Δ x roll_loss / #NO_ASSIGN

(the true probabilities when the simulator's truth is there, else the model's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cobranza.config import Costs
from cobranza.decision.estimates import Estimates

PROVISION_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
ACTION_FACTORS = (0.5, 1.0, 2.0)


def _costs_by_k(
    b: np.ndarray, p_no: np.ndarray, p_act: np.ndarray, loss: np.ndarray, action: float
) -> np.ndarray:
    """Total cost when the k rows of smallest benefit are NO_ASSIGN, k = 0..n."""
    order = np.argsort(b, kind="stable")
    c_no = (p_no * loss)[order]
    c_assign = (action + p_act * loss)[order]
    return np.r_[0.0, np.cumsum(c_no)] + (c_assign.sum() - np.r_[0.0, np.cumsum(c_assign)])


def threshold_curve(
    est: Estimates, costs: Costs, p_true: np.ndarray | None = None
) -> dict[str, Any]:
    """Cost per obligation against the share left to the debit, ordered by expected benefit."""
    b = est.expected_benefit
    n = len(b)
    action = float(costs.collection_action)
    expected = _costs_by_k(b, est.p_roll_no_action, est.p_roll_action, est.roll_loss, action)
    true = None
    if p_true is not None:
        p0, p1 = np.asarray(p_true[0], dtype=np.float64), np.asarray(p_true[1], dtype=np.float64)
        known = ~(np.isnan(p0) | np.isnan(p1))
        if known.all():
            true = _costs_by_k(b, p0, p1, est.roll_loss, action)
    k_policy = int((b < 0).sum())
    judged = true if true is not None else expected
    per = max(n, 1)
    return {
        "share": np.arange(n + 1) / per,
        "expected": expected / per,
        "true": None if true is None else true / per,
        "k_policy": k_policy,
        "n": n,
        "beats_both_extremes": bool(
            n > 0 and judged[k_policy] < judged[0] and judged[k_policy] < judged[n]
        ),
        "valued_with": "truth" if true is not None else "model",
    }


def cost_chart(curve: dict[str, Any], out: Path) -> Path:
    """The curve, the policy and both extremes marked."""
    import matplotlib  # only the charts need it (about a second to import)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    share, k = curve["share"], curve["k_policy"]
    ax.plot(
        share, curve["expected"], lw=1.4, ls="--", label="expected cost (model's probabilities)"
    )
    if curve["true"] is not None:
        ax.plot(share, curve["true"], lw=1.8, label="cost under the true outcomes (simulator)")
    judged = curve["true"] if curve["true"] is not None else curve["expected"]
    ax.scatter([0], [judged[0]], color="grey", zorder=3, label="assign everyone (current rule)")
    ax.scatter([1], [judged[-1]], color="black", zorder=3, label="assign no one with a mandate")
    ax.scatter(
        [share[k]], [judged[k]], color="red", zorder=4, label="policy: NO_ASSIGN iff benefit < 0"
    )
    ax.set_xlabel(
        "share of eligible obligations left to the debit (smallest benefit of managing first)"
    )
    ax.set_ylabel("cost per obligation (COP)")
    ax.set_title("Cost against the benefit threshold")
    return _save(fig, ax, out, legend_size=8)


def _save(fig: Any, ax: Any, out: Path, legend_size: int) -> Path:
    """Legend, grid, layout, the PNG written, the figure closed."""
    import matplotlib.pyplot as plt

    ax.legend(fontsize=legend_size, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _savings(no_assign, p0, p1, stake, later: float, m: float, action: float) -> float:
    """Net savings against assigning everyone of a NO_ASSIGN set, steps scaled by m."""
    loss = m * stake + later
    return float((action - (p0 - p1) * loss)[no_assign].sum())


def sensitivity_grid(
    est: Estimates, no_assign: np.ndarray, costs: Costs, p_true: np.ndarray | None = None
) -> dict[str, Any]:
    """Net savings over the grid of provision and action factors, and today's break-evens."""
    later = float(costs.later_collection_cost)
    action = float(costs.collection_action)
    stake = est.roll_loss - later
    m0, m1 = est.p_roll_no_action, est.p_roll_action
    v0, v1 = (m0, m1) if p_true is None else (np.asarray(p_true[0]), np.asarray(p_true[1]))
    na = np.asarray(no_assign, dtype=bool)
    rows = []
    for m in PROVISION_FACTORS:
        for a in ACTION_FACTORS:
            redecided = (m0 - m1) * (m * stake + later) < a * action
            rows.append(
                {
                    "provision_factor": m,
                    "collection_action": a * action,
                    "todays_decisions_net_savings": round(
                        _savings(na, v0, v1, stake, later, m, a * action), 2
                    ),
                    "redecided_net_savings": round(
                        _savings(redecided, v0, v1, stake, later, m, a * action), 2
                    ),
                    "redecided_no_assign_share": round(float(redecided.mean()), 6)
                    if len(na)
                    else 0.0,
                }
            )
    delta = (v0 - v1)[na]
    denominator = float((delta * stake[na]).sum())
    numerator = float((action - delta * later).sum())
    return {
        "valued_with": "model" if p_true is None else "truth",
        "grid": rows,
        "break_even": {
            "provision_factor": round(numerator / denominator, 4) if denominator > 0 else None,
            "collection_action": round(float((delta * est.roll_loss[na]).sum()) / int(na.sum()), 2)
            if na.any()
            else None,
        },
    }


def sensitivity_chart(grid: dict[str, Any], out: Path) -> Path:
    """Net savings against the provision factor, one line per collection action."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for a in sorted({r["collection_action"] for r in grid["grid"]}):
        rows = [r for r in grid["grid"] if r["collection_action"] == a]
        x = [r["provision_factor"] for r in rows]
        ax.plot(
            x,
            [r["todays_decisions_net_savings"] for r in rows],
            marker="o",
            label=f"today's decisions, action {a:,.0f}",
        )
        ax.plot(
            x,
            [r["redecided_net_savings"] for r in rows],
            ls="--",
            marker=".",
            label=f"re-decided, action {a:,.0f}",
        )
    ax.axhline(0, color="grey", lw=1)
    be = grid["break_even"]["provision_factor"]
    if be is not None:
        ax.axvline(be, color="red", lw=1, label=f"break-even provision factor {be:.2f}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("provision steps scaled by")
    ax.set_ylabel(
        f"net savings against assigning everyone (COP, valued with {grid['valued_with']})"
    )
    return _save(fig, ax, out, legend_size=7)
