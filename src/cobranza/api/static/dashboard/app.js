// Collections dashboard: reads everything from the /v1 API with the key in sessionStorage.
// Every value reaches the DOM through textContent (never innerHTML), so nothing the API returns
// can run as markup. A 401 anywhere clears the key and goes back to the sign-in form.
"use strict";

const KEY_STORE = "cobranza.apiKey";
const PAGE_SIZE = 50;
const CSV_PAGE = 10000;
const state = { me: null, cursors: [null], page: 0, nextCursor: null, filters: { decision: "ASSIGN", sort: "risk" }, cut: null, loads: 0 };

const $ = (id) => document.getElementById(id);
const cop = new Intl.NumberFormat("es-CO", { style: "currency", currency: "COP", maximumFractionDigits: 0 });
const int = new Intl.NumberFormat("es-CO");
const pct = (p) => (p === null || p === undefined ? "–" : (100 * p).toFixed(1) + " %");
const num = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const money = (x) => (x === null || x === undefined ? "–" : cop.format(x));

class Unauthorized extends Error {}

function key() {
  return sessionStorage.getItem(KEY_STORE);
}

async function api(path, options = {}) {
  const headers = Object.assign({ "X-API-Key": key() || "" }, options.headers || {});
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (resp.status === 401) {
    signOut("La clave no es válida o fue revocada. Ingrese de nuevo.");
    throw new Unauthorized("401");
  }
  return resp;
}

async function apiJson(path, options) {
  const resp = await api(path, options);
  let body = null;
  try {
    body = await resp.json();
  } catch (e) {
    body = null;
  }
  return { status: resp.status, ok: resp.ok, body };
}

function detailOf(res) {
  const d = res.body && res.body.detail;
  if (typeof d === "string") return d;
  return "error " + res.status;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function show(id, text) {
  const node = $(id);
  node.textContent = text || "";
  node.hidden = !text;
}

function fields(dl, pairs) {
  dl.replaceChildren();
  for (const [label, value] of pairs) {
    dl.append(el("dt", label), el("dd", value === null || value === undefined ? "–" : value));
  }
}

// ---- sign-in -------------------------------------------------------------------------------
function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  state.me = null;
  $("app").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  $("api-key").value = "";
  show("signin-error", message);
}

async function signIn(candidate) {
  const resp = await fetch("/v1/me", { headers: { "X-API-Key": candidate } });
  if (!resp.ok) {
    show("signin-error", resp.status === 401 ? "Clave inválida o revocada." : "No se pudo ingresar (error " + resp.status + ").");
    return false;
  }
  sessionStorage.setItem(KEY_STORE, candidate);
  await start(await resp.json());
  return true;
}

async function start(me) {
  state.me = me;
  show("signin-error", "");
  $("signin").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = me.name;
  $("who-role").textContent = me.role;
  $("operator-actions").hidden = !(me.role === "operator" || me.role === "admin");
  try {
    await loadSummary();
    await Promise.all([loadWorklist(), loadModels(), loadMonitoring(), loadJobs()]);
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (!(e instanceof Unauthorized)) throw e;
  }
}

// ---- today's cut ---------------------------------------------------------------------------
function fillSelect(select, names) {
  const current = select.value;
  select.replaceChildren(el("option", "Todos"));
  select.firstChild.value = "";
  for (const name of names) {
    const opt = el("option", name);
    opt.value = name;
    select.append(opt);
  }
  select.value = names.includes(current) ? current : "";
}

async function loadSummary() {
  const res = await apiJson("/v1/summary");
  if (!res.ok) {
    show("summary-error", res.status === 404 ? "Aún no hay resultados de scoring." : detailOf(res));
    return;
  }
  show("summary-error", "");
  const s = res.body;
  const decisions = s.decisions || {};
  state.cut = s.cut_date_max;
  $("cut-date").textContent = s.cut_date_min === s.cut_date_max ? s.cut_date_max : s.cut_date_min + " – " + s.cut_date_max;
  $("count-population").textContent = int.format(s.population);
  $("count-eligible").textContent = int.format(s.eligible);
  $("count-assign").textContent = int.format(decisions.ASSIGN || 0);
  $("count-no-assign").textContent = int.format(decisions.NO_ASSIGN || 0);
  $("expected-savings").textContent = money(s.expected_savings);
  $("threshold").textContent = num(s.threshold, 3);
  $("model-version").textContent = s.model_version || "–";
  fillSelect($("f-product"), (s.by_product || []).map((g) => g.product).filter(Boolean));
  fillSelect($("f-segment"), (s.by_segment || []).map((g) => g.segment).filter(Boolean));
}

// ---- worklist ------------------------------------------------------------------------------
function readFilters() {
  const f = { decision: "ASSIGN", sort: $("f-sort").value || "risk" };
  const pairs = [
    ["product", "f-product"], ["segment", "f-segment"],
    ["min_days_past_due", "f-min-dpd"], ["max_days_past_due", "f-max-dpd"],
    ["min_probability", "f-min-p"], ["max_probability", "f-max-p"],
  ];
  for (const [name, id] of pairs) {
    const value = $(id).value.trim();
    if (value !== "") f[name] = value;
  }
  return f;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) q.set(k, v);
  return q.toString();
}

function reasonText(r) {
  if (!r) return "";
  return r.text || r.code;
}

async function loadWorklist() {
  try {
    await renderWorklist();
  } finally {
    $("worklist").dataset.loads = String(++state.loads); // lets a test (or a person) see a refresh
  }
}

async function renderWorklist() {
  const cursor = state.cursors[state.page];
  const params = Object.assign({}, state.filters, { limit: PAGE_SIZE, cursor });
  const res = await apiJson("/v1/scores?" + query(params));
  const body = $("worklist-rows");
  body.replaceChildren();
  if (!res.ok) {
    show("worklist-error", res.status === 404 ? "Aún no hay resultados de scoring." : detailOf(res));
    $("next-page").disabled = true;
    return;
  }
  show("worklist-error", "");
  for (const item of res.body.items) {
    const tr = document.createElement("tr");
    tr.dataset.obligationId = item.obligation_id;
    const idCell = el("td", null, "nowrap");
    const open = el("button", item.obligation_id, "link open-detail");
    open.type = "button";
    open.addEventListener("click", () => openDetail(item.obligation_id, item.cut_date));
    idCell.append(open);
    tr.append(
      idCell,
      el("td", item.cut_date, "nowrap"),
      el("td", item.product),
      el("td", item.segment),
      el("td", item.days_past_due, "num"),
      el("td", money(item.amount_past_due), "num"),
      el("td", pct(item.probability), "num"),
    );
    for (let i = 0; i < 3; i++) tr.append(el("td", reasonText(item.reasons[i]), "reason"));
    body.append(tr);
  }
  if (res.body.items.length === 0) {
    const tr = document.createElement("tr");
    const td = el("td", "No hay obligaciones con estos filtros.", "muted");
    td.colSpan = 10;
    tr.append(td);
    body.append(tr);
  }
  state.nextCursor = res.body.next_cursor;
  $("next-page").disabled = !state.nextCursor;
  $("prev-page").disabled = state.page === 0;
  $("page-info").textContent = "Página " + (state.page + 1) + " · " + res.body.count + " filas";
}

async function applyFilters(event) {
  if (event) event.preventDefault();
  state.filters = readFilters();
  state.cursors = [null];
  state.page = 0;
  await loadWorklist();
}

async function nextPage() {
  if (!state.nextCursor) return;
  state.cursors[state.page + 1] = state.nextCursor;
  state.page += 1;
  await loadWorklist();
}

async function prevPage() {
  if (state.page === 0) return;
  state.page -= 1;
  await loadWorklist();
}

async function downloadCsv() {
  // the whole filtered list, page by page (the cursor comes back in X-Next-Cursor)
  const parts = [];
  let cursor = null;
  do {
    const params = Object.assign({}, state.filters, { format: "csv", limit: CSV_PAGE, cursor });
    const resp = await api("/v1/scores?" + query(params));
    if (!resp.ok) {
      show("worklist-error", "No se pudo descargar el CSV (error " + resp.status + ").");
      return;
    }
    let text = await resp.text();
    if (parts.length > 0) text = text.slice(text.indexOf("\n") + 1); // header once
    parts.push(text);
    cursor = resp.headers.get("X-Next-Cursor");
  } while (cursor);
  const blob = new Blob(parts, { type: "text/csv" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "lista_trabajo_" + (state.cut || "corte") + ".csv";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// ---- one obligation ------------------------------------------------------------------------
async function openDetail(obligationId, cutDate) {
  const path = "/v1/scores/" + encodeURIComponent(obligationId) + (cutDate ? "?" + query({ cut_date: cutDate }) : "");
  const res = await apiJson(path);
  const section = $("detail");
  section.hidden = false;
  $("detail-id").textContent = obligationId;
  const reasons = $("detail-reasons");
  reasons.replaceChildren();
  if (!res.ok) {
    fields($("detail-fields"), [["Error", detailOf(res)]]);
    return;
  }
  const s = res.body;
  fields($("detail-fields"), [
    ["Corte", s.cut_date],
    ["Cliente (seudónimo)", s.client_key],
    ["Producto", s.product],
    ["Segmento", s.segment],
    ["Días de mora", s.days_past_due],
    ["Monto vencido", money(s.amount_past_due)],
    ["Débito automático activo", s.eligible === null ? null : s.eligible ? "sí" : "no"],
    ["Probabilidad de autocura", pct(s.probability)],
    ["Decisión", s.decision],
    ["Umbral", num(s.threshold, 3)],
    ["Modelo", s.model_version],
  ]);
  for (const r of s.reasons || []) {
    const li = el("li", reasonText(r));
    if (r.contribution !== null && r.contribution !== undefined) {
      li.append(el("span", " (" + (r.contribution >= 0 ? "+" : "") + num(r.contribution, 2) + " log-odds)", "muted"));
    }
    reasons.append(li);
  }
  section.scrollIntoView({ block: "nearest" });
}

// ---- model and health ----------------------------------------------------------------------
async function loadModels() {
  const res = await apiJson("/v1/models");
  const dl = $("model-fields");
  if (!res.ok) {
    fields(dl, [["Registro", detailOf(res)]]);
    return;
  }
  const champion = (res.body.items || []).find((m) => m.version === res.body.champion);
  if (!champion) {
    fields(dl, [["Campeón", "ninguno todavía"]]);
    return;
  }
  fields(dl, [
    ["Versión", champion.version],
    ["AUC fuera de tiempo", num(champion.oot_auc, 3)],
    ["Calibración (ECE) fuera de tiempo", num(champion.oot_ece, 4)],
    ["AUC de prueba", num(champion.test_auc, 3)],
    ["PSI del score", num(champion.psi, 3)],
    ["Compuerta", champion.gate_passed === null || champion.gate_passed === undefined ? null : champion.gate_passed ? "aprobada" : "no aprobada"],
    ["Registrado", champion.created_at],
  ]);
}

async function loadMonitoring() {
  const res = await apiJson("/v1/monitoring");
  const badge = $("monitoring-status");
  const drift = $("drift-rows");
  const perf = $("performance-rows");
  drift.replaceChildren();
  perf.replaceChildren();
  if (!res.ok) {
    badge.textContent = res.status === 404 ? "SIN DATOS" : "ERROR";
    badge.className = "badge";
    $("monitoring-info").textContent = res.status === 404 ? "El monitoreo aún no se ha ejecutado." : detailOf(res);
    return;
  }
  const m = res.body;
  badge.textContent = m.status;
  badge.className = "badge status-" + m.status.toLowerCase();
  const ref = m.reference || {};
  $("monitoring-info").textContent =
    "Corrida " + (m.run_at || m.monitoring_run_id) + " · referencia " + (ref.start || "–") + " a " + (ref.end || "–") +
    " · actual " + ((m.current || {}).end || "–") + " · PSI del score " + num(m.score.psi, 3) + " (" + m.score.status + ")";
  for (const f of m.features.slice(0, 8)) {
    const tr = document.createElement("tr");
    tr.append(el("td", f.feature), el("td", num(f.psi, 3), "num"), el("td", f.status, "status-" + f.status.toLowerCase()));
    drift.append(tr);
  }
  if (m.performance.length === 0) {
    const tr = document.createElement("tr");
    const td = el("td", "Ningún horizonte de scoring ha cerrado todavía.", "muted");
    td.colSpan = 5;
    tr.append(td);
    perf.append(tr);
  }
  for (const p of m.performance.slice(-6)) {
    const tr = document.createElement("tr");
    tr.append(el("td", p.cut_date), el("td", num(p.auc, 3), "num"), el("td", pct(p.self_cure_rate), "num"),
      el("td", int.format(p.no_assign), "num"), el("td", money(p.net_savings), "num"));
    perf.append(tr);
  }
}

async function loadJobs() {
  const res = await apiJson("/v1/jobs?limit=10");
  const body = $("jobs-rows");
  body.replaceChildren();
  if (!res.ok) return;
  for (const j of res.body.items) {
    const tr = document.createElement("tr");
    tr.append(el("td", j.job_id), el("td", j.type), el("td", j.status, "job-" + j.status),
      el("td", j.created_at), el("td", j.seconds === null ? "–" : num(j.seconds, 1), "num"));
    body.append(tr);
  }
}

async function runJob(type) {
  const res = await apiJson("/v1/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ type, params: {} }),
  });
  if (res.status !== 202) {
    $("action-info").textContent = "No se inició: " + detailOf(res);
    return;
  }
  const jobId = res.body.job_id;
  $("action-info").textContent = "Trabajo " + type + " " + jobId + ": " + res.body.status;
  await loadJobs();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const job = await apiJson("/v1/jobs/" + encodeURIComponent(jobId));
    if (!job.ok) return;
    $("action-info").textContent = "Trabajo " + type + " " + jobId + ": " + job.body.status;
    if (!["queued", "running"].includes(job.body.status)) break;
  }
  await loadJobs();
  if (type === "score") {
    await loadSummary();
    await applyFilters();
  } else {
    await loadMonitoring();
  }
}

function guarded(fn) {
  return (...args) => fn(...args).catch((e) => {
    if (!(e instanceof Unauthorized)) console.error(e);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const candidate = $("api-key").value.trim();
    if (candidate) await signIn(candidate);
  }));
  $("signout").addEventListener("click", () => signOut(""));
  $("filters").addEventListener("submit", guarded(applyFilters));
  $("next-page").addEventListener("click", guarded(nextPage));
  $("prev-page").addEventListener("click", guarded(prevPage));
  $("download-csv").addEventListener("click", guarded(downloadCsv));
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
  $("run-score").addEventListener("click", guarded(() => runJob("score")));
  $("run-monitor").addEventListener("click", guarded(() => runJob("monitor")));
  state.filters = readFilters();
  const stored = key();
  if (stored) {
    guarded(async () => {
      const resp = await fetch("/v1/me", { headers: { "X-API-Key": stored } });
      if (resp.ok) await start(await resp.json());
      else signOut(resp.status === 401 ? "La sesión expiró. Ingrese de nuevo." : "");
    })();
  }
});
