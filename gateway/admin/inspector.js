// The cairn inspector. Overview: charts of rates and latencies computed here from readings of
// /metrics every 2 s (kept in this tab for 15 minutes), and the actors to watch (/admin/top).
// Actors: bindings, a searchable actor list, and one actor's page: its recent events, alarms on
// a timeline, sockets, tables (rows browsed with read-only queries), and evict, export and
// delete. Every request carries the admin token the operator typed (kept in this tab's
// sessionStorage).
import { parseMetrics, sumBy, buckets, bucketIncrease, increase, quantile, History } from "/series.js";
import { lineChart, timeline, formatValue, relative } from "/charts.js";

const state = { token: sessionStorage.getItem("cairn-admin-token") || "", view: "overview", binding: null, after: null,
                actor: null, table: null, offset: 0, busy: false };
const pageSize = 50;
const maxAlarmsDrawn = 12;
const readEveryMs = 2000;
const keepMs = 15 * 60 * 1000;
const rateWindowMs = 6000;
const latencyWindowMs = 10000;
const history = new History(keepMs);
const $ = (id) => document.getElementById(id);

// The alert line. An error from the background readings is cleared by the next good one; one
// from something the operator did stays until the next thing they do.
let errorFromReading = false;
function showError(message, fromReading = false) {
  $("error").textContent = message;
  $("error").hidden = !message;
  errorFromReading = fromReading && !!message;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}),
                                                              Authorization: `Bearer ${state.token}` } });
  if (!response.ok) {
    const text = await response.text();
    let message = text;
    try { message = JSON.parse(text).error; } catch { /* not JSON */ }
    throw new Error(`${response.status}: ${message}`);
  }
  if (options.raw) return response;
  const text = await response.text();
  return path === "/metrics" ? text : JSON.parse(text);
}

function cell(value) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "NULL"
                 : typeof value === "object" ? JSON.stringify(value) : String(value);
  return td;
}

function fill(tableId, rows, onClick) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    for (const value of row.cells) tr.append(cell(value));
    if (row.className) tr.className = row.className;
    if (onClick) {
      tr.classList.add("clickable");
      tr.addEventListener("click", () => onClick(row.key));
    }
    body.append(tr);
  }
}

// ---- Overview --------------------------------------------------------------------------

// What the charts need from one reading, taken once when it arrives.
function extract(samples) {
  const pub = { listener: "public" };
  const one = (name, match = {}) => sumBy(samples, name, match).get("");
  return {
    routes: sumBy(samples, "cairn_http_requests_total", pub, "route"),
    classes: sumBy(samples, "cairn_http_requests_total", pub, (l) => `${(l.status ?? "?")[0]}xx`),
    statuses: sumBy(samples, "cairn_http_requests_total", pub, "status"),
    events: one("cairn_events_total"),
    commits: one("cairn_commits_total"),
    live: one("cairn_instances", { state: "live" }),
    hibernated: one("cairn_instances", { state: "hibernated" }),
    websockets: one("cairn_websockets"),
    connections: one("cairn_http_connections", pub),
    fds: one("process_open_fds"),
    maxFds: one("process_max_fds"),
    alarmsRun: one("cairn_alarms_run_total"),
    http: buckets(samples, "cairn_http_request_duration_seconds", pub),
    commit: buckets(samples, "cairn_commit_duration_seconds"),
    perCommit: buckets(samples, "cairn_events_per_commit"),
    lateness: buckets(samples, "cairn_alarm_lateness_seconds"),
  };
}

const latest = () => history.readings[history.readings.length - 1]?.samples;
const rate = (valueOf) => history.rate(rateWindowMs, (x) => valueOf(x));
const gauge = (valueOf) => history.gauge((x) => valueOf(x));
const quantileOf = (windowMs, q, pick) =>
  history.windowed(windowMs, (rs) => quantile(q, bucketIncrease(rs.map((r) => pick(r.samples)))));
const statusColors = { "2xx": "#2e9d52", "3xx": "#1f6fb4", "4xx": "#e08a1e", "5xx": "#d1495b" };

// Each chart: what it answers (its note), and its series from the history.
const charts = [
  { id: "chart-requests", title: "Requests per second, by route", unit: "/s",
    note: "Public listener. Which parts of the app are used now; a drop to zero is an outage or a client gone.",
    series() {
      const routes = [...(latest()?.routes.keys() ?? [])];
      const ranked = routes.map((route) => ({ name: route, points: rate((x) => x.routes.get(route)) }))
        .filter((s) => s.points.some(([, v]) => v > 0))
        .sort((a, b) => (b.points.at(-1)?.[1] ?? 0) - (a.points.at(-1)?.[1] ?? 0));
      return ranked.slice(0, 6);
    } },
  { id: "chart-status", title: "Requests per second, by status class", unit: "/s",
    note: "Are requests succeeding? 4xx are callers' mistakes (a seat taken), 5xx the server's.",
    series: () => ["2xx", "3xx", "4xx", "5xx"].map((c) => ({ name: c, color: statusColors[c], points: rate((x) => x.classes.get(c) ?? 0) }))
      .filter((s) => s.name === "2xx" || s.points.some(([, v]) => v > 0)) },
  { id: "chart-latency", title: "Request latency", unit: "s",
    note: "From a request's header to its answer (durable writes included). p99 is what the slowest 1 in 100 waits.",
    series: () => [{ name: "p50", points: quantileOf(latencyWindowMs, 0.5, (x) => x.http) },
                   { name: "p99", points: quantileOf(latencyWindowMs, 0.99, (x) => x.http) }] },
  { id: "chart-durable", title: "Durable events and commits per second", unit: "/s",
    note: "Actor events committed to disk, and the commits (fsyncs) that carried them.",
    series: () => [{ name: "events", points: rate((x) => x.events) }, { name: "commits", points: rate((x) => x.commits) }] },
  { id: "chart-batch", title: "Events per commit", unit: "",
    note: "Group commit at work: above 1, one fsync made several events durable.",
    series: () => [{ name: "mean", points: history.windowed(rateWindowMs, (rs) => {
                     const commits = increase(rs.map((r) => r.samples.commits));
                     return commits > 0 ? increase(rs.map((r) => r.samples.events)) / commits : null;
                   }) },
                   { name: "p99", points: quantileOf(latencyWindowMs, 0.99, (x) => x.perCommit) }] },
  { id: "chart-commit", title: "Commit latency", unit: "s",
    note: "One commit, its fsync included: the disk's share of a write's latency.",
    series: () => [{ name: "p50", points: quantileOf(latencyWindowMs, 0.5, (x) => x.commit) },
                   { name: "p99", points: quantileOf(latencyWindowMs, 0.99, (x) => x.commit) }] },
  { id: "chart-instances", title: "Actor instances", unit: "",
    note: "Live ones are in memory; hibernated ones were evicted and keep their WebSockets open.",
    series: () => [{ name: "live", points: gauge((x) => x.live) }, { name: "hibernated", points: gauge((x) => x.hibernated) }] },
  { id: "chart-sockets", title: "Open WebSockets and connections", unit: "",
    note: "Sockets accepted by actors (hibernated or not), and the public listener's open connections.",
    series: () => [{ name: "websockets", points: gauge((x) => x.websockets) }, { name: "connections", points: gauge((x) => x.connections) }] },
  { id: "chart-alarms", title: "Alarm lateness", unit: "s",
    note: "How long after its due time an alarm ran (over the last minute). Growing lateness: alarms queue behind work.",
    series: () => [{ name: "p50", points: quantileOf(60000, 0.5, (x) => x.lateness) },
                   { name: "p99", points: quantileOf(60000, 0.99, (x) => x.lateness) }] },
  { id: "chart-refused", title: "Refused per second: 503, 504, 429", unit: "/s",
    note: "503: an actor's queue is full or the node is not serving it; 504: an actor did not answer in time; 429: rate limited.",
    series: () => ["503", "504", "429"].map((status) => ({ name: status, points: rate((x) => x.statuses.get(status) ?? 0) })) },
  { id: "chart-fds", title: "Open descriptors against the limit", unit: "",
    note: "Each live instance holds 2 and each connection 1; near the limit, new connections are refused.",
    series: () => [{ name: "open", points: gauge((x) => x.fds) }, { name: "limit", color: "#9aa3ad", points: gauge((x) => x.maxFds) }] },
];

function drawCharts() {
  if (history.readings.length === 0) return;
  const end = history.readings[history.readings.length - 1].t;
  const start = Math.max(history.readings[0].t, end - keepMs);
  $("charts").replaceChildren(...charts.map((c) =>
    lineChart({ id: c.id, title: c.title, unit: c.unit, note: c.note, series: c.series(), start, end })));
  $("overview-time").textContent = new Date(end).toLocaleTimeString();
}

async function readMetrics() {
  const text = await api("/metrics");
  history.push(Date.now(), extract(parseMetrics(text)));
  if (state.view === "overview") drawCharts();
}

async function loadTop() {
  const top = await api(`/admin/top?seconds=${$("top-window").value}&limit=10`);
  const open = (row) => showActor(row.binding, row.name).catch((e) => showError(e.message));
  const rows = (list, cells) => list.map((row) => ({ key: row, cells: [`${row.binding} / ${row.name}`, ...cells(row)] }));
  fill("top-busiest", rows(top.busiest, (r) => [r.events, formatValue(r.p99_ms / 1000, "s")]), open);
  fill("top-slowest", rows(top.slowest, (r) => [formatValue(r.p99_ms / 1000, "s"), r.events]), open);
  fill("top-failing", rows(top.failing, (r) => [r.errors, r.events]), open);
}

// ---- Actors ----------------------------------------------------------------------------

const quote = (name) => `"${name.replaceAll('"', '""')}"`;
const actorPath = (binding, name) => `/admin/bindings/${encodeURIComponent(binding)}/actors/${encodeURIComponent(name)}`;

async function loadBindings() {
  const { bindings } = await api("/admin/bindings");
  fill("bindings", bindings.map((b) => ({ key: b.binding, cells: [b.binding, b.actors, b.live, b.hibernated] })),
       (binding) => openBinding(binding).catch((e) => showError(e.message)));
  if (!state.binding && bindings.length > 0) await openBinding(bindings[0].binding);
}

async function openBinding(binding) {
  state.binding = binding;
  $("actors-binding").textContent = binding;
  $("actors-section").hidden = false;
  $("actors").querySelector("tbody").replaceChildren();
  state.after = "";
  await loadActors(false);
}

async function loadActors(more) {
  const prefix = $("prefix").value;
  const query = new URLSearchParams({ prefix, limit: String(pageSize), after: more ? state.after : "" });
  const page = await api(`/admin/bindings/${encodeURIComponent(state.binding)}/actors?${query}`);
  const body = $("actors").querySelector("tbody");
  if (!more) body.replaceChildren();
  for (const a of page.actors) {
    const tr = document.createElement("tr");
    tr.classList.add("clickable");
    for (const v of [a.name, a.live ? "live" : (a.websockets > 0 ? "hibernated" : "evicted"), a.websockets, a.id.slice(0, 12)]) {
      tr.append(cell(v));
    }
    tr.addEventListener("click", () => openActor(state.binding, a.name).catch((e) => showError(e.message)));
    body.append(tr);
  }
  state.after = page.next;
  $("more").hidden = page.next === null;
}

const clock = (ms) => {
  const d = new Date(ms);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
};

async function showActor(binding, name) {
  setView("actors");
  if (state.binding !== binding) await openBinding(binding);
  await openActor(binding, name);
}

async function openActor(binding, name) {
  const a = await api(actorPath(binding, name));
  state.actor = { binding, name };
  $("actor-section").hidden = false;
  $("rows-section").hidden = true;
  $("actor-status").textContent = "";
  $("actor-name").textContent = `${a.binding} / ${a.name}`;
  const facts = [["state", a.live ? "live" : (a.sockets.length > 0 ? "hibernated" : "evicted")],
                 ["id", a.id], ["database", `${a.database_bytes} bytes`],
                 ["last event", a.last_event_ms ? new Date(a.last_event_ms).toISOString() : "none since start"],
                 ["schema", a.schema_version > 0
                   ? `version ${a.schema_version}: ${a.migrations.map((m) => `${m.version} ${m.name}`).join(", ")}`
                   : "no migrations"],
                 ["history", !a.history ? "none"
                   : `${a.history.on ? "kept" : "off"}; ${a.history.changes} changes, ${a.history.bytes} bytes` +
                     (a.history.restorable_from_ms != null
                       ? `; restorable from ${new Date(a.history.restorable_from_ms).toISOString()} (${a.history.cut_because} then)`
                       : "")]];
  $("actor-facts").replaceChildren(...facts.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    return [dt, dd];
  }));
  const events = a.recent_events ?? [];
  fill("events", events.length > 0 || a.recent_events === null
    ? events.map((e) => ({ className: e.status >= 500 ? "failed" : "",
                           cells: [clock(e.at_ms), e.kind, e.what, e.status, e.duration_ms.toFixed(3),
                                   e.batch === null ? "open" : e.batch === 0 ? "none" : `${e.batch}`] }))
    : [{ cells: ["none yet", "", "", "", "", ""] }]);
  if (a.recent_events === null) fill("events", [{ cells: ["kept by no actor: the server runs with --recent-events=0", "", "", "", "", ""] }]);
  // The timeline shows the soonest alarms (the server lists them by due time); the table all.
  const now = a.now_ms;
  const drawn = a.alarms.slice(0, maxAlarmsDrawn);
  const last = Math.max(now + 60_000, ...drawn.map((al) => al.due_ms));
  const first = Math.min(now - 5_000, ...drawn.map((al) => al.due_ms));
  $("alarm-timeline").replaceChildren(timeline({
    id: "alarm-svg", now, start: first, end: last + (last - first) * 0.05,
    items: drawn.map((al) => ({ t: al.due_ms, label: al.name || "(unnamed)", late: al.due_ms < now })),
  }));
  fill("alarms", a.alarms.map((al) => ({ cells: [al.name || "(unnamed)", `${new Date(al.due_ms).toISOString()} (${relative(al.due_ms - now)})`, al.retries] })));
  fill("sockets", a.sockets.map((s) => ({ cells: [s.id, s.tags.join(", "), s.attachment] })));
  fill("tables", a.tables.map((t) => ({ key: t.name, cells: [t.name, t.type, t.rows ?? ""] })),
       (table) => browse(table, 0).catch((e) => showError(e.message)));
}

async function browse(table, offset) {
  state.table = table;
  state.offset = Math.max(0, offset);
  const sql = `SELECT * FROM ${quote(table)} LIMIT ${pageSize} OFFSET ${state.offset}`;
  const result = await api(`${actorPath(state.actor.binding, state.actor.name)}/query`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sql, max_rows: pageSize }),
  });
  $("rows-section").hidden = false;
  $("rows-table").textContent = `${table} (from row ${state.offset + 1})`;
  const head = document.createElement("tr");
  for (const c of result.columns) {
    const th = document.createElement("th");
    th.textContent = c;
    head.append(th);
  }
  $("rows").querySelector("thead").replaceChildren(head);
  fill("rows", result.rows.map((r) => ({ cells: r })));
  $("rows-prev").disabled = state.offset === 0;
  $("rows-next").disabled = result.rows.length < pageSize;
}

async function actorAction(kind) {
  showError("");
  const { binding, name } = state.actor;
  const path = actorPath(binding, name);
  const status = $("actor-status");
  if (kind === "evict") {
    const { evicted } = await api(`${path}/evict`, { method: "POST" });
    await openActor(binding, name);
    status.textContent = evicted ? "Evicted: its next event starts a new instance." : "It was not live.";
  } else if (kind === "export") {
    const response = await api(`${path}/export`, { raw: true });
    const blob = await response.blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${binding}-${name}.sqlite`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    status.textContent = `Exported ${blob.size} bytes as ${link.download}.`;
  } else if (kind === "delete") {
    const sure = window.confirm(`Delete ${binding} / ${name}? Its database, alarms and name are removed and its `
                                + "WebSockets closed. This cannot be undone (export it first to keep a copy).");
    if (!sure) {
      status.textContent = "Not deleted.";
      return;
    }
    const result = await api(path, { method: "DELETE" });
    $("actor-section").hidden = true;
    showError("");
    await loadBindings();
    await loadActors(false);
    $("actors-binding").textContent = `${binding} (deleted ${name}: ${result.sockets_closed} sockets closed)`;
  }
}

// ---- Views and refresh -----------------------------------------------------------------

function setView(view) {
  state.view = view;
  $("overview-view").hidden = view !== "overview";
  $("actors-view").hidden = view !== "actors";
  for (const b of $("views").querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.view === view));
  if (view === "overview") drawCharts();
  if (view === "actors") loadBindings().catch((e) => showError(e.message));
}

async function refresh() {
  if (state.busy) return;  // a slow server: never two readings at once
  state.busy = true;
  try {
    await readMetrics();
    if (state.view === "overview") await loadTop();
    if (errorFromReading) showError("");
  } finally {
    state.busy = false;
  }
}

async function connect() {
  showError("");
  try {
    await refresh();
    $("app").hidden = false;
    $("views").hidden = false;
    setView(state.view);
  } catch (e) {
    $("app").hidden = true;
    showError(e.message);
  }
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("cairn-admin-token", state.token);
  connect();
});
for (const b of $("views").querySelectorAll("button")) b.addEventListener("click", () => setView(b.dataset.view));
$("top-window").addEventListener("change", () => loadTop().catch((e) => showError(e.message)));
$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  loadActors(false).catch((e) => showError(e.message));
});
$("more").addEventListener("click", () => loadActors(true).catch((e) => showError(e.message)));
$("rows-prev").addEventListener("click", () => browse(state.table, state.offset - pageSize).catch((e) => showError(e.message)));
$("rows-next").addEventListener("click", () => browse(state.table, state.offset + pageSize).catch((e) => showError(e.message)));
$("actor-refresh").addEventListener("click", () => openActor(state.actor.binding, state.actor.name).catch((e) => showError(e.message)));
for (const kind of ["evict", "export", "delete"]) {
  $(`actor-${kind}`).addEventListener("click", () => actorAction(kind).catch((e) => showError(e.message)));
}
setInterval(() => {
  if (!$("app").hidden) refresh().catch((e) => showError(`${e.message} (still trying every ${readEveryMs / 1000} s)`, true));
}, readEveryMs);
if (state.token) {
  $("token").value = state.token;
  connect();
}
