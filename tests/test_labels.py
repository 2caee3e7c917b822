"""The words people read for each code: complete for the contract's codes, Spanish by default."""

from __future__ import annotations

import pytest

from cobranza.labels import (
    CONTRACT_CODES,
    KINDS,
    LANGUAGES,
    codes,
    distinct_reasons,
    label,
    labels,
)


def test_every_contract_code_has_words_in_both_languages():
    for kind, contract_codes in CONTRACT_CODES.items():
        assert set(codes(kind)) == set(contract_codes), kind
    for lang in LANGUAGES:
        mapping = labels(lang)
        assert set(mapping) == set(KINDS)
        for kind, words in mapping.items():
            assert all(w and w.strip() == w for w in words.values()), (kind, lang)


def test_spanish_is_the_default_and_english_is_available():
    assert label("product", "CONSUMER_LOAN") == "Crédito de consumo"
    assert label("product", "CONSUMER_LOAN", "en") == "Consumer loan"
    assert label("segment", "AFFLUENT") == "Preferencial"
    assert label("monitoring_status", "INSUFFICIENT_DATA") == "Datos insuficientes"
    assert label("arm", "HOLDOUT") == "Grupo de control — no contactar"
    assert label("eligible", False) == "Sin débito automático"
    assert label("eligible", True, "en") == "With automatic debit"


def test_unknown_codes_show_as_themselves_and_none_stays_none():
    assert label("product", "LEASING") == "LEASING"
    assert label("segment", None) is None
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        label("product", "CREDIT_CARD", "fr")


def test_a_reason_is_listed_once_by_code_or_by_text():
    reasons = [
        {"code": "A", "text": "sin intentos de débito en 3 meses"},
        {"code": "B", "text": "sin intentos de débito en 3 meses"},  # same words
        {"code": "A", "text": "otra"},  # same code
        {"code": "C", "text": None},
        {"code": "D", "text": "algo distinto"},
    ]
    assert [r["code"] for r in distinct_reasons(reasons)] == ["A", "C", "D"]
