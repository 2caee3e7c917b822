"""The monitoring report a person reads: one HTML file per `cobranza monitor` run.

Written next to the run's results (`ml_metadata/monitoring_reports/<run>.html`) and named by the
monitor's summary (`report`). One file, pictures embedded as base64 PNG (matplotlib Agg, like the
model report), so it can be mailed or archived alone and opens without a network. It shows the
overall status with its reason in words ("48 filas en el corte actual, mínimo 100"), every
feature's distribution against the reference (histograms) with PSI, the Kolmogorov-Smirnov
statistic and the Jensen-Shannon distance, the drift of the champion's score, and the realized
performance of every scoring run whose horizon has closed, by cut.

Evidently and NannyML were considered and left out: Evidently pulls a web server stack, NLTK,
statsmodels and a telemetry client that calls home by default; NannyML pins lightgbm < 4.6 (the
project runs 4.7) and pulls cloud storage clients and an analytics client. matplotlib and scipy,
already here, do the job offline.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cobranza.labels import label
from cobranza.monitoring.drift import ALERT_PSI, MIN_ROWS, WARN_PSI, category_shares

REPORTS_DIR = "monitoring_reports"
REF_COLOR, CUR_COLOR = "#1f4e8c", "#c8652a"
HIST_BINS = 25
TOP_CATEGORIES = 12

WORDS = {
    "es": {
        "title": "Monitoreo del modelo",
        "status": "Estado",
        "why": "Por qué",
        "run": "Corrida",
        "model": "Modelo campeón",
        "gold": "Versión de gold",
        "reference": "Referencia",
        "current": "Actual",
        "rows": "filas",
        "cuts": "cortes",
        "thresholds": "Bandas de PSI: estable < {warn} ≤ vigilar < {alert} ≤ alerta; se necesitan "
        "{min} filas por lado para juzgar.",
        "features": "Variables",
        "feature": "Variable",
        "missing": "Faltantes ref. / actual",
        "score": "Score del modelo (probabilidad de autocura)",
        "no_score": "El score no se pudo comparar.",
        "performance": "Desempeño realizado por corte (horizontes cerrados)",
        "no_performance": "Ningún horizonte de scoring ha cerrado todavía.",
        "cut": "Corte",
        "period": "Periodo",
        "observed": "Autocura observada",
        "predicted": "Autocura esperada",
        "no_assign": "No gestionadas",
        "leakage": "Fuga",
        "insufficient": "{rows} filas en {side}, mínimo {min}",
        "side_current": "el corte actual",
        "side_reference": "la referencia",
        "alert": "PSI ≥ {alert} en: {names}",
        "warn": "PSI entre {warn} y {alert} en: {names}",
        "ok": "Todas las variables y el score tienen PSI < {warn}",
        "the_score": "el score",
        "second": "KS: estadístico de Kolmogorov-Smirnov (p-valor) sobre los valores conocidos; JS: "
        "distancia de Jensen-Shannon (0 = iguales, 1 = disjuntas) sobre los tramos del PSI.",
        "share": "proporción de filas",
    },
    "en": {
        "title": "Model monitoring",
        "status": "Status",
        "why": "Why",
        "run": "Run",
        "model": "Champion model",
        "gold": "Gold version",
        "reference": "Reference",
        "current": "Current",
        "rows": "rows",
        "cuts": "cuts",
        "thresholds": "PSI bands: stable < {warn} ≤ watch < {alert} ≤ alert; {min} rows a side "
        "are needed to judge.",
        "features": "Features",
        "feature": "Feature",
        "missing": "Missing ref. / current",
        "score": "Model score (self-cure probability)",
        "no_score": "The score could not be compared.",
        "performance": "Realized performance by cut (closed horizons)",
        "no_performance": "No scoring horizon has closed yet.",
        "cut": "Cut",
        "period": "Period",
        "observed": "Observed self-cure",
        "predicted": "Expected self-cure",
        "no_assign": "Not assigned",
        "leakage": "Leakage",
        "insufficient": "{rows} rows in {side}, minimum {min}",
        "side_current": "the current cut",
        "side_reference": "the reference",
        "alert": "PSI ≥ {alert} in: {names}",
        "warn": "PSI between {warn} and {alert} in: {names}",
        "ok": "Every feature and the score have PSI < {warn}",
        "the_score": "the score",
        "second": "KS: Kolmogorov-Smirnov statistic (p-value) on the known values; JS: "
        "Jensen-Shannon distance (0 = same, 1 = disjoint) over the PSI's bins.",
        "share": "share of rows",
    },
}


@dataclass
class MonitorRun:
    """What one monitor run measured, as the report needs it."""

    run_id: str
    status: str
    model_version: str | None
    gold_version: str | None
    current_cut: str
    reference_cuts: list[str]
    reference: pd.DataFrame
    current: pd.DataFrame
    features: list[str]
    categorical: list[str]
    drift: list[dict[str, Any]]
    score: dict[str, Any]
    score_reference: np.ndarray | None = None
    score_current: np.ndarray | None = None
    performance: list[dict[str, Any]] = field(default_factory=list)


def status_reason(
    status: str,
    reference_rows: int,
    current_rows: int,
    drift: list[dict[str, Any]],
    score_status: str,
    lang: str = "en",
) -> str:
    """The overall status in words: which side lacks rows, or which features moved."""
    w = WORDS[lang]
    if status == "INSUFFICIENT_DATA":
        parts = [
            w["insufficient"].format(rows=rows, side=w[side], min=MIN_ROWS)
            for rows, side in ((current_rows, "side_current"), (reference_rows, "side_reference"))
            if rows < MIN_ROWS
        ]
        return "; ".join(parts) or w["insufficient"].format(
            rows=current_rows, side=w["side_current"], min=MIN_ROWS
        )
    for level in ("ALERT", "WARN"):
        names = [r["feature"] for r in drift if r["status"] == level]
        if score_status == level:
            names.append(w["the_score"])
        if names:
            return w[level.lower()].format(warn=WARN_PSI, alert=ALERT_PSI, names=", ".join(names))
    return w["ok"].format(warn=WARN_PSI)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _numeric_hist(
    ref: pd.Series, cur: pd.Series, title: str, w: dict[str, str], size=(4.2, 2.4)
) -> str:
    e = pd.to_numeric(ref, errors="coerce").to_numpy(dtype=np.float64)
    a = pd.to_numeric(cur, errors="coerce").to_numpy(dtype=np.float64)
    known = np.r_[e[~np.isnan(e)], a[~np.isnan(a)]]
    fig, ax = plt.subplots(figsize=size)
    if len(known):
        lo, hi = np.quantile(known, [0.01, 0.99])
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, HIST_BINS + 1)
        for values, color, name in ((e, REF_COLOR, w["reference"]), (a, CUR_COLOR, w["current"])):
            v = np.clip(values[~np.isnan(values)], lo, hi)
            weights = np.full(len(v), 1.0 / max(len(values), 1))
            ax.hist(v, bins=bins, weights=weights, histtype="step", lw=2, color=color, label=name)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(w["share"], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def _categorical_bars(ref: pd.Series, cur: pd.Series, title: str, w: dict[str, str]) -> str:
    cats, pe, pa = category_shares(ref, cur)
    cats, pe, pa = cats[:TOP_CATEGORIES], pe[:TOP_CATEGORIES], pa[:TOP_CATEGORIES]
    x = np.arange(len(cats))
    fig, ax = plt.subplots(figsize=(4.2, 2.4))
    ax.bar(x - 0.2, pe, width=0.4, color=REF_COLOR, label=w["reference"])
    ax.bar(x + 0.2, pa, width=0.4, color=CUR_COLOR, label=w["current"])
    ax.set_xticks(x, [str(c)[:14] for c in cats], rotation=30, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(w["share"], fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def _performance_chart(perf: list[dict[str, Any]], w: dict[str, str]) -> str:
    cuts = [str(r["cut_date"])[:10] for r in perf]
    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    ax.plot(cuts, [r["observed_rate"] for r in perf], "o-", color=REF_COLOR, label=w["observed"])
    ax.plot(cuts, [r["predicted_rate"] for r in perf], "s--", color=CUR_COLOR, label=w["predicted"])
    ax.set_ylim(0, 1)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _missing(series: pd.Series) -> str:
    return f"{100 * series.isna().mean():.1f} %" if len(series) else "–"


def _feature_rows(run: MonitorRun, w: dict[str, str], lang: str) -> list[str]:
    cats = set(run.categorical)
    out = []
    for r in run.drift:
        name = r["feature"]
        ref, cur = run.reference[name], run.current[name]
        title = f"{name} · PSI {_fmt(r.get('psi'))}"
        draw = _categorical_bars if name in cats else _numeric_hist
        img = draw(ref, cur, title, w)
        ks = "–" if r.get("ks") is None else f"{r['ks']:.3f} (p={r['ks_pvalue']:.3g})"
        out.append(
            f'<tr class="s-{r["status"].lower()}"><td>{html.escape(name)}</td>'
            f"<td class=n>{_fmt(r.get('psi'))}</td>"
            f"<td>{html.escape(label('monitoring_status', r['status'], lang))}</td>"
            f"<td class=n>{ks}</td><td class=n>{_fmt(r.get('js'))}</td>"
            f"<td class=n>{_missing(ref)} / {_missing(cur)}</td>"
            f'<td><img alt="{html.escape(title)}" src="data:image/png;base64,{img}"></td></tr>'
        )
    return out


def _score_section(run: MonitorRun, w: dict[str, str], lang: str) -> str:
    score = run.score
    head = (
        f"<p>PSI {_fmt(score.get('psi'))} · "
        f"{html.escape(label('monitoring_status', score['status'], lang))}"
    )
    if score.get("ks") is not None:
        head += f" · KS {score['ks']:.3f} (p={score['ks_pvalue']:.3g}) · JS {_fmt(score.get('js'))}"
    head += "</p>"
    if run.score_reference is None or run.score_current is None:
        return head + f"<p>{w['no_score']}</p>"
    img = _numeric_hist(pd.Series(run.score_reference), pd.Series(run.score_current), w["score"], w)
    return head + f'<img alt="{w["score"]}" src="data:image/png;base64,{img}">'


def _performance_section(run: MonitorRun, w: dict[str, str], lang: str) -> str:
    if not run.performance:
        return f"<p>{w['no_performance']}</p>"
    rows = "".join(
        f"<tr><td>{_fmt(str(r['cut_date'])[:10])}</td>"
        f"<td>{html.escape(label('scored_period', r.get('scored_period'), lang) or '–')}</td>"
        f"<td class=n>{r['rows']}</td><td class=n>{_fmt(r.get('auc'))}</td>"
        f"<td class=n>{_fmt(r.get('ece'), 4)}</td><td class=n>{_fmt(r.get('observed_rate'))}</td>"
        f"<td class=n>{_fmt(r.get('predicted_rate'))}</td><td class=n>{r['no_assign']}</td>"
        f"<td class=n>{_fmt(r.get('leakage_rate'))}</td></tr>"
        for r in run.performance
    )
    img = _performance_chart(run.performance, w)
    return (
        f"<table><tr><th>{w['cut']}</th><th>{w['period']}</th><th>{w['rows']}</th><th>AUC</th>"
        f"<th>ECE</th><th>{w['observed']}</th><th>{w['predicted']}</th><th>{w['no_assign']}</th>"
        f"<th>{w['leakage']}</th></tr>{rows}</table>"
        f'<img alt="{w["performance"]}" src="data:image/png;base64,{img}">'
    )


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;color:#1d2733;margin:24px;max-width:1200px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #d9dee5;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#eef1f5}td.n{text-align:right;white-space:nowrap}img{max-width:100%}
.badge{padding:2px 10px;border-radius:10px;font-weight:600}.muted{color:#5a6575}
.s-alert td:first-child{border-left:4px solid #b3261e}.s-warn td:first-child{border-left:4px solid #8a5c00}
.b-ok{background:#e3f2e9;color:#17683f}.b-warn{background:#f8efd6;color:#8a5c00}
.b-alert{background:#f8dedb;color:#b3261e}.b-insufficient_data,.b-no_data{background:#e3e7ed;color:#1d2733}
"""


def render(run: MonitorRun, lang: str = "es") -> str:
    """The report as one HTML document (pictures inline)."""
    w = WORDS[lang]
    reason = status_reason(
        run.status,
        len(run.reference),
        len(run.current),
        run.drift,
        run.score["status"],
        lang,
    )
    ref_cuts = ", ".join(run.reference_cuts)
    features = "".join(_feature_rows(run, w, lang))
    thresholds = w["thresholds"].format(warn=WARN_PSI, alert=ALERT_PSI, min=MIN_ROWS)
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{w["title"]} {
        html.escape(run.run_id)
    }</title>
<style>{STYLE}</style></head><body>
<h1>{w["title"]} · {html.escape(run.current_cut[:10])}</h1>
<p><span class="badge b-{run.status.lower()}" id="status" data-status="{run.status}">{
        w["status"]
    }: {html.escape(label("monitoring_status", run.status, lang))}</span></p>
<p id="reason"><strong>{w["why"]}:</strong> {html.escape(reason)}</p>
<table><tr><th>{w["run"]}</th><td>{html.escape(run.run_id)}</td></tr>
<tr><th>{w["model"]}</th><td>{_fmt(run.model_version)}</td></tr>
<tr><th>{w["gold"]}</th><td>{_fmt(run.gold_version)}</td></tr>
<tr><th>{w["reference"]}</th><td>{len(run.reference)} {w["rows"]} · {w["cuts"]} {
        html.escape(ref_cuts)
    }</td></tr>
<tr><th>{w["current"]}</th><td>{len(run.current)} {w["rows"]} · {w["cut"]} {
        html.escape(run.current_cut)
    }</td></tr>
</table>
<p class="muted">{thresholds} {w["second"]}</p>
<h2>{w["score"]}</h2>
<section id="score">{_score_section(run, w, lang)}</section>
<h2>{w["features"]}</h2>
<table id="features"><tr><th>{w["feature"]}</th><th>PSI</th><th>{w["status"]}</th><th>KS</th>
<th>JS</th><th>{w["missing"]}</th><th></th></tr>{features}</table>
<h2>{w["performance"]}</h2>
<section id="performance">{_performance_section(run, w, lang)}</section>
</body></html>
"""


def write_report(folder: Path, run: MonitorRun, lang: str = "es") -> Path:
    """`<folder>/<run_id>.html`, written whole then renamed into place."""
    import os
    import uuid

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.run_id}.html"
    tmp = folder / f".{run.run_id}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(render(run, lang), encoding="utf-8")
    os.replace(tmp, path)
    return path
