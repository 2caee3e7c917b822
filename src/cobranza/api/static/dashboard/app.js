// Collections dashboard: reads everything from the /v1 API with the key in sessionStorage.
// Every value reaches the DOM through textContent or SVG attributes (never innerHTML), so nothing
// the API returns can run as markup. A 401 anywhere clears the key and goes back to the sign-in form.
// Words for codes come from /dashboard/labels.json (cobranza.labels); the page's own texts are in
// TEXT below, Spanish first, English with ?lang=en or the ES/EN switch.
"use strict";

const KEY_STORE = "cobranza.apiKey";
const LANG_STORE = "cobranza.lang";
const PAGE_SIZE = 50;
const CSV_PAGE = 10000;
const SVG = "http://www.w3.org/2000/svg";
const state = {
  me: null, lang: "es", words: {}, cursors: [null], page: 0, nextCursor: null,
  filters: { decision: "ASSIGN", sort: "risk" }, view: "ASSIGN", cut: null, loads: 0,
  summary: null, cuts: null, monitoring: null,
};

const TEXT = {
  es: {
    title: "Cobranza temprana · Tablero", language: "Idioma", signout: "Salir", signin: "Ingresar",
    apiKey: "Clave de API", keyHint: "La clave se guarda solo en esta pestaña (sessionStorage) y se envía como X-API-Key.",
    todayCut: "Corte de hoy", kpiPopulation: "Obligaciones en mora temprana", kpiEligible: "Con débito automático activo",
    kpiAssign: "Gestionar", kpiNoAssign: "No gestionar · gestionar no paga", kpiSavings: "Ahorro esperado vs gestionar todo",
    savingsDecisions: "De las decisiones", savingsHoldoutCost: "Menos el costo del grupo de control",
    kpiCost: "Costo de una gestión · modelo", byProduct: "Decisiones por producto", bySegment: "Decisiones por segmento",
    byCut: "Decisiones y autocura realizada por corte", worklistAssign: "Lista de trabajo · gestionar",
    worklistNoAssign: "Autocura · auditoría de las no gestionadas", viewAssign: "Gestionar", viewNoAssign: "Autocura · auditoría",
    helpAssign: "Orden de llamada: primero las obligaciones sin débito automático, luego el mayor beneficio esperado de gestionar y, a igual beneficio, la mayor pérdida si rueda a 31+ días.",
    helpNoAssign: "Obligaciones que el modelo deja al débito automático porque gestionarlas no paga: primero las más cercanas a pagar (mayor beneficio esperado), para auditar al modelo.",
    product: "Producto", segment: "Segmento", dpd: "Días de mora", from: "desde", to: "hasta", probPct: "Prob. autocura (%)",
    order: "Orden", orderRisk: "Orden de llamada", orderId: "Obligación", filter: "Filtrar", download: "Descargar CSV",
    csvExcel: "Excel (; y coma decimal)", csvPlain: "CSV estándar (,)", withFilters: "obligaciones con estos filtros",
    callOrder: "Orden de llamada", obligation: "Obligación", dpdShort: "Días", amount: "Monto vencido",
    prob: "Prob. autocura", mainReason: "Motivo principal", prev: "Anterior", next: "Siguiente", health: "Modelo y salud",
    champion: "Modelo campeón", monitoring: "Monitoreo", feature: "Variable", status: "Estado", realized: "Desempeño realizado",
    cut: "Corte", selfCure: "Autocura", noAssignShort: "No gestionadas", netSavings: "Ahorro neto (COP)", lastJobs: "Últimos trabajos",
    runScore: "Ejecutar scoring", runMonitor: "Ejecutar monitoreo", job: "Trabajo", type: "Tipo", created: "Creado",
    seconds: "Segundos", close: "Cerrar", reasons: "Razones",
    reasonsHelp: "Peso de cada razón en la probabilidad (log-odds); las reglas no tienen peso.",
    all: "Todos", rows: "filas", page: "página", noRows: "No hay obligaciones con estos filtros.",
    noResults: "Aún no hay resultados de scoring.", badKey: "Clave inválida o revocada.",
    keyRevoked: "La clave no es válida o fue revocada. Ingrese de nuevo.", sessionExpired: "La sesión expiró. Ingrese de nuevo.",
    cantSignIn: "No se pudo ingresar", csvError: "No se pudo descargar el CSV", noDebit: "sin débito automático",
    rule: "regla", fCut: "Corte", fClient: "Cliente (seudónimo)", fProduct: "Producto", fSegment: "Segmento",
    fDpd: "Días de mora", fAmount: "Monto vencido", fDebit: "Débito automático activo", fProb: "Probabilidad de autocura",
    fDecision: "Decisión", fCallOrder: "Orden de llamada", fGroup: "Grupo", fModel: "Modelo", yes: "sí", no: "no",
    fRollNoAction: "Riesgo de rodar a 31+ sin gestión", fRollAction: "Riesgo de rodar a 31+ con gestión",
    fRollLoss: "Pérdida si rueda a 31+", fBenefit: "Beneficio esperado de gestionar",
    fCapacity: "No gestionada por capacidad",
    error: "Error", registry: "Registro", noChampion: "ninguno todavía", version: "Versión", ootAuc: "AUC fuera de tiempo",
    ootEce: "Calibración (ECE) fuera de tiempo", testAuc: "AUC de prueba", scorePsi: "PSI del score", gate: "Compuerta",
    gatePassed: "aprobada", gateFailed: "no aprobada", registered: "Registrado", noData: "SIN DATOS", noMonitoring: "El monitoreo aún no se ha ejecutado.",
    run: "Corrida", reference: "referencia", current: "actual", noHorizon: "Ningún horizonte de scoring ha cerrado todavía.",
    notStarted: "No se inició", jobWord: "Trabajo", legendAssign: "Gestionar", legendNoAssign: "No gestionar",
    legendRealized: "Autocura realizada", legendPredicted: "Autocura esperada", noCuts: "Sin cortes puntuados todavía.",
  },
  en: {
    title: "Early collections · Dashboard", language: "Language", signout: "Sign out", signin: "Sign in",
    apiKey: "API key", keyHint: "The key stays in this tab only (sessionStorage) and is sent as X-API-Key.",
    todayCut: "Today's cut", kpiPopulation: "Obligations in early delinquency", kpiEligible: "With an active automatic debit",
    kpiAssign: "Assign", kpiNoAssign: "Do not assign · managing does not pay", kpiSavings: "Expected savings vs assigning all",
    savingsDecisions: "From the decisions", savingsHoldoutCost: "Less the control group's cost",
    kpiCost: "Cost of one action · model", byProduct: "Decisions by product", bySegment: "Decisions by segment",
    byCut: "Decisions and realized self-cure by cut", worklistAssign: "Worklist · assign",
    worklistNoAssign: "Self-cure · audit of the unassigned", viewAssign: "Assign", viewNoAssign: "Self-cure · audit",
    helpAssign: "Calling order: obligations without an automatic debit first, then the largest expected benefit of managing and, at equal benefit, the largest loss if it rolls to 31+ days.",
    helpNoAssign: "Obligations the model leaves to the automatic debit because managing them does not pay: the closest to paying (largest expected benefit) first, to audit the model.",
    product: "Product", segment: "Segment", dpd: "Days past due", from: "from", to: "to", probPct: "Self-cure prob. (%)",
    order: "Order", orderRisk: "Calling order", orderId: "Obligation", filter: "Filter", download: "Download CSV",
    csvExcel: "Excel (; and decimal comma)", csvPlain: "Standard CSV (,)", withFilters: "obligations with these filters",
    callOrder: "Calling order", obligation: "Obligation", dpdShort: "Days", amount: "Amount past due",
    prob: "Self-cure prob.", mainReason: "Main reason", prev: "Previous", next: "Next", health: "Model and health",
    champion: "Champion model", monitoring: "Monitoring", feature: "Feature", status: "Status", realized: "Realized performance",
    cut: "Cut", selfCure: "Self-cure", noAssignShort: "Not assigned", netSavings: "Net savings (COP)", lastJobs: "Latest jobs",
    runScore: "Run scoring", runMonitor: "Run monitoring", job: "Job", type: "Type", created: "Created",
    seconds: "Seconds", close: "Close", reasons: "Reasons",
    reasonsHelp: "Weight of each reason in the probability (log-odds); rules carry no weight.",
    all: "All", rows: "rows", page: "page", noRows: "No obligations with these filters.",
    noResults: "No scoring results yet.", badKey: "Invalid or revoked key.",
    keyRevoked: "The key is not valid or was revoked. Sign in again.", sessionExpired: "The session expired. Sign in again.",
    cantSignIn: "Could not sign in", csvError: "Could not download the CSV", noDebit: "no automatic debit",
    rule: "rule", fCut: "Cut", fClient: "Client (pseudonym)", fProduct: "Product", fSegment: "Segment",
    fDpd: "Days past due", fAmount: "Amount past due", fDebit: "Active automatic debit", fProb: "Self-cure probability",
    fDecision: "Decision", fCallOrder: "Calling order", fGroup: "Group", fModel: "Model", yes: "yes", no: "no",
    fRollNoAction: "Roll risk to 31+ without management", fRollAction: "Roll risk to 31+ with management",
    fRollLoss: "Loss if it rolls to 31+", fBenefit: "Expected benefit of managing",
    fCapacity: "Not managed for capacity",
    error: "Error", registry: "Registry", noChampion: "none yet", version: "Version", ootAuc: "Out-of-time AUC",
    ootEce: "Out-of-time calibration (ECE)", testAuc: "Test AUC", scorePsi: "Score PSI", gate: "Gate",
    gatePassed: "passed", gateFailed: "not passed", registered: "Registered", noData: "NO DATA", noMonitoring: "Monitoring has not run yet.",
    run: "Run", reference: "reference", current: "current", noHorizon: "No scoring horizon has closed yet.",
    notStarted: "Not started", jobWord: "Job", legendAssign: "Assign", legendNoAssign: "Do not assign",
    legendRealized: "Realized self-cure", legendPredicted: "Expected self-cure", noCuts: "No scored cuts yet.",
  },
};

const $ = (id) => document.getElementById(id);
let fmt = formatters("es");

function formatters(lang) {
  const locale = lang === "en" ? "en-US" : "es-CO";
  const cop = new Intl.NumberFormat(locale, { style: "currency", currency: "COP", maximumFractionDigits: 0 });
  const int = new Intl.NumberFormat(locale);
  const dec = (d) => new Intl.NumberFormat(locale, { minimumFractionDigits: d, maximumFractionDigits: d });
  return {
    int: (x) => (x === null || x === undefined ? "–" : int.format(x)),
    money: (x) => (x === null || x === undefined ? "–" : cop.format(x)),
    pct: (p) => (p === null || p === undefined ? "–" : dec(1).format(100 * p) + " %"),
    num: (x, d = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(d)),
    signed: (x) => (x >= 0 ? "+" : "−") + dec(2).format(Math.abs(x)),
  };
}

function t(key) {
  return (TEXT[state.lang] || TEXT.es)[key] || TEXT.es[key] || key;
}

// the words for a code (product, segment, decision, statuses...); the code itself when unknown
function word(kind, code) {
  if (code === null || code === undefined) return "–";
  const words = state.words[kind] || {};
  const key = kind === "eligible" ? String(Boolean(code)) : String(code);
  return Object.prototype.hasOwnProperty.call(words, key) ? words[key] : String(code);
}

class Unauthorized extends Error {}

function key() {
  return sessionStorage.getItem(KEY_STORE);
}

async function api(path, options = {}) {
  const headers = Object.assign({ "X-API-Key": key() || "" }, options.headers || {});
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (resp.status === 401) {
    signOut(t("keyRevoked"));
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

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined && text !== null) node.textContent = String(text);
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

// ---- language ------------------------------------------------------------------------------
async function setLanguage(lang) {
  state.lang = lang === "en" ? "en" : "es";
  localStorage.setItem(LANG_STORE, state.lang);
  document.documentElement.lang = state.lang;
  fmt = formatters(state.lang);
  $("lang").value = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  document.title = t("title");
  $("f-csv").value = state.lang === "es" ? ";" : ",";
  const resp = await fetch("/dashboard/labels.json?lang=" + state.lang);
  state.words = resp.ok ? await resp.json() : {};
  setViewTexts();
}

function setViewTexts() {
  const assign = state.view === "ASSIGN";
  $("worklist-title").textContent = t(assign ? "worklistAssign" : "worklistNoAssign");
  $("worklist-help").textContent = t(assign ? "helpAssign" : "helpNoAssign");
}

// ---- sign-in -------------------------------------------------------------------------------
function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  state.me = null;
  $("app").hidden = true;
  $("who").hidden = true;
  $("drawer").hidden = true;
  $("signin").hidden = false;
  $("api-key").value = "";
  show("signin-error", message);
}

async function signIn(candidate) {
  const resp = await fetch("/v1/me", { headers: { "X-API-Key": candidate } });
  if (!resp.ok) {
    show("signin-error", resp.status === 401 ? t("badKey") : t("cantSignIn") + " (error " + resp.status + ").");
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
  await loadAll();
}

async function loadAll() {
  try {
    await loadSummary();
    await Promise.all([loadWorklist(), loadModels(), loadMonitoring(), loadJobs(), loadCuts()]);
    drawTrend();
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (!(e instanceof Unauthorized)) throw e;
  }
}

// ---- today's cut ---------------------------------------------------------------------------
function fillSelect(select, kind, codes) {
  const current = select.value;
  select.replaceChildren(el("option", t("all")));
  select.firstChild.value = "";
  for (const code of codes) {
    const opt = el("option", word(kind, code));
    opt.value = code;
    select.append(opt);
  }
  select.value = codes.includes(current) ? current : "";
}

async function loadSummary() {
  const res = await apiJson("/v1/summary");
  if (!res.ok) {
    show("summary-error", res.status === 404 ? t("noResults") : detailOf(res));
    state.summary = null;
    drawGroups();
    return;
  }
  show("summary-error", "");
  const s = res.body;
  state.summary = s;
  const decisions = s.decisions || {};
  state.cut = s.cut_date_max;
  $("cut-date").textContent = s.cut_date_min === s.cut_date_max ? s.cut_date_max : s.cut_date_min + " – " + s.cut_date_max;
  $("count-population").textContent = fmt.int(s.population);
  $("count-eligible").textContent = fmt.int(s.eligible);
  $("count-assign").textContent = fmt.int(decisions.ASSIGN || 0);
  $("count-no-assign").textContent = fmt.int(decisions.NO_ASSIGN || 0);
  $("expected-savings").textContent = fmt.money(s.expected_savings);
  // net = what the policy's decisions save - what the control group (left unmanaged) costs
  $("savings-without-holdout").textContent = fmt.money(s.expected_savings_without_holdout);
  $("holdout-cost").textContent = fmt.money(s.expected_holdout_cost);
  $("collection-action").textContent = fmt.money((s.costs || {}).collection_action);
  $("model-version").textContent = s.model_version || "–";
  fillSelect($("f-product"), "product", (s.by_product || []).map((g) => g.product).filter(Boolean));
  fillSelect($("f-segment"), "segment", (s.by_segment || []).map((g) => g.segment).filter(Boolean));
  drawGroups();
}

// ---- charts (SVG built node by node; sizes in the viewBox, so they scale to any width) ------
function legend(root, items, y) {
  let x = 0;
  for (const [cls, label] of items) {
    root.append(svg("rect", { x, y: y - 9, width: 10, height: 10, class: cls }));
    const text = svg("text", { x: x + 14, y, class: "chart-text" }, label);
    root.append(text);
    x += 24 + 7.2 * label.length;
  }
}

function drawBars(containerId, kind, groups) {
  const box = $(containerId);
  box.replaceChildren();
  if (!groups || groups.length === 0) {
    box.append(el("p", t("noResults"), "muted"));
    return;
  }
  const width = 460, labelW = 150, numW = 64, rowH = 26, top = 26;
  const height = top + rowH * groups.length + 4;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": t(kind === "product" ? "byProduct" : "bySegment") });
  legend(root, [["bar-assign", t("legendAssign")], ["bar-no-assign", t("legendNoAssign")]], 12);
  const max = Math.max(...groups.map((g) => g.population), 1);
  const span = width - labelW - numW;
  groups.forEach((g, i) => {
    const y = top + i * rowH;
    const name = word(kind, g[kind]);
    root.append(svg("text", { x: labelW - 8, y: y + 15, "text-anchor": "end", class: "chart-text" }, name));
    const wa = (span * g.assign) / max, wn = (span * g.no_assign) / max;
    const a = svg("rect", { x: labelW, y: y + 3, width: wa.toFixed(1), height: rowH - 8, class: "bar-assign", "data-group": g[kind], "data-kind": "ASSIGN" });
    a.append(svg("title", {}, `${name} · ${t("legendAssign")}: ${fmt.int(g.assign)}`));
    const n = svg("rect", { x: (labelW + wa).toFixed(1), y: y + 3, width: wn.toFixed(1), height: rowH - 8, class: "bar-no-assign", "data-group": g[kind], "data-kind": "NO_ASSIGN" });
    n.append(svg("title", {}, `${name} · ${t("legendNoAssign")}: ${fmt.int(g.no_assign)}`));
    root.append(a, n);
    root.append(svg("text", { x: labelW + wa + wn + 6, y: y + 15, class: "chart-text" }, fmt.int(g.population)));
  });
  box.append(root);
}

function drawGroups() {
  const s = state.summary || {};
  drawBars("chart-product", "product", s.by_product);
  drawBars("chart-segment", "segment", s.by_segment);
}

async function loadCuts() {
  const res = await apiJson("/v1/summary/cuts");
  state.cuts = res.ok ? res.body : [];
}

// decisions per cut (stacked columns) with the realized and expected self-cure rate of the cuts
// whose horizon has closed (GET /v1/monitoring, performance)
function drawTrend() {
  const box = $("chart-trend");
  box.replaceChildren();
  const cuts = (state.cuts || []).slice(-12);
  if (cuts.length === 0) {
    box.append(el("p", t("noCuts"), "muted"));
    return;
  }
  const realized = {};
  for (const p of ((state.monitoring || {}).performance || [])) realized[p.cut_date] = p;
  const width = 640, height = 230, left = 52, right = 44, top = 30, bottom = 40;
  const plotW = width - left - right, plotH = height - top - bottom;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": t("byCut") });
  legend(root, [["bar-assign", t("legendAssign")], ["bar-no-assign", t("legendNoAssign")],
    ["dot-realized", t("legendRealized")], ["dot-predicted", t("legendPredicted")]], 12);
  const max = Math.max(...cuts.map((c) => c.population), 1);
  const step = plotW / cuts.length, barW = Math.min(36, step * 0.6);
  root.append(svg("line", { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: "axis" }));
  root.append(svg("text", { x: left - 6, y: top + 8, "text-anchor": "end", class: "chart-text" }, fmt.int(max)));
  root.append(svg("text", { x: left + plotW + 6, y: top + 8, class: "chart-text" }, "100 %"));
  root.append(svg("text", { x: left + plotW + 6, y: top + plotH, class: "chart-text" }, "0 %"));
  const points = [];
  cuts.forEach((c, i) => {
    const x = left + i * step + (step - barW) / 2;
    const ha = (plotH * c.assign) / max, hn = (plotH * c.no_assign) / max;
    const a = svg("rect", { x: x.toFixed(1), y: (top + plotH - ha).toFixed(1), width: barW.toFixed(1), height: ha.toFixed(1), class: "bar-assign", "data-cut": c.cut_date, "data-kind": "ASSIGN" });
    a.append(svg("title", {}, `${c.cut_date} · ${t("legendAssign")}: ${fmt.int(c.assign)}`));
    const n = svg("rect", { x: x.toFixed(1), y: (top + plotH - ha - hn).toFixed(1), width: barW.toFixed(1), height: hn.toFixed(1), class: "bar-no-assign", "data-cut": c.cut_date, "data-kind": "NO_ASSIGN" });
    n.append(svg("title", {}, `${c.cut_date} · ${t("legendNoAssign")}: ${fmt.int(c.no_assign)}`));
    root.append(a, n);
    root.append(svg("text", { x: (x + barW / 2).toFixed(1), y: top + plotH + 16, "text-anchor": "middle", class: "chart-text" }, c.cut_date.slice(0, 7)));
    const r = realized[c.cut_date];
    if (r && r.self_cure_rate !== null && r.self_cure_rate !== undefined) {
      const cx = x + barW / 2;
      const yr = top + plotH * (1 - r.self_cure_rate), yp = top + plotH * (1 - (r.predicted_rate || 0));
      points.push([cx, yr]);
      const dot = svg("circle", { cx: cx.toFixed(1), cy: yr.toFixed(1), r: 5, class: "dot-realized", "data-cut": c.cut_date });
      dot.append(svg("title", {}, `${c.cut_date} · ${t("legendRealized")}: ${fmt.pct(r.self_cure_rate)}`));
      const pred = svg("circle", { cx: cx.toFixed(1), cy: yp.toFixed(1), r: 4, class: "dot-predicted", "data-cut": c.cut_date });
      pred.append(svg("title", {}, `${c.cut_date} · ${t("legendPredicted")}: ${fmt.pct(r.predicted_rate)}`));
      root.append(pred, dot);
    }
  });
  if (points.length > 1) {
    root.append(svg("polyline", { points: points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "), class: "line-realized" }));
  }
  box.append(root);
}

// ---- worklist ------------------------------------------------------------------------------
function readFilters() {
  const f = { decision: state.view, sort: $("f-sort").value || "risk" };
  const pairs = [
    ["product", "f-product"], ["segment", "f-segment"],
    ["min_days_past_due", "f-min-dpd"], ["max_days_past_due", "f-max-dpd"],
  ];
  for (const [name, id] of pairs) {
    const value = $(id).value.trim();
    if (value !== "") f[name] = value;
  }
  // the team thinks in percent; the API takes a probability
  for (const [name, id] of [["min_probability", "f-min-p"], ["max_probability", "f-max-p"]]) {
    const value = $(id).value.trim();
    if (value !== "" && !Number.isNaN(Number(value))) f[name] = String(Math.min(100, Math.max(0, Number(value))) / 100);
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

function tags(item) {
  const out = [];
  if (item.eligible === false) out.push(["tag-nodebit", t("noDebit")]);
  if (item.arm === "HOLDOUT") out.push(["tag-holdout", word("arm", "HOLDOUT")]);
  // decided by the challenger model: a normal row (contacted when ASSIGN), its arm shown
  if (item.arm === "CHALLENGER") out.push(["tag-challenger", word("arm", "CHALLENGER")]);
  return out;
}

async function loadWorklist() {
  try {
    await renderWorklist();
  } finally {
    $("worklist").dataset.loads = String(++state.loads); // lets a test (or a person) see a refresh
  }
}

function worklistRow(item) {
  const tr = document.createElement("tr");
  tr.dataset.obligationId = item.obligation_id;
  if (item.arm) tr.dataset.arm = item.arm;
  if (item.arm === "HOLDOUT") tr.className = "holdout";
  const idCell = el("td", null, "id");
  const open = el("button", item.obligation_id, "link open-detail");
  open.type = "button";
  open.addEventListener("click", guarded(() => openDetail(item.obligation_id, item.cut_date)));
  idCell.append(open);
  const reason = el("td", null, "reason");
  const rowTags = tags(item);
  for (const [cls, text] of rowTags) reason.append(el("span", text, "tag " + cls));
  // a row without a mandate says so with its tag; the rule's long sentence is in the drawer
  const reasons = (item.reasons || []).filter((r) => !(item.eligible === false && r.code === "NO_ACTIVE_MANDATE"));
  if (reasons.length > 0) reason.append(el("span", reasonText(reasons[0]), "reason-text"));
  reason.title = (item.reasons || []).map(reasonText).join(" · ");
  tr.append(
    el("td", item.call_order === null || item.call_order === undefined ? "–" : fmt.int(item.call_order), "num order"),
    idCell,
    el("td", word("product", item.product)),
    el("td", word("segment", item.segment), "wide"),
    el("td", item.days_past_due, "num"),
    el("td", fmt.money(item.amount_past_due), "num"),
    el("td", fmt.pct(item.probability), "num"),
    reason,
  );
  return tr;
}

async function renderWorklist() {
  const cursor = state.cursors[state.page];
  const params = Object.assign({}, state.filters, { limit: PAGE_SIZE, cursor });
  const res = await apiJson("/v1/scores?" + query(params));
  const body = $("worklist-rows");
  body.replaceChildren();
  if (!res.ok) {
    show("worklist-error", res.status === 404 ? t("noResults") : detailOf(res));
    $("next-page").disabled = true;
    $("worklist-total").textContent = "–";
    $("page-info").textContent = "";
    return;
  }
  show("worklist-error", "");
  for (const item of res.body.items) body.append(worklistRow(item));
  if (res.body.items.length === 0) {
    const tr = document.createElement("tr");
    const td = el("td", t("noRows"), "muted");
    td.colSpan = 8;
    tr.append(td);
    body.append(tr);
  }
  state.nextCursor = res.body.next_cursor;
  $("next-page").disabled = !state.nextCursor;
  $("prev-page").disabled = state.page === 0;
  const first = state.page * PAGE_SIZE + 1, last = state.page * PAGE_SIZE + res.body.count;
  $("worklist-total").textContent = fmt.int(res.body.total);
  $("page-info").textContent = res.body.count > 0
    ? `· ${t("rows")} ${fmt.int(first)}–${fmt.int(last)} · ${t("page")} ${state.page + 1} / ${Math.max(1, Math.ceil(res.body.total / PAGE_SIZE))}`
    : "";
}

async function applyFilters(event) {
  if (event) event.preventDefault();
  state.filters = readFilters();
  state.cursors = [null];
  state.page = 0;
  await loadWorklist();
}

async function setView(view) {
  state.view = view;
  $("view-assign").setAttribute("aria-pressed", String(view === "ASSIGN"));
  $("view-no-assign").setAttribute("aria-pressed", String(view === "NO_ASSIGN"));
  setViewTexts();
  await applyFilters();
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
  // the whole filtered list, page by page (the cursor comes back in X-Next-Cursor), as the
  // people's table in the page's language; the BOM makes Excel read it as UTF-8
  const sep = $("f-csv").value === ";" ? ";" : ",";
  const parts = [];
  let cursor = null;
  do {
    const params = Object.assign({}, state.filters, { format: "csv", lang: state.lang, sep, limit: CSV_PAGE, cursor });
    const resp = await api("/v1/scores?" + query(params));
    if (!resp.ok) {
      show("worklist-error", t("csvError") + " (error " + resp.status + ").");
      return;
    }
    let text = await resp.text();
    if (parts.length > 0) text = text.slice(text.indexOf("\n") + 1); // header once
    parts.push(text);
    cursor = resp.headers.get("X-Next-Cursor");
  } while (cursor);
  const blob = new Blob(["\ufeff", ...parts], { type: "text/csv;charset=utf-8" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  const stem = state.view === "ASSIGN" ? (state.lang === "en" ? "worklist" : "lista_trabajo") : (state.lang === "en" ? "self_cure" : "autocura");
  link.download = stem + "_" + (state.cut || "corte") + ".csv";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// ---- one obligation, in the side drawer ----------------------------------------------------
async function openDetail(obligationId, cutDate) {
  const path = "/v1/scores/" + encodeURIComponent(obligationId) + (cutDate ? "?" + query({ cut_date: cutDate }) : "");
  const res = await apiJson(path);
  const drawer = $("drawer");
  $("detail-id").textContent = obligationId;
  const reasons = $("detail-reasons");
  reasons.replaceChildren();
  $("detail-tags").replaceChildren();
  drawer.hidden = false;
  drawer.dataset.obligationId = obligationId;
  if (!res.ok) {
    fields($("detail-fields"), [[t("error"), detailOf(res)]]);
    return;
  }
  const s = res.body;
  for (const [cls, text] of tags(s)) $("detail-tags").append(el("span", text, "tag " + cls));
  const pairs = [
    [t("fCut"), s.cut_date],
    [t("fClient"), s.client_key],
    [t("fProduct"), word("product", s.product)],
    [t("fSegment"), word("segment", s.segment)],
    [t("fDpd"), s.days_past_due],
    [t("fAmount"), fmt.money(s.amount_past_due)],
    [t("fDebit"), s.eligible === null || s.eligible === undefined ? null : s.eligible ? t("yes") : t("no")],
    [t("fProb"), fmt.pct(s.probability)],
    [t("fRollNoAction"), fmt.pct(s.p_roll_no_action)],
    [t("fRollAction"), fmt.pct(s.p_roll_action)],
    [t("fRollLoss"), fmt.money(s.roll_loss)],
    [t("fBenefit"), fmt.money(s.expected_benefit)],
    [t("fDecision"), word("decision", s.decision)],
    [t("fCallOrder"), s.call_order === null || s.call_order === undefined ? null : fmt.int(s.call_order)],
    [t("fModel"), s.model_version],
  ];
  if (s.capacity_limited) pairs.push([t("fCapacity"), t("yes")]);
  if (s.arm) pairs.push([t("fGroup"), word("arm", s.arm)]);
  fields($("detail-fields"), pairs);
  const weights = (s.reasons || []).map((r) => Math.abs(r.contribution || 0));
  const max = Math.max(...weights, 1e-9);
  for (const r of s.reasons || []) {
    const li = el("li", null, "reason-item");
    li.append(el("span", reasonText(r), "reason-label"));
    const row = el("span", null, "reason-row");
    const track = el("span", null, "reason-track");
    const bar = el("span", null, "reason-bar " + (r.contribution === null || r.contribution === undefined ? "rule" : r.contribution >= 0 ? "up" : "down"));
    const has = r.contribution !== null && r.contribution !== undefined;
    bar.style.width = (has ? Math.max(2, (100 * Math.abs(r.contribution)) / max) : 100).toFixed(1) + "%";
    track.append(bar);
    row.append(track, el("span", has ? fmt.signed(r.contribution) + " log-odds" : t("rule"), "reason-value"));
    li.append(row);
    reasons.append(li);
  }
  $("detail-close").focus();
}

function closeDrawer() {
  $("drawer").hidden = true;
}

// ---- model and health ----------------------------------------------------------------------
async function loadModels() {
  const res = await apiJson("/v1/models");
  const dl = $("model-fields");
  if (!res.ok) {
    fields(dl, [[t("registry"), detailOf(res)]]);
    return;
  }
  const champion = (res.body.items || []).find((m) => m.version === res.body.champion);
  if (!champion) {
    fields(dl, [[t("champion"), t("noChampion")]]);
    return;
  }
  fields(dl, [
    [t("version"), champion.version],
    [t("ootAuc"), fmt.num(champion.oot_auc, 3)],
    [t("ootEce"), fmt.num(champion.oot_ece, 4)],
    [t("testAuc"), fmt.num(champion.test_auc, 3)],
    [t("scorePsi"), fmt.num(champion.psi, 3)],
    [t("gate"), champion.gate_passed === null || champion.gate_passed === undefined ? null : champion.gate_passed ? t("gatePassed") : t("gateFailed")],
    [t("registered"), champion.created_at],
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
    state.monitoring = null;
    badge.textContent = res.status === 404 ? t("noData") : "ERROR";
    badge.className = "badge";
    badge.dataset.status = res.status === 404 ? "NO_DATA" : "ERROR";
    $("monitoring-info").textContent = res.status === 404 ? t("noMonitoring") : detailOf(res);
    return;
  }
  const m = res.body;
  state.monitoring = m;
  badge.textContent = word("monitoring_status", m.status);
  badge.dataset.status = m.status;
  badge.className = "badge status-" + m.status.toLowerCase();
  const ref = m.reference || {};
  $("monitoring-info").textContent =
    t("run") + " " + (m.run_at || m.monitoring_run_id) + " · " + t("reference") + " " + (ref.start || "–") + " – " + (ref.end || "–") +
    " · " + t("current") + " " + ((m.current || {}).end || "–") + " · " + t("scorePsi") + " " + fmt.num(m.score.psi, 3) + " (" + word("monitoring_status", m.score.status) + ")";
  for (const f of m.features.slice(0, 8)) {
    const tr = document.createElement("tr");
    const status = el("td", word("monitoring_status", f.status), "status-" + f.status.toLowerCase());
    status.dataset.status = f.status;
    tr.append(el("td", f.feature), el("td", fmt.num(f.psi, 3), "num"), status);
    drift.append(tr);
  }
  if (m.performance.length === 0) {
    const tr = document.createElement("tr");
    const td = el("td", t("noHorizon"), "muted");
    td.colSpan = 5;
    tr.append(td);
    perf.append(tr);
  }
  for (const p of m.performance.slice(-6)) {
    const tr = document.createElement("tr");
    tr.append(el("td", p.cut_date), el("td", fmt.num(p.auc, 3), "num"), el("td", fmt.pct(p.self_cure_rate), "num"),
      el("td", fmt.int(p.no_assign), "num"), el("td", fmt.money(p.net_savings), "num"));
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
    const status = el("td", word("job_status", j.status), "job-" + j.status);
    status.dataset.status = j.status;
    tr.append(el("td", j.job_id, "id"), el("td", word("job_type", j.type)), status,
      el("td", j.created_at), el("td", j.seconds === null ? "–" : fmt.num(j.seconds, 1), "num"));
    body.append(tr);
  }
}

async function runJob(type) {
  const res = await apiJson("/v1/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ type, params: {} }),
  });
  const info = $("action-info");
  if (res.status !== 202) {
    info.textContent = t("notStarted") + ": " + detailOf(res);
    return;
  }
  const jobId = res.body.job_id;
  const say = (status) => {
    info.dataset.status = status;
    info.dataset.type = type;
    info.textContent = t("jobWord") + " " + word("job_type", type) + " " + jobId + ": " + word("job_status", status);
  };
  say(res.body.status);
  await loadJobs();
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const job = await apiJson("/v1/jobs/" + encodeURIComponent(jobId));
    if (!job.ok) return;
    if (!["queued", "running"].includes(job.body.status)) {
      await loadJobs();
      if (type === "score") {
        await loadSummary();
        await Promise.all([applyFilters(), loadCuts()]);
      } else {
        await loadMonitoring();
      }
      drawTrend();
      say(job.body.status);
      return;
    }
    say(job.body.status);
  }
}

function guarded(fn) {
  return (...args) => fn(...args).catch((e) => {
    if (!(e instanceof Unauthorized)) console.error(e);
  });
}

document.addEventListener("DOMContentLoaded", guarded(async () => {
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
  $("view-assign").addEventListener("click", guarded(() => setView("ASSIGN")));
  $("view-no-assign").addEventListener("click", guarded(() => setView("NO_ASSIGN")));
  $("detail-close").addEventListener("click", closeDrawer);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeDrawer(); });
  $("run-score").addEventListener("click", guarded(() => runJob("score")));
  $("run-monitor").addEventListener("click", guarded(() => runJob("monitor")));
  $("lang").addEventListener("change", guarded(async () => {
    await setLanguage($("lang").value);
    if (state.me) await loadAll();
  }));
  const asked = new URLSearchParams(window.location.search).get("lang");
  await setLanguage(asked || localStorage.getItem(LANG_STORE) || "es");
  state.filters = readFilters();
  const stored = key();
  if (stored) {
    const resp = await fetch("/v1/me", { headers: { "X-API-Key": stored } });
    if (resp.ok) await start(await resp.json());
    else signOut(resp.status === 401 ? t("sessionExpired") : "");
  }
}));
