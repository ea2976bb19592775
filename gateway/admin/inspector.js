// The cairn inspector: bindings, a searchable actor list, one actor's tables (rows browsed
// with read-only queries), sockets and alarms, and live counters from /metrics. Every
// request carries the admin token the operator typed (kept in this tab's sessionStorage).
"use strict";

const state = { token: sessionStorage.getItem("cairn-admin-token") || "", binding: null, after: null,
                actor: null, table: null, offset: 0 };
const pageSize = 50;
const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}),
                                                              Authorization: `Bearer ${state.token}` } });
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try { message = JSON.parse(text).error; } catch { /* not JSON */ }
    throw new Error(`${response.status}: ${message}`);
  }
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
    if (onClick) {
      tr.classList.add("clickable");
      tr.addEventListener("click", () => onClick(row.key));
    }
    body.append(tr);
  }
}

const quote = (name) => `"${name.replaceAll('"', '""')}"`;
const actorPath = (name) => `/admin/bindings/${encodeURIComponent(state.binding)}/actors/${encodeURIComponent(name)}`;

async function loadBindings() {
  const { bindings } = await api("/admin/bindings");
  fill("bindings", bindings.map((b) => ({ key: b.binding, cells: [b.binding, b.actors, b.live, b.hibernated] })),
       (binding) => openBinding(binding).catch((e) => showError(e.message)));
  $("app").hidden = false;
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
    tr.addEventListener("click", () => openActor(a.name).catch((e) => showError(e.message)));
    body.append(tr);
  }
  state.after = page.next;
  $("more").hidden = page.next === null;
}

async function openActor(name) {
  const a = await api(actorPath(name));
  state.actor = name;
  $("actor-section").hidden = false;
  $("rows-section").hidden = true;
  $("actor-name").textContent = `${a.binding} / ${a.name}`;
  const facts = [["state", a.live ? "live" : (a.sockets.length > 0 ? "hibernated" : "evicted")],
                 ["id", a.id], ["database", `${a.database_bytes} bytes`],
                 ["last event", a.last_event_ms ? new Date(a.last_event_ms).toISOString() : "none since start"]];
  $("actor-facts").replaceChildren(...facts.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    return [dt, dd];
  }));
  fill("tables", a.tables.map((t) => ({ key: t.name, cells: [t.name, t.type, t.rows ?? ""] })),
       (table) => browse(table, 0).catch((e) => showError(e.message)));
  fill("sockets", a.sockets.map((s) => ({ cells: [s.id, s.tags.join(", "), s.attachment] })));
  fill("alarms", a.alarms.map((al) => ({ cells: [al.name || "(unnamed)", new Date(al.due_ms).toISOString(), al.retries] })));
}

async function browse(table, offset) {
  state.table = table;
  state.offset = Math.max(0, offset);
  const sql = `SELECT * FROM ${quote(table)} LIMIT ${pageSize} OFFSET ${state.offset}`;
  const result = await api(`${actorPath(state.actor)}/query`, {
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

// The samples worth watching, summed over their labels unless a label set is named.
const watched = ["cairn_instances", "cairn_websockets", "cairn_actors", "cairn_events_total", "cairn_commits_total",
                 "cairn_http_requests_total", "cairn_evictions_total", "cairn_alarms_pending", "process_open_fds"];

async function loadCounters() {
  const text = await api("/metrics");
  const rows = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || !line) continue;
    const name = line.split(/[{ ]/, 1)[0];
    if (!watched.includes(name)) continue;
    const value = line.slice(line.lastIndexOf(" ") + 1);
    const labels = line.includes("{") ? line.slice(line.indexOf("{"), line.lastIndexOf("}") + 1) : "";
    rows.push({ cells: [name + labels, value] });
  }
  fill("counters", rows);
  $("counters-time").textContent = new Date().toLocaleTimeString();
}

async function connect() {
  showError("");
  try {
    await loadBindings();
    await loadCounters();
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
$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  loadActors(false).catch((e) => showError(e.message));
});
$("more").addEventListener("click", () => loadActors(true).catch((e) => showError(e.message)));
$("rows-prev").addEventListener("click", () => browse(state.table, state.offset - pageSize).catch((e) => showError(e.message)));
$("rows-next").addEventListener("click", () => browse(state.table, state.offset + pageSize).catch((e) => showError(e.message)));
setInterval(() => {
  if (!$("app").hidden) loadCounters().catch((e) => showError(e.message));
}, 2000);
if (state.token) {
  $("token").value = state.token;
  connect();
}
