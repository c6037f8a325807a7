// Tether dashboard: plain JavaScript, no build step, no dependency. Every figure comes from the
// engine's JSON API, called with the tab's token; text from the API is set as text (never as
// HTML), so a run's data cannot become markup or code (the page's CSP forbids inline script).
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "tether.token";
const TERMINAL = new Set(["completed", "failed", "cancelled", "limit_exceeded", "continued"]);
const STATUSES = ["new", "running", "paused", "completed", "failed", "cancelled",
                  "limit_exceeded", "continued"];

// ------------------------------------------------------------------ the token and the API

// A link `/ui#token=...` (what a person may be handed) signs the tab in: the fragment never
// reaches a server or a log, and is removed from the address bar at once.
function takeTokenFromLink() {
  const match = location.hash.match(/^#token=([^&]*)$/);
  if (!match) return false;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + "#/runs");
  return true;
}
takeTokenFromLink();

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = "Bearer " + token;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET", headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (response.status === 401) { askForToken(body && body.error); }
  if (!response.ok) {
    const message = (body && (body.error || body.detail)) || response.statusText;
    throw new ApiError(response.status, message);
  }
  return body;
}

function askForToken(message) {
  document.getElementById("login").hidden = false;
  document.getElementById("view").hidden = true;
  const hadToken = Boolean(sessionStorage.getItem(TOKEN_KEY));
  document.getElementById("login-error").textContent =
    hadToken ? "That token was refused: " + (message || "401") : "";
  generation += 1;  // the view's polling stops until someone signs in
  stopPolling();
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token").value = "";
  document.getElementById("login").hidden = true;
  document.getElementById("view").hidden = false;
  start();
});

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

// ------------------------------------------------------------------ DOM helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replace an element's children; null, undefined and false leave no trace (the DOM's own
// replaceChildren would print them as text).
function fill(el, ...children) {
  el.replaceChildren(...children.flat(2).filter((c) => c !== null && c !== undefined && c !== false));
}

function badge(status) { return h("span", { class: "badge " + status, dataset: { status } }, status); }

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return ms + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + Math.round(s % 60) + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}

function pretty(value) { return JSON.stringify(value, null, 2); }

function showProblem(error) {
  const el = document.getElementById("problem");
  if (!error) { el.hidden = true; el.textContent = ""; return; }
  el.hidden = false;
  el.textContent = error.message || String(error);
}

// ------------------------------------------------------------------ routing and polling

let pollTimer = null;
let refresh = null;  // the current view's data refresher
let generation = 0;  // a view left behind never draws over the new one

function stopPolling() { if (pollTimer) clearTimeout(pollTimer); pollTimer = null; }

// Refresh, then again after POLL_MS, or after ten times as long as the refresh took when
// that is longer: a view that is costly to read (a search over a very large index) costs the
// engine at most a tenth of one reader per open tab.
async function poll(mine) {
  const began = performance.now();
  await tick();
  if (mine !== generation) return;
  const wait = Math.max(POLL_MS, 10 * (performance.now() - began));
  pollTimer = setTimeout(() => poll(mine), wait);
}

function parseHash() {
  const [path, query] = (location.hash.replace(/^#/, "") || "/runs").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent),
           params: new URLSearchParams(query || "") };
}

async function tick() {
  if (!refresh) return;
  const mine = generation;
  try {
    await refresh(mine);
    document.getElementById("live").classList.remove("stale");
    showProblem(null);
  } catch (error) {
    if (mine !== generation) return;
    document.getElementById("live").classList.add("stale");
    if (!(error instanceof ApiError && error.status === 401)) showProblem(error);
  }
}

function route() {
  generation += 1;
  stopPolling();
  const { parts, params } = parseHash();
  const view = document.getElementById("view");
  fill(view);
  const page = parts[0] || "runs";
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === (page === "run" ? "runs" : page));
  }
  if (page === "run" && parts[1]) refresh = runView(view, parts[1], params);
  else if (page === "approvals") refresh = approvalsView(view);
  else if (page === "operations") refresh = operationsView(view);
  else refresh = runsView(view, params);
  poll(generation);
}

async function start() {
  try {
    const me = await api("/whoami");
    document.getElementById("who").textContent = me.user_id ? "signed in as " + me.user_id : "";
    document.getElementById("sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
    window.tetherUser = me.user_id;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;  // the form is shown
    showProblem(error);
  }
  route();
}

window.addEventListener("hashchange", () => {
  if (takeTokenFromLink()) start(); else route();
});

// ------------------------------------------------------------------ Runs

function runsView(root, params) {
  const filters = {
    status: params.get("status") || "", workflow_id: params.get("workflow_id") || "",
    q: params.get("q") || "", since: params.get("since") || "", until: params.get("until") || "",
  };
  const cursors = [];  // the cursors of the pages before this one (Previous pops)
  let cursor = null;
  const counts = h("div", { class: "counts", id: "counts" });
  const statusSelect = h("select", { name: "status" }, h("option", { value: "" }, "any status"),
    STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)));
  const input = (name, placeholder, type = "text") =>
    h("input", { name, type, placeholder, value: filters[name] });
  const form = h("form", { class: "filters", id: "filters" },
    h("label", {}, "Status", statusSelect),
    h("label", {}, "Workflow", input("workflow_id", "workflow id")),
    h("label", {}, "Search id", input("q", "part of an execution id")),
    h("label", {}, "Started from", input("since", "", "datetime-local")),
    h("label", {}, "Started before", input("until", "", "datetime-local")),
    h("button", { type: "submit", class: "primary" }, "Apply"),
    h("button", { type: "button", onclick: () => {
      if (location.hash === "#/runs") route(); else location.hash = "#/runs";
    } }, "Clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    location.hash = "#/runs?" + next.toString();
  });
  const body = h("tbody");
  const table = h("table", { id: "runs" }, h("thead", {}, h("tr", {},
    ["Execution", "Status", "Workflow", "Version", "Started", "Duration"].map((t) => h("th", {}, t)))),
    body);
  const position = h("span");
  const previous = h("button", { id: "previous", onclick: () => { cursor = cursors.pop() || null; tick(); } }, "Previous");
  const next = h("button", { id: "next" }, "Next page");
  let nextCursor = null;
  next.addEventListener("click", () => { cursors.push(cursor); cursor = nextCursor; tick(); });
  root.append(h("h1", {}, "Runs"), counts, form, table, h("div", { class: "pager" }, previous, next, position));

  const query = () => {
    const q = new URLSearchParams();
    for (const key of ["workflow_id", "q"]) if (filters[key]) q.set(key, filters[key]);
    for (const key of ["since", "until"]) {
      if (filters[key]) q.set(key, new Date(filters[key]).toISOString());  // local time, as typed
    }
    return q;
  };

  return async (mine) => {
    const q = query();
    const countsBody = await api("/views/execution-counts?" + q);
    if (filters.status) q.set("status", filters.status);
    q.set("limit", "25");
    if (cursor) q.set("cursor", cursor);
    const page = await api("/views/executions?" + q);
    if (mine !== generation) return;
    fill(counts, h("button", { class: filters.status ? "" : "active",
      onclick: () => { statusSelect.value = ""; form.requestSubmit(); } }, "all", h("b", {}, countsBody.total)),
    ...STATUSES.filter((s) => countsBody.counts[s] > 0 || s === filters.status).map((s) =>
      h("button", { class: s === filters.status ? "active" : "", dataset: { count: s },
        onclick: () => { statusSelect.value = s; form.requestSubmit(); } },
        badge(s), h("b", {}, countsBody.counts[s]))));
    fill(body, ...page.executions.map((run) => h("tr", {
      class: "clickable", dataset: { id: run.execution_id },
      onclick: () => { location.hash = "#/run/" + encodeURIComponent(run.execution_id); },
    },
      h("td", {}, h("a", { class: "mono", href: "#/run/" + encodeURIComponent(run.execution_id) }, run.execution_id)),
      h("td", {}, badge(run.status)), h("td", {}, run.workflow_id), h("td", {}, run.workflow_version),
      h("td", {}, when(run.started_at)), h("td", {}, duration(run.duration_ms)))));
    if (!page.executions.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "notice" }, "No runs match.")));
    nextCursor = page.next_cursor;
    next.disabled = !nextCursor;
    previous.disabled = cursors.length === 0;
    position.textContent = "page " + (cursors.length + 1);
  };
}

// ------------------------------------------------------------------ A run

function runView(root, executionId, params) {
  let selected = params.get("seq") ? Number(params.get("seq")) : null;
  let drawnSeq = null;
  const header = h("div", { class: "card", id: "run-header" });
  const approvals = h("div", { id: "run-approvals" });
  const legend = h("div", { class: "legend" }, h("span", { class: "l-queue" }, "queue wait"),
    h("span", { class: "l-run" }, "running"), h("span", { class: "l-fail" }, "failed"),
    h("span", { class: "l-park" }, "parked / waiting"), h("span", { class: "l-wait" }, "decided"));
  const timeline = h("div", { class: "timeline", id: "timeline" });
  const journalBody = h("tbody");
  const journal = h("div", { class: "journal card" }, h("table", { id: "journal" }, h("thead", {}, h("tr", {},
    ["Seq", "Record", "Node", "At"].map((t) => h("th", {}, t)))), journalBody));
  const record = h("div", { class: "card", id: "record" }, h("p", { class: "notice" }, "Select a record to see it, the state it left, and fork from it."));
  root.append(h("p", {}, h("a", { href: "#/runs" }, "← Runs")), header, approvals,
    h("h2", {}, "Timeline"), h("div", { class: "card" }, legend, timeline),
    h("div", { class: "split" }, h("div", {}, h("h2", {}, "Journal"), journal),
      h("div", {}, h("h2", {}, "Record"), record)));

  const select = (seq) => {
    selected = seq;
    drawnSeq = seq;
    history.replaceState(null, "", "#/run/" + encodeURIComponent(executionId) + "?seq=" + seq);
    for (const tr of journalBody.children) tr.classList.toggle("selected", Number(tr.dataset.seq) === seq);
    showRecord(record, executionId, seq);
  };

  return async (mine) => {
    const id = encodeURIComponent(executionId);
    const [run, line, events, pending] = await Promise.all([
      api("/executions/" + id), api("/views/executions/" + id + "/timeline"),
      api("/executions/" + id + "/events"), api("/executions/" + id + "/approvals")]);
    if (mine !== generation) return;
    drawHeader(header, run, line);
    drawApprovals(approvals, executionId, pending.pending);
    drawTimeline(timeline, line, select);
    const records = events.events.filter((e) => !e.derived);
    fill(journalBody, ...records.map((e) => h("tr", {
      class: "clickable" + (e.sequence === selected ? " selected" : ""), dataset: { seq: e.sequence, type: e.kind.type },
      onclick: () => select(e.sequence) },
      h("td", { class: "mono" }, e.sequence), h("td", {}, e.kind.type), h("td", {}, e.node_id || ""),
      h("td", {}, when(e.created_at)))));
    if (selected !== null && drawnSeq !== selected) { drawnSeq = selected; showRecord(record, executionId, selected); }
  };
}

function drawHeader(el, run, line) {
  const started = run.started_at ? Date.parse(run.started_at) : null;
  const end = run.completed_at ? Date.parse(run.completed_at) : Date.parse(line.now);
  const failure = [...line.rows].reverse().find((r) => r.traceback);
  fill(el, 
    h("h1", {}, h("span", { class: "mono" }, run.execution_id), " ", badge(run.status)),
    h("dl", { class: "meta" },
      h("dt", {}, "Workflow"), h("dd", {}, run.workflow_id + " @ " + run.workflow_version),
      h("dt", {}, "Started"), h("dd", {}, when(run.started_at)),
      h("dt", {}, "Duration"), h("dd", {}, started ? duration(end - started) : ""),
      run.forked_from ? [h("dt", {}, "Forked from"), h("dd", {}, h("a", {
        href: "#/run/" + encodeURIComponent(run.forked_from.execution_id) + "?seq=" + run.forked_from.at_seq },
        run.forked_from.execution_id + " at record " + run.forked_from.at_seq))] : null,
      run.segment_id && run.segment_id !== run.execution_id ? [h("dt", {}, "Live segment"),
        h("dd", {}, h("a", { href: "#/run/" + encodeURIComponent(run.segment_id) }, run.segment_id))] : null),
    run.error ? h("div", { id: "failure" }, h("h2", {}, "Failure"), h("p", { class: "error" }, run.error),
      failure ? h("pre", { class: "traceback" }, failure.traceback) : null) : null,
    TERMINAL.has(run.status) ? null : h("p", {}, h("button", { id: "cancel", class: "danger", onclick: async () => {
      if (!confirm("Cancel " + run.execution_id + "?")) return;
      try { await api("/executions/" + encodeURIComponent(run.execution_id) + "/cancel", { method: "POST", body: { reason: "cancelled from the dashboard" } }); tick(); }
      catch (error) { showProblem(error); }
    } }, "Cancel run")),
    run.current_state ? h("details", {}, h("summary", {}, "Current state"), h("pre", {}, pretty(run.current_state))) : null);
}

function drawTimeline(el, line, select) {
  if (!line.rows.length) { fill(el, h("p", { class: "notice" }, "No steps yet.")); return; }
  const now = Date.parse(line.now);
  const start = Math.min(...line.rows.map((r) => r.queued_at_ms));
  const end = Math.max(start + 1, ...line.rows.map((r) => Math.max(r.ended_at_ms || now,
    ...r.parks.map((p) => p.until_ms))));
  const pct = (ms) => ((Math.min(Math.max(ms, start), end) - start) / (end - start)) * 100;
  const bar = (cls, from, to, title) => {
    const b = h("div", { class: "tl-bar " + cls, title });
    b.style.left = pct(from) + "%";
    b.style.width = Math.max(pct(to) - pct(from), 0.2) + "%";
    return b;
  };
  const scale = h("div", { class: "tl-row tl-scale" }, h("div", {}, "since the first hand-out"),
    h("div", { class: "tl-axis" }, h("span", {}, "0"), h("span", {}, duration(end - start))), h("div", {}));
  fill(el, scale, ...line.rows.map((r) => {
    const track = h("div", { class: "tl-track" });
    if (r.kind === "step") {
      const ready = Math.max(r.queued_at_ms, r.not_before_ms || 0);
      const began = r.started_at_ms === null ? now : r.started_at_ms;
      if (r.not_before_ms && r.not_before_ms > r.queued_at_ms) track.append(bar("park", r.queued_at_ms, r.not_before_ms, "retry backoff"));
      if (r.outcome !== "parked") track.append(bar("queue", ready, began, "queue wait " + duration(r.queue_wait_ms ?? (now - ready))));
      for (const p of r.parks) track.append(bar("park", p.at_ms, p.until_ms, "parked: " + p.error));
      if (r.started_at_ms !== null) track.append(bar("run " + r.outcome, r.started_at_ms, r.ended_at_ms || now, "ran " + duration(r.run_ms)));
    } else {
      track.append(bar("wait " + r.outcome, r.queued_at_ms, r.ended_at_ms || now, r.kind + ": " + r.outcome));
    }
    const label = r.kind === "step"
      ? r.node_id + (r.attempt > 1 ? " · attempt " + r.attempt : "")
      : r.node_id + " · " + r.kind;
    const detail = r.kind === "step"
      ? (r.worker_id ? r.worker_id : r.outcome) + (r.run_ms !== null ? " · " + duration(r.run_ms) : "")
      : r.outcome + (r.decided_by ? " by " + r.decided_by : "");
    return h("div", { class: "tl-row", dataset: { node: r.node_id, attempt: r.attempt, outcome: r.outcome, kind: r.kind },
      onclick: () => select(r.end_seq || r.seq) },
      h("div", { class: "tl-label", title: label }, label, " ", badge(r.outcome)), track,
      h("div", { class: "tl-worker", title: detail }, detail));
  }));
}

// The state at a record and its diff come from the time-travel route; an engine without it
// still shows the record.
async function showRecord(el, executionId, seq) {
  const id = encodeURIComponent(executionId);
  fill(el, h("p", { class: "notice" }, "Loading record " + seq + "…"));
  const events = await api("/executions/" + id + "/events?from_seq=" + seq).catch(() => ({ events: [] }));
  const event = events.events.find((e) => e.sequence === seq && !e.derived);
  let state = null, stateProblem = null;
  try { state = await api("/executions/" + id + "/states?at=" + seq); }
  catch (error) { stateProblem = error.message; }
  const result = h("p", { id: "fork-result" });
  const fork = h("button", { class: "primary", id: "fork", onclick: async () => {
    fork.disabled = true;
    try {
      const made = await api("/executions/" + id + "/fork", { method: "POST", body: { at_seq: seq } });
      location.hash = "#/run/" + encodeURIComponent(made.execution_id);
    } catch (error) {
      result.textContent = "Fork refused: " + error.message;
      result.className = "error";
      fork.disabled = false;
    }
  } }, "Fork from here");
  fill(el, 
    h("h3", {}, "Record " + seq + (event ? " · " + event.kind.type : "")),
    event && event.kind.traceback ? h("pre", { class: "traceback" }, event.kind.traceback) : null,
    h("pre", { id: "record-json" }, pretty(event ? event.kind : "not found")),
    h("p", {}, fork, " starts a new run from the state at this record."), result,
    state ? [h("h3", {}, "Changes made by this record"), drawDiff(state.diff),
      h("h3", {}, "State after it"), h("pre", { id: "state-json" }, pretty(state.state))]
      : h("p", { class: "notice", id: "state-missing" }, "State at this record unavailable: " + stateProblem));
}

function drawDiff(diff) {
  if (!diff || !diff.length) return h("p", { class: "notice" }, "No change to the state.");
  return h("ul", { class: "diff", id: "diff" }, diff.map((op) => h("li", { class: op.op },
    op.op + " " + op.path + ("value" in op ? " = " + JSON.stringify(op.value) : ""))));
}

// ------------------------------------------------------------------ Approvals

function decisionForm(executionId, nodeId, onDone) {
  const user = h("input", { name: "user_id", placeholder: "your name", value: window.tetherUser || "",
    disabled: Boolean(window.tetherUser), required: true });
  const comment = h("input", { name: "comment", placeholder: "comment (optional)" });
  const patch = h("input", { name: "state_patch", class: "mono", placeholder: "state patch, JSON (optional)" });
  const problem = h("span", { class: "error" });
  const decide = (decision) => async () => {
    const body = { decision, comment: comment.value, node_id: nodeId };
    if (patch.value.trim()) {
      try { body.state_patch = JSON.parse(patch.value); }
      catch (error) { problem.textContent = "The state patch is not JSON: " + error.message; patch.focus(); return; }
    }
    if (!window.tetherUser) {
      if (!user.value.trim()) { problem.textContent = "Say who decides."; user.focus(); return; }
      body.user_id = user.value.trim();
    }
    try {
      await api("/executions/" + encodeURIComponent(executionId) + "/approve", { method: "POST", body });
      problem.textContent = "";
      if (document.activeElement) document.activeElement.blur();  // let the list redraw
      onDone();
    } catch (error) { problem.textContent = error.message; }
  };
  return h("div", { class: "actions" }, user, comment, patch,
    h("button", { class: "primary", dataset: { decision: "approved" }, onclick: decide("approved") }, "Approve"),
    h("button", { class: "danger", dataset: { decision: "rejected" }, onclick: decide("rejected") }, "Reject"),
    problem);
}

function drawApprovals(el, executionId, pending) {
  if (el.contains(document.activeElement) && pending.length) return;  // someone is typing
  fill(el, ...pending.map((p) => h("div", { class: "card approval", dataset: { node: p.node_id } },
    h("div", {}, h("b", {}, "Waiting for a decision at " + p.node_id), h("p", {}, p.description),
      h("p", { class: "notice" }, "requested " + when(p.requested_at) + (p.timeout_at ? ", times out " + when(p.timeout_at) : ""))),
    decisionForm(executionId, p.node_id, tick))));
}

function approvalsView(root) {
  const list = h("div", { id: "approvals" });
  const pager = h("div", { class: "pager" });
  let cursor = null;
  const cursors = [];
  root.append(h("h1", {}, "Pending approvals"), list, pager);
  return async (mine) => {
    const page = await api("/views/approvals?limit=25" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    if (mine !== generation || list.contains(document.activeElement)) return;
    fill(list, ...page.approvals.map((p) => h("div", { class: "card approval", dataset: { id: p.execution_id, node: p.node_id } },
      h("div", {}, h("a", { class: "mono", href: "#/run/" + encodeURIComponent(p.execution_id) }, p.execution_id),
        " at ", h("b", {}, p.node_id), h("p", {}, p.description),
        h("p", { class: "notice" }, "requested " + when(p.requested_at) + (p.timeout_at ? ", times out " + when(p.timeout_at) : ""))),
      decisionForm(p.execution_id, p.node_id, tick))));
    if (!page.approvals.length) list.append(h("p", { class: "notice" }, "Nothing waits for a decision."));
    fill(pager, 
      h("button", { disabled: !cursors.length, onclick: () => { cursor = cursors.pop() || null; tick(); } }, "Previous"),
      h("button", { disabled: !page.next_cursor, onclick: () => { cursors.push(cursor); cursor = page.next_cursor; tick(); } }, "Next page"));
  };
}

// ------------------------------------------------------------------ Workers, queues, schedules, dead letters

function operationsView(root) {
  const workers = h("tbody"), queues = h("tbody"), leases = h("tbody"), schedules = h("tbody"), dead = h("tbody");
  const table = (id, heads, body) => h("table", { id }, h("thead", {}, h("tr", {}, heads.map((t) => h("th", {}, t)))), body);
  const deadPager = h("div", { class: "pager" });
  let cursor = null;
  const cursors = [];
  root.append(h("h1", {}, "Workers, queues, schedules and dead letters"),
    h("h2", {}, "Connected workers"), table("workers", ["Worker", "Where", "Queues", "Free slots", "Leases held"], workers),
    h("h2", {}, "Queues"), table("queues", ["Queue", "Pending", "Leased", "Parked", "Dead"], queues),
    h("h2", {}, "Leases held"), table("leases", ["Work item", "Queue", "Worker", "Attempt", "Fence", "Expires"], leases),
    h("h2", {}, "Cron schedules"), table("schedules", ["Schedule", "Cron", "Workflow", "Next fire", "State", ""], schedules),
    h("h2", {}, "Dead letters"), table("dead-letters", ["Work item", "Node", "Queue", "Attempts", "Error", "Failed at", ""], dead), deadPager);
  const act = async (path) => { try { await api(path, { method: "POST", body: {} }); tick(); } catch (error) { showProblem(error); } };
  return async (mine) => {
    const [q, l, s, d] = await Promise.all([api("/views/queues"), api("/views/work-items?status=leased&limit=50"),
      api("/schedules").catch((error) => ({ schedules: [], problem: error.message })),
      api("/views/work-items?status=dead&limit=25" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""))]);
    if (mine !== generation) return;
    fill(workers, ...q.workers.map((w) => h("tr", {}, h("td", { class: "mono" }, w.worker_id),
      h("td", {}, w.local ? "in-process" : w.quiet ? "remote, quiet (missed its heartbeats: no new work)" : "remote"),
      h("td", {}, w.queues.join(", ")), h("td", {}, w.free_slots), h("td", {}, w.leases))));
    if (!q.workers.length) workers.append(h("tr", {}, h("td", { colspan: 5, class: "notice" }, "No workers connected.")));
    fill(queues, ...q.queues.map((x) => h("tr", {}, h("td", { class: "mono" }, x.queue), h("td", {}, x.pending),
      h("td", {}, x.leased), h("td", {}, x.parked), h("td", {}, x.dead))));
    if (!q.queues.length) queues.append(h("tr", {}, h("td", { colspan: 5, class: "notice" }, "No queued work.")));
    fill(leases, ...l.work_items.map((x) => h("tr", {}, h("td", {}, h("a", { class: "mono", href: "#/run/" + encodeURIComponent(x.execution_id) }, x.work_item_id)),
      h("td", {}, x.queue), h("td", { class: "mono" }, x.lease_owner), h("td", {}, x.attempt), h("td", {}, x.fence), h("td", {}, when(x.lease_expires_at)))),
      l.work_items.length ? null : h("tr", {}, h("td", { colspan: 6, class: "notice" }, "No leases held (steps the engine runs in-process hold none).")),
      l.next_cursor ? h("tr", {}, h("td", { colspan: 6, class: "notice" }, "The 50 newest leases are shown.")) : null);
    fill(schedules, ...s.schedules.map((x) => h("tr", { dataset: { schedule: x.schedule_id } },
      h("td", { class: "mono" }, x.schedule_id), h("td", { class: "mono" }, x.cron + " (" + x.timezone + ")"),
      h("td", {}, x.workflow_id + " @ " + x.workflow_version), h("td", {}, x.paused ? "—" : when(x.next_fire_at)),
      h("td", {}, x.paused ? "paused" : "active", x.last_error ? h("div", { class: "error" }, x.last_error) : null),
      h("td", {}, h("button", { onclick: () => act("/schedules/" + encodeURIComponent(x.schedule_id) + (x.paused ? "/resume" : "/pause")) },
        x.paused ? "Resume" : "Pause")))));
    if (!s.schedules.length) schedules.append(h("tr", {}, h("td", { colspan: 6, class: "notice" }, s.problem || "No schedules.")));
    fill(dead, ...d.work_items.map((x) => h("tr", { dataset: { item: x.work_item_id } },
      h("td", {}, h("a", { class: "mono", href: "#/run/" + encodeURIComponent(x.execution_id) }, x.work_item_id)),
      h("td", {}, x.node_id), h("td", {}, x.queue), h("td", {}, x.attempt), h("td", { class: "error" }, x.last_error || ""),
      h("td", {}, when(x.updated_at)),
      h("td", {}, x.fork_at_seq === null || x.fork_at_seq === undefined ? null : h("button", {
        title: "Start a new run from just before this step's first attempt (a fork at record " + x.fork_at_seq + ")",
        onclick: async (event) => {
          event.target.disabled = true;
          try {
            const made = await api("/executions/" + encodeURIComponent(x.execution_id) + "/fork", { method: "POST", body: { at_seq: x.fork_at_seq } });
            location.hash = "#/run/" + encodeURIComponent(made.execution_id);
          } catch (error) { showProblem(error); event.target.disabled = false; }
        } }, "Retry")))));
    if (!d.work_items.length) dead.append(h("tr", {}, h("td", { colspan: 7, class: "notice" }, "No dead letters.")));
    fill(deadPager, 
      h("button", { disabled: !cursors.length, onclick: () => { cursor = cursors.pop() || null; tick(); } }, "Previous"),
      h("button", { disabled: !d.next_cursor, onclick: () => { cursors.push(cursor); cursor = d.next_cursor; tick(); } }, "Next page"));
  };
}

start();
