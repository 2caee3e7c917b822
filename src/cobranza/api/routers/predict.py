"""`/v1/predict`: online scoring of obligations given their features, exactly as the batch does."""

from __future__ import annotations

import asyncio
import math
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from cobranza.api.champion import NoChampion
from cobranza.api.deps import Services, guard, services
from cobranza.api.results import row_view
from cobranza.api.schemas import PredictRequest, PredictResponse, Problem
from cobranza.errors import CobranzaError
from cobranza.transforms.schema import NON_FEATURES

router = APIRouter(prefix="/v1/predict", tags=["predict"])


def _check(body: PredictRequest, features: list[str], categorical: set[str]) -> list[dict]:
    """Every problem with the given features, as FastAPI validation errors (loc, msg, type)."""
    problems: list[dict] = []
    wanted = set(features)

    def problem(i: int, msg: str, name: str | None = None) -> None:
        loc: list[str | int] = ["body", "obligations", i, "features"]
        problems.append({"loc": loc + ([name] if name else []), "msg": msg, "type": "value_error"})

    for i, ob in enumerate(body.obligations):
        missing = [f for f in features if f not in ob.features]
        unknown = sorted(k for k in ob.features if k not in wanted and k not in NON_FEATURES)
        if missing:
            problem(i, f"missing feature(s) the champion needs: {', '.join(missing)}")
        if unknown:
            problem(i, f"unknown feature(s): {', '.join(unknown)}")
        for name in features:
            value = ob.features.get(name)
            if value is None:
                continue
            if name in categorical and not isinstance(value, str):
                problem(i, "categorical feature: give a string (or null)", name)
            elif name not in categorical and (
                isinstance(value, str) or (isinstance(value, float) and not math.isfinite(value))
            ):
                problem(i, "numeric feature: give a finite number (or null)", name)
        if len(problems) >= 20:
            break
    return problems


@router.post(
    "",
    response_model=PredictResponse,
    summary="Score obligations online with the champion model and policy",
    description="Same model, policy (threshold, capacity per cut) and reason codes as batch "
    "scoring (`cobranza.decision.scoring.score_frame`). The model is cached and reloaded when "
    "the champion alias moves. Up to 1000 obligations per call. Concurrent calls are scored "
    "together in one batch (micro-batching), each getting its own rows back.",
    **guard(
        "viewer",
        {503: {"model": Problem, "description": "No champion model is available."}},
    ),
)
async def predict(body: PredictRequest, svc: Services = Depends(services)):
    try:
        loaded = await run_in_threadpool(svc.champion.get)  # the first load may take seconds
    except NoChampion as exc:
        raise HTTPException(503, str(exc)) from None
    problems = _check(body, loaded.features, loaded.categorical)
    if problems:
        raise HTTPException(422, problems)
    records: list[dict[str, Any]] = []
    for ob in body.obligations:
        rec = {k: v for k, v in ob.features.items() if k not in NON_FEATURES}
        rec.update(
            obligation_id=ob.obligation_id,
            cut_date=ob.cut_date or date.today(),
            eligible=ob.eligible,
        )
        records.append(rec)
    try:
        scored = await asyncio.wrap_future(svc.batcher.submit(loaded, records))
    except CobranzaError as exc:
        raise HTTPException(422, str(exc)) from None
    predictions = []
    for row in scored.to_dict("records"):
        view = row_view(row)
        predictions.append(
            {
                "obligation_id": view["obligation_id"],
                "cut_date": view["cut_date"],
                "eligible": bool(view["eligible"]),
                "probability": view["probability"],
                "decision": view["decision"],
                "capacity_limited": bool(view["capacity_limited"]),
                "reasons": view["reasons"],
            }
        )
    threshold = loaded.policy.threshold
    return JSONResponse(
        {
            "model_version": loaded.version,
            "threshold": threshold if math.isfinite(threshold) else None,
            "predictions": predictions,
        }
    )
