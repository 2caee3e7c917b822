"""Reason codes rank the model's contributions in the decision's direction, in batch."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cobranza.decision.reasons import format_reason, reason_code, reason_columns, top_reasons

FEATURES = ["debit_success_rate_3m", "days_past_due", "payroll_lag_days", "segment"]


def test_direction_and_ranking_on_a_hand_built_matrix():
    c = np.array(
        [
            [0.9, -0.2, 0.4, 0.1],  # NO_ASSIGN: positives descending -> 0, 2, 3
            [0.9, -0.2, 0.4, -0.7],  # ASSIGN: negatives, most negative first -> 3, 1, none
            [0.5, 0.3, -0.1, 0.2],  # NO_ASSIGN: 0, 1, 3
            [0.1, 0.2, 0.3, 0.4],  # ASSIGN with nothing pushing down -> no reasons
        ]
    )
    no_assign = np.array([True, False, True, False])
    idx, val = top_reasons(c, no_assign)
    assert idx.tolist() == [[0, 2, 3], [3, 1, -1], [0, 1, 3], [-1, -1, -1]]
    np.testing.assert_allclose(val[0], [0.9, 0.4, 0.1])
    np.testing.assert_allclose(val[1, :2], [-0.7, -0.2])
    assert np.isnan(val[1, 2]) and np.isnan(val[3]).all()


def test_fewer_features_than_reasons_pads_with_none():
    idx, val = top_reasons(np.array([[0.3, 0.6]]), np.array([True]))
    assert idx.tolist() == [[1, 0, -1]]
    assert np.isnan(val[0, 2])


def test_texts_from_templates_and_fallback():
    values = pd.DataFrame(
        {
            "debit_success_rate_3m": [1.0, 0.3333, 1.0, np.nan],
            "days_past_due": [3.0, 12.0, 3.0, 5.0],
            "payroll_lag_days": [2.0, 2.0, 2.0, 2.0],
            "segment": ["MASS", "SME", "MASS", None],
        }
    )
    c = np.array(
        [
            [0.9, 0.0, 0.4, 0.1],
            [-0.9, -0.5, 0.0, 0.0],
            [0.9, 0.0, 0.4, 0.1],
            [0.9, 0.0, 0.0, 0.1],
        ]
    )
    idx, val = top_reasons(c, np.array([True, False, True, True]))
    templates = {
        "debit_success_rate_3m": "{value:.0%} of the debits of the last 3 months succeeded",
        "payroll_lag_days": "payroll usually lands {value} days after the due date",
    }
    out = reason_columns(idx, val, values, FEATURES, templates)
    assert list(out["reason_1_code"]) == ["DEBIT_SUCCESS_RATE_3M"] * 4
    assert out["reason_1_text"][0] == "100% of the debits of the last 3 months succeeded"
    assert out["reason_1_text"][1] == "33% of the debits of the last 3 months succeeded"
    # a null reads as what it means (the registry's wording), never as "<feature>: no data"
    assert out["reason_1_text"][3] == "no debit attempts in the last 3 months"
    assert out["reason_2_text"][0] == "payroll usually lands 2 days after the due date"
    assert out["reason_2_code"][1] == "DAYS_PAST_DUE"
    assert out["reason_2_text"][1] == "days_past_due = 12"  # no template: fallback
    assert out["reason_3_text"][0] == "segment = Mass"  # the code in words (cobranza.labels)
    assert out["reason_3_text"][3] is None and out["reason_3_code"][3] is None
    np.testing.assert_allclose(out["reason_1_contribution"], [0.9, -0.9, 0.9, 0.9])


def test_format_reason_bad_template_falls_back():
    assert format_reason("x", 0.12345, "{missing_key}") == "x = 0.1235"
    assert format_reason("x", 3.0, "{value:d} debits") == "3 debits"
    assert reason_code("debit_success_rate_3m") == "DEBIT_SUCCESS_RATE_3M"


def test_batch_on_many_rows_matches_a_row_by_row_reference():
    rng = np.random.default_rng(3)
    c = rng.normal(size=(2000, 12))
    no_assign = rng.random(2000) < 0.5
    idx, _ = top_reasons(c, no_assign)
    for i in range(0, 2000, 97):
        signed = c[i] if no_assign[i] else -c[i]
        expected = [j for j in np.argsort(-signed)[:3] if signed[j] > 0]
        assert idx[i, : len(expected)].tolist() == expected
        assert (idx[i, len(expected) :] == -1).all()


def test_every_feature_that_can_be_null_says_what_the_null_means():
    """Features documented as nullable carry missing-value wording; unknown names fall back."""
    from cobranza.decision.reasons import format_reason
    from cobranza.transforms.features import FEATURES

    nullable = {f.name for f in FEATURES if "null" in f.meaning.lower()}
    assert nullable <= {f.name for f in FEATURES if f.missing}
    for f in FEATURES:
        if f.missing:
            assert format_reason(f.name, None, f.reason) == f.missing
            assert f.name not in f.missing  # words, not a column name
    assert format_reason("not_a_feature", float("nan"), None) == "not_a_feature: no data"
    assert (
        format_reason("days_since_debit_success", None, None)
        == "no fully successful debit in 12 months"
    )


def test_spanish_wording_covers_every_feature_with_colombian_numbers():
    from cobranza.decision.locales.es import VALUES as VALUES_ES
    from cobranza.decision.reasons import feature_templates, format_reason
    from cobranza.transforms.features import FEATURES

    es, en = feature_templates("es"), feature_templates("en")
    assert set(es) == set(en) == {f.name for f in FEATURES}
    for f in FEATURES:
        sample = "OTHER" if f.categorical else 1234.5
        text = format_reason(f.name, sample, es[f.name], "es")
        assert text and text != format_reason(f.name, sample, en[f.name], "en"), f.name
        assert "{" not in text and not re.search(rf"\b{f.name}\b", text), f.name
        if f.missing:
            missing_es = f.wording("es")[1]
            assert format_reason(f.name, None, es[f.name], "es") == missing_es != f.missing
    assert format_reason("amount_past_due", 1390000.0, es["amount_past_due"], "es") == (
        "1.390.000 pesos vencidos"
    )
    assert format_reason("balance_to_installment", 1.5, es["balance_to_installment"], "es") == (
        "el saldo cubre 1,5 cuotas"
    )
    assert format_reason("account_bank", "OTHER", es["account_bank"], "es") == (
        f"cuenta de débito en banco {VALUES_ES['account_bank']['OTHER']}"
    )
    assert format_reason("product", "CREDIT_CARD", es["product"], "es") == (
        "producto Tarjeta de crédito"
    )
    with pytest.raises(ValueError, match="unknown reason language 'fr'"):
        feature_templates("fr")


@pytest.mark.parametrize("language", ["es", "en"])
def test_products_and_segments_read_in_the_words_people_see_elsewhere(language):
    """A reason names a product or segment as the dashboard, the CSV and BI do
    (`cobranza.labels`); an unknown code reads as itself."""
    from cobranza.contract import PRODUCTS, SEGMENTS
    from cobranza.decision.reasons import feature_templates
    from cobranza.labels import label

    templates = feature_templates(language)
    for feature, codes in (("product", PRODUCTS), ("segment", SEGMENTS)):
        for code in codes:
            words = label(feature, code, language)
            text = format_reason(feature, code, templates[feature], language)
            assert text == templates[feature].format(value=words), (feature, code, text)
        assert any(label(feature, c, language) != c for c in codes)  # words, not codes
        assert format_reason(feature, "NEW_CODE", templates[feature], language).endswith(
            " NEW_CODE"
        )
    batch = reason_columns(
        np.array([[0], [0]]),
        np.array([[0.5], [0.4]]),
        pd.DataFrame({"product": ["CREDIT_CARD", "MORTGAGE"]}),
        ["product"],
        language=language,
    )
    assert list(batch["reason_1_text"]) == [
        templates["product"].format(value=label("product", c, language))
        for c in ("CREDIT_CARD", "MORTGAGE")
    ]


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", "between -33% and +22% (95% interval)"),
        ("es", "entre -33% y +22% (intervalo del 95%)"),
    ],
)
def test_an_unidentified_effect_is_the_first_reason_of_an_assigned_row(language, words):
    """The holdout does not show what management changes: ASSIGN rows say so with the interval
    as a change in the odds of rolling; NO_ASSIGN (capacity) rows keep their own reason."""
    import dataclasses

    from cobranza.config import Costs
    from cobranza.decision.policy import Policy
    from cobranza.decision.reasons import (
        CAPACITY_LIMITED,
        EFFECT_NOT_IDENTIFIED,
        MANAGEMENT_DOES_NOT_PAY,
        decision_reason,
    )

    low, high = np.log(1 - 0.33), np.log(1 + 0.22)
    policy = dataclasses.replace(
        Policy.of(Costs()), effect_identified=False, effect_low=low, effect_high=high
    )
    args = (0.4, 0.3, 0.3, 100_000.0, 8_000.0, language)
    code, text = decision_reason(True, False, *args, policy=policy)
    assert code == EFFECT_NOT_IDENTIFIED
    assert words in text
    assert decision_reason(False, True, *args, policy=policy)[0] == CAPACITY_LIMITED
    identified = dataclasses.replace(policy, effect_identified=True)
    assert decision_reason(False, False, *args, policy=identified)[0] == MANAGEMENT_DOES_NOT_PAY
    unknown = dataclasses.replace(policy, effect_low=None, effect_high=None)
    code, text = decision_reason(True, False, *args, policy=unknown)
    assert code == EFFECT_NOT_IDENTIFIED and "%" not in text


@pytest.mark.parametrize(("language", "sep"), [("en", ","), ("es", ".")])
def test_the_decisions_own_reason_names_both_roll_risks_the_loss_and_the_action(language, sep):
    """Which probabilities and costs decided an eligible row: the roll risk without and with
    management, the roll loss, the rolls prevented in pesos, the action, the self-cure."""
    from cobranza.decision.reasons import (
        MANAGEMENT_DOES_NOT_PAY,
        MANAGEMENT_PAYS,
        decision_reason,
    )

    # prevents (0.40 - 0.25) x 1,200,000 = 180,000 pesos against an 8,000 action
    code, text = decision_reason(True, False, 0.62, 0.40, 0.25, 1_200_000.0, 8_000.0, language)
    assert code == MANAGEMENT_PAYS
    for shown in ("40%", "25%", f"1{sep}200{sep}000", f"180{sep}000", f"8{sep}000", "62%"):
        assert shown in text, shown
    code, text = decision_reason(False, False, 0.9, 0.02, 0.015, 100_000.0, 8_000.0, language)
    assert code == MANAGEMENT_DOES_NOT_PAY and f"8{sep}000" in text and "2%" in text
