"""Words for the codes people read: products, segments, decisions, statuses, in Spanish and English.

The one mapping every surface a person reads goes through: the dashboard (served as JSON by
`api/routers/dashboard.py`), the people's CSV of `/v1/scores` (`api/results.py`) and so the n8n
worklist, the BI dimensions (`lake/bi.py`) and the monitoring report. Codes stay the keys of the
data; only what is shown changes. An unknown code is shown as itself, never dropped.

Spanish is the collections team's language and the default; English stays available
(`?lang=en` on the API, the dashboard's language switch).
"""

from __future__ import annotations

from typing import Any, Literal

from cobranza.contract import ARMS, PRODUCTS, SEGMENTS

Language = Literal["es", "en"]
LANGUAGES: tuple[Language, ...] = ("es", "en")
DEFAULT_LANGUAGE: Language = "es"

# kind -> code -> (Spanish, English)
_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "product": {
        "CONSUMER_LOAN": ("Crédito de consumo", "Consumer loan"),
        "CREDIT_CARD": ("Tarjeta de crédito", "Credit card"),
        "VEHICLE": ("Crédito de vehículo", "Vehicle loan"),
        "MORTGAGE": ("Crédito hipotecario", "Mortgage"),
        "MICROCREDIT": ("Microcrédito", "Microcredit"),
    },
    "segment": {
        "MASS": ("Masivo", "Mass"),
        "AFFLUENT": ("Preferencial", "Affluent"),
        "PREMIUM": ("Premium", "Premium"),
        "SME": ("Pyme", "SME"),
    },
    "decision": {
        "ASSIGN": ("Gestionar", "Assign"),
        "NO_ASSIGN": ("No gestionar (gestionar no paga)", "Do not assign (managing does not pay)"),
    },
    # overall and per-feature status of a monitoring run
    "monitoring_status": {
        "OK": ("Estable", "Stable"),
        "WARN": ("Vigilar", "Watch"),
        "ALERT": ("Alerta", "Alert"),
        "INSUFFICIENT_DATA": ("Datos insuficientes", "Insufficient data"),
        "NO_DATA": ("Sin datos", "No data"),
    },
    "job_status": {
        "queued": ("En cola", "Queued"),
        "running": ("En ejecución", "Running"),
        "succeeded": ("Terminado", "Succeeded"),
        "failed": ("Falló", "Failed"),
        "cancelled": ("Cancelado", "Cancelled"),
        "interrupted": ("Interrumpido", "Interrupted"),
    },
    "job_type": {
        "ingest": ("Ingesta", "Ingest"),
        "etl": ("Transformación (ETL)", "ETL"),
        "train": ("Entrenamiento", "Training"),
        "score": ("Scoring", "Scoring"),
        "pipeline": ("Proceso completo", "Pipeline"),
        "monitor": ("Monitoreo", "Monitoring"),
        "prune": ("Limpieza de versiones", "Prune"),
    },
    # bi.fact_outcomes.outcome: what an obligation's horizon showed, whatever the decision
    "outcome": {
        "cured_by_debit": ("Se curó con el débito automático", "Cured by the automatic debit"),
        "cured_otherwise": ("Se curó por otro canal", "Cured through another channel"),
        "not_cured": ("Siguió en mora temprana (1-30)", "Still 1-30 days past due"),
        "rolled_31_plus": ("Rodó a 31+ días", "Rolled to 31+ days"),
        "not_rolled": (
            "No rodó (sin dato de otros pagos)",
            "Did not roll (other payments unknown)",
        ),
    },
    # the contract's collection_assignments.arm (version 2)
    "arm": {
        "ASSIGNED": ("Asignada a gestión", "Assigned"),
        "HOLDOUT": ("Grupo de control — no contactar", "Control group — do not contact"),
        "RULE": ("No asignada por regla del banco", "Not assigned by a bank rule"),
        # the scoring arms of decision.experiment (HOLDOUT is the same control group)
        "CHAMPION": ("Modelo campeón", "Champion model"),
        "CHALLENGER": ("Modelo retador", "Challenger model"),
    },
    "scored_period": {
        "training": ("Entrenamiento (dentro de muestra)", "Training (in-sample)"),
        "out_of_time": ("Fuera de tiempo", "Out of time"),
        "after_training": ("Posterior al entrenamiento", "After training"),
    },
    "eligible": {
        "true": ("Con débito automático", "With automatic debit"),
        "false": ("Sin débito automático", "No automatic debit"),
    },
}
KINDS = tuple(_WORDS)
# the scoring arms of decision.experiment besides HOLDOUT (named here too: this module stays light)
SCORING_ARMS = ("CHAMPION", "CHALLENGER")
# the contract's own code lists (and the results' arms), for the test that every code has its words
CONTRACT_CODES = {"product": PRODUCTS, "segment": SEGMENTS, "arm": (*ARMS, *SCORING_ARMS)}


def check_language(lang: str | None) -> Language:
    if lang is None:
        return DEFAULT_LANGUAGE
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; use one of {', '.join(LANGUAGES)}")
    return lang  # type: ignore[return-value]


def _key(kind: str, code: Any) -> str:
    if kind == "eligible" and isinstance(code, bool):
        return "true" if code else "false"
    return str(code)


def label(kind: str, code: Any, lang: str | None = None) -> str | None:
    """The words for `code` of `kind` in `lang`; the code itself when it has none; None for None."""
    if code is None:
        return None
    words = _WORDS[kind].get(_key(kind, code))
    if words is None:
        return str(code)
    return words[LANGUAGES.index(check_language(lang))]


def labels(lang: str | None = None) -> dict[str, dict[str, str]]:
    """Every kind's mapping in one language (the dashboard loads it once)."""
    i = LANGUAGES.index(check_language(lang))
    return {kind: {code: w[i] for code, w in words.items()} for kind, words in _WORDS.items()}


def codes(kind: str) -> tuple[str, ...]:
    return tuple(_WORDS[kind])


def distinct_reasons(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reasons in order without repeats: a reason whose code or text already appeared is dropped.

    Two features can read the same in words (two debit counts that are both missing read "no
    debit attempts in the last 3 months"); a person should read it once.
    """
    seen: set[str] = set()
    out = []
    for reason in reasons:
        keys = {f"code:{reason.get('code')}"}
        if reason.get("text"):
            keys.add(f"text:{reason['text']}")
        if keys & seen:
            continue
        seen |= keys
        out.append(reason)
    return out
