"""`/v1/predict`: online scoring of obligations given their features, exactly as the batch does.

Small requests are scored in the event loop by `cobranza.decision.online.OnlineScorer` (no pandas,
no thread hop); large ones, and any model the fast path cannot reproduce, by `score_frame` through
the micro-batcher. Both give the same probabilities, roll risks, expected benefits, decisions and
reasons.
"""

from __future__ import annotations

import asyncio
import math
import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from cobranza.api.champion import NoChampion
from cobranza.api.deps import Services, guard, services
from cobranza.api.redaction import REDACTED, redact
from cobranza.api.results import ESTIMATES, row_view
from cobranza.api.schemas import DecisionCosts, PredictRequest, PredictResponse, Problem
from cobranza.decision.online import MAX_ROWS as ONLINE_MAX_ROWS
from cobranza.decision.online import OnlineRow
from cobranza.decision.policy import Policy
from cobranza.errors import CobranzaError
from cobranza.labels import distinct_reasons
from cobranza.transforms.schema import NON_FEATURES

router = APIRouter(prefix="/v1/predict", tags=["predict"])
INLINE_ROWS = 8  # scored in the event loop: about 1 ms of CPU at most


def _finite_number(value: Any) -> bool:
    """A number a float64 can hold (an integer too large for one is refused, not a 500)."""
    try:
        return not isinstance(value, str) and math.isfinite(value)
    except (OverflowError, TypeError):
        return False


_NAME_SHOWN = 40  # characters of an unknown feature name repeated in a 422
_NAMES_SHOWN = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def _shown(name: str) -> str:
    """An unknown feature name as the 422 repeats it: the caller needs it to fix the call, but it
    is their input, so it is masked (e-mail, document shapes: `[redacted]`), every character
    but `A-Za-z0-9_.-` becomes `?`, and it is cut to 40 characters."""
    safe = REDACTED.join(_UNSAFE.sub("?", part) for part in redact(name).split(REDACTED))
    return safe if len(safe) <= _NAME_SHOWN else safe[:_NAME_SHOWN] + "..."


def _names(unknown: list[str]) -> str:
    shown = ", ".join(_shown(n) for n in unknown[:_NAMES_SHOWN])
    more = len(unknown) - _NAMES_SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")


def needed_by(loaded: Any) -> dict[str, str]:
    """Who needs each feature of a request, as a 422 names it: the champion, the challenger that
    decides the CHALLENGER arm, or both, each with its version (a request carries both models'
    features: the arm is drawn from the obligation, not from what the caller sends)."""
    champion = f"the champion (version {loaded.version})"
    ours = set(loaded.champion.features)
    challenger = loaded.challenger
    theirs = set() if challenger is None else set(challenger.features)
    other = "" if challenger is None else f"the challenger (version {challenger.version})"
    owners = {}
    for f in loaded.features:
        if f in ours and f in theirs:
            owners[f] = f"{champion} and {other} need"
        elif f in theirs:
            owners[f] = f"{other} needs"
        else:
            owners[f] = f"{champion} needs"
    return owners


def _check(body: PredictRequest, loaded: Any) -> list[dict]:
    """Every problem with the given features, as FastAPI validation errors (loc, msg, type)."""
    features, categorical = loaded.features, loaded.categorical
    problems: list[dict] = []
    wanted = set(features)
    owners: dict[str, str] | None = None

    def problem(i: int, msg: str, name: str | None = None) -> None:
        loc: list[str | int] = ["body", "obligations", i, "features"]
        problems.append({"loc": loc + ([name] if name else []), "msg": msg, "type": "value_error"})

    for i, ob in enumerate(body.obligations):
        missing = [f for f in features if f not in ob.features]
        unknown = sorted(k for k in ob.features if k not in wanted and k not in NON_FEATURES)
        if missing:
            owners = owners or needed_by(loaded)
            by_owner: dict[str, list[str]] = {}
            for name in missing:
                by_owner.setdefault(owners[name], []).append(name)
            for owner, names in by_owner.items():
                problem(i, f"missing feature(s) {owner}: {', '.join(names)}")
        if unknown:
            problem(i, f"unknown feature(s): {_names(unknown)}")
        for name in features:
            value = ob.features.get(name)
            if value is None:
                continue
            if name in categorical and not isinstance(value, str):
                problem(i, "categorical feature: give a string (or null)", name)
            elif name not in categorical and not _finite_number(value):
                problem(i, "numeric feature: give a finite number (or null)", name)
        if len(problems) >= 20:
            break
    return problems


@router.post(
    "",
    response_model=PredictResponse,
    summary="Score obligations online with the champion model and policy",
    description="Same models, policy (NO_ASSIGN iff the expected benefit of managing is "
    "negative, capacity per cut) and reason codes as batch scoring "
    "(`cobranza.decision.scoring.score_frame`): each prediction carries the self-cure "
    "probability, the roll risks without and with management, the roll loss and the expected "
    "benefit, under the costs the response names. The model is cached and reloaded when "
    "the champion alias moves. Up to 1000 obligations per call. Small calls are scored by a "
    "NumPy path equal to the batch (`cobranza.decision.online`); larger ones by `score_frame`, "
    "concurrent calls together in one batch (micro-batching), each getting its own rows back.",
    **guard(
        "viewer",
        {503: {"model": Problem, "description": "No champion model is available."}},
    ),
)
async def predict(body: PredictRequest, svc: Services = Depends(services)):
    loaded = svc.champion.current()
    if loaded is None:
        try:
            loaded = await run_in_threadpool(svc.champion.get)  # the first load takes seconds
        except NoChampion as exc:
            raise HTTPException(503, str(exc)) from None
    problems = _check(body, loaded)
    if problems:
        raise HTTPException(422, problems)
    today = None
    rows = []
    for ob in body.obligations:
        cut = ob.cut_date or today or (today := date.today())
        rows.append(OnlineRow(ob.obligation_id, cut, ob.eligible, ob.features))
    # Up to ONLINE_MAX_ROWS: the NumPy path; a few rows right here (a quarter of a millisecond
    # each: a thread hop would cost more than it saves), more in the thread pool so that the event
    # loop keeps serving others. Larger calls, or a model the fast path cannot reproduce: the
    # batch path in the micro-batcher's thread.
    predictions = None
    if len(rows) <= ONLINE_MAX_ROWS and loaded.online is not None:
        try:
            if len(rows) <= INLINE_ROWS:
                predictions = loaded.online.score(rows)
            else:
                predictions = await run_in_threadpool(loaded.online.score, rows)
        except CobranzaError as exc:  # as the batch path answers the same problem
            raise HTTPException(422, str(exc)) from None
    if predictions is None:
        predictions = await _batch(svc, loaded, rows)
    for pred in predictions:
        pred["cut_date"] = pred["cut_date"].isoformat()
        pred["reasons"] = distinct_reasons(pred["reasons"])  # each once, as /v1/scores lists them
    return JSONResponse(
        {
            "model_version": loaded.version,
            "costs": policy_costs(loaded.policy),
            "predictions": predictions,
        }
    )


def policy_costs(policy: Policy) -> dict[str, Any]:
    """The costs of a `Policy` as `schemas.DecisionCosts`."""
    data = policy.to_dict()
    return {name: data[name] for name in DecisionCosts.model_fields}


async def _batch(svc: Services, loaded: Any, rows: list[OnlineRow]) -> list[dict[str, Any]]:
    """Through `score_frame` (micro-batched with concurrent calls), as prediction dicts."""
    records: list[dict[str, Any]] = []
    for row in rows:
        rec = {k: v for k, v in row.features.items() if k not in NON_FEATURES}
        rec.update(obligation_id=row.obligation_id, cut_date=row.cut_date, eligible=row.eligible)
        records.append(rec)
    try:
        scored = await asyncio.wrap_future(svc.batcher.submit(loaded, records))
    except CobranzaError as exc:
        raise HTTPException(422, str(exc)) from None
    predictions = []
    for row, record in zip(scored.to_dict("records"), records, strict=True):
        view = row_view(row)
        predictions.append(
            {
                "obligation_id": view["obligation_id"],
                "cut_date": record["cut_date"],
                "eligible": bool(view["eligible"]),
                "probability": view["probability"],
                "decision": view["decision"],
                "capacity_limited": bool(view["capacity_limited"]),
                **{name: view[name] for name in ESTIMATES},
                "reasons": view["reasons"],
                "arm": view["arm"],
                "model_version": view["model_version"],
            }
        )
    return predictions
