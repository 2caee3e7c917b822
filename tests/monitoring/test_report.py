"""The monitoring report a person reads: status in words, histograms, second test, realized
performance; one self-contained HTML file per run; the exit code of `--fail-on`."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cobranza.monitoring.drift import MIN_ROWS, feature_drift, second_test
from cobranza.monitoring.monitor import DRIFT_EXIT_CODE, exit_code, overall_status
from cobranza.monitoring.report import MonitorRun, render, status_reason, write_report


class _Page(HTMLParser):
    """Every tag with its attributes, and the text, of an HTML document."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(document: str) -> _Page:
    page = _Page()
    page.feed(document)
    return page


def frames(n_ref: int, n_cur: int, shift: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "debit_success_rate_3m": rng.uniform(0, 1, n_ref),
            "product": rng.choice(["CREDIT_CARD", "MORTGAGE"], n_ref),
        }
    )
    cur = pd.DataFrame(
        {
            "debit_success_rate_3m": np.clip(rng.uniform(0, 1, n_cur) + shift, 0, 1.5),
            "product": rng.choice(["CREDIT_CARD", "MORTGAGE", "VEHICLE"], n_cur),
        }
    )
    cur.loc[cur.index % 10 == 0, "debit_success_rate_3m"] = np.nan
    return ref, cur


def run_of(ref, cur, performance=None, seed=0) -> MonitorRun:
    features, categorical = ["debit_success_rate_3m", "product"], ["product"]
    drift = feature_drift(ref, cur, features, categorical)
    rng = np.random.default_rng(seed)
    p_ref, p_cur = rng.beta(2, 3, len(ref)), rng.beta(2, 3, len(cur))
    enough = min(len(ref), len(cur)) >= MIN_ROWS
    score = {
        "feature": "__score__",
        "psi": 0.01 if enough else None,
        "status": "OK" if enough else "INSUFFICIENT_DATA",
        **second_test(pd.Series(p_ref), pd.Series(p_cur), categorical=False),
    }
    return MonitorRun(
        run_id="20260131T101500000001",
        status=overall_status(drift, score["status"]),
        model_version="3",
        gold_version="g1",
        current_cut="2026-01-31 00:00:00",
        reference_cuts=["2025-08-31", "2025-09-30", "2025-10-31"],
        reference=ref,
        current=cur,
        features=features,
        categorical=categorical,
        drift=drift,
        score=score,
        score_reference=p_ref,
        score_current=p_cur,
        performance=performance or [],
    )


def test_insufficient_data_says_how_many_rows_against_the_minimum():
    assert status_reason("INSUFFICIENT_DATA", 5000, 48, [], "INSUFFICIENT_DATA") == (
        f"48 rows in the current cut, minimum {MIN_ROWS}"
    )
    both = status_reason("INSUFFICIENT_DATA", 60, 48, [], "INSUFFICIENT_DATA", lang="es")
    assert (
        both
        == f"48 filas en el corte actual, mínimo {MIN_ROWS}; 60 filas en la referencia, mínimo {MIN_ROWS}"
    )


def test_alert_and_warn_name_what_moved():
    drift = [
        {"feature": "a", "status": "ALERT"},
        {"feature": "b", "status": "WARN"},
        {"feature": "c", "status": "OK"},
    ]
    assert status_reason("ALERT", 500, 500, drift, "ALERT") == "PSI ≥ 0.25 in: a, the score"
    assert status_reason("WARN", 500, 500, drift[1:], "OK") == "PSI between 0.1 and 0.25 in: b"
    assert "PSI < 0.1" in status_reason("OK", 500, 500, drift[2:], "OK")


def test_second_test_sees_a_shift_and_not_its_absence():
    rng = np.random.default_rng(1)
    same = second_test(pd.Series(rng.normal(0, 1, 5000)), pd.Series(rng.normal(0, 1, 5000)), False)
    moved = second_test(pd.Series(rng.normal(0, 1, 5000)), pd.Series(rng.normal(1, 1, 5000)), False)
    assert same["ks"] < 0.05 and same["ks_pvalue"] > 0.01 and same["js"] < 0.05
    assert moved["ks"] > 0.3 and moved["ks_pvalue"] < 1e-6 and moved["js"] > 0.3
    cats = second_test(pd.Series(["A"] * 50 + ["B"] * 50), pd.Series(["A"] * 100), True)
    assert cats["ks"] is None and cats["js"] == pytest.approx(
        np.sqrt(
            0.5 * (0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(0.5 / 0.25)) + 0.5 * np.log2(1 / 0.75)
        ),
        abs=1e-6,
    )


def test_report_is_one_file_with_a_histogram_per_feature_and_no_network(tmp_path):
    ref, cur = frames(800, 400, shift=0.4)
    performance = [
        {"cut_date": "2025-11-30", "scored_period": "out_of_time", "rows": 300, "auc": 0.8,
         "ece": 0.02, "observed_rate": 0.45, "predicted_rate": 0.43, "no_assign": 90,
         "leakage_rate": 0.1},
        {"cut_date": "2025-12-31", "scored_period": "after_training", "rows": 310, "auc": 0.78,
         "ece": 0.03, "observed_rate": 0.41, "predicted_rate": 0.44, "no_assign": 95,
         "leakage_rate": 0.12},
    ]  # fmt: skip
    run = run_of(ref, cur, performance)
    assert run.status == "ALERT"  # the shift moves debit_success_rate_3m
    path = write_report(tmp_path / "reports", run, "es")
    assert path == tmp_path / "reports" / f"{run.run_id}.html"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    page = parse(path.read_text(encoding="utf-8"))
    text = " ".join(page.text)
    assert "Alerta" in text and "PSI ≥ 0.25 en: debit_success_rate_3m" in text
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 2 + 1 + 1  # one per feature, the score, the realized performance
    for src in images:
        assert src.startswith("data:image/png;base64,")
        picture = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert picture.format == "PNG" and picture.width > 200
    linked = [v for _, attrs in page.tags for k, v in attrs.items() if k in ("src", "href")]
    assert not [v for v in linked if v.startswith(("http:", "https:", "//"))]
    for name in ("debit_success_rate_3m", "product", "2025-11-30", "2025-12-31", "Fuera de tiempo"):
        assert name in text, name
    drift = {r["feature"]: r for r in run.drift}
    assert f"{drift['debit_success_rate_3m']['ks']:.3f}" in text
    assert f"{drift['product']['js']:.3f}" in text
    assert "10.0 %" in text  # the current side's missing share


def test_report_of_too_few_rows_still_draws_and_says_why():
    ref, cur = frames(800, 48)
    run = run_of(ref, cur)
    assert run.status == "INSUFFICIENT_DATA"
    page = parse(render(run, "en"))
    text = " ".join(page.text)
    assert f"48 rows in the current cut, minimum {MIN_ROWS}" in text
    assert "Insufficient data" in text
    assert sum(1 for tag, _ in page.tags if tag == "img") == 3  # features and score drawn


@pytest.mark.parametrize(
    ("status", "never", "alert", "warn", "insufficient"),
    [
        ("OK", 0, 0, 0, 0),
        ("INSUFFICIENT_DATA", 0, 0, 0, DRIFT_EXIT_CODE),
        ("WARN", 0, 0, DRIFT_EXIT_CODE, DRIFT_EXIT_CODE),
        ("ALERT", 0, DRIFT_EXIT_CODE, DRIFT_EXIT_CODE, DRIFT_EXIT_CODE),
    ],
)
def test_exit_code_of_fail_on(status, never, alert, warn, insufficient):
    result = {"status": status}
    assert exit_code(result) == never
    assert exit_code(result, "never") == never
    assert exit_code(result, "alert") == alert
    assert exit_code(result, "warn") == warn
    assert exit_code(result, "insufficient_data") == insufficient
    assert DRIFT_EXIT_CODE not in (0, 1, 2)  # not mistaken for an error of the command


def test_unknown_fail_level_is_refused():
    with pytest.raises(ValueError, match="unknown fail level 'sometimes'"):
        exit_code({"status": "ALERT"}, "sometimes")
