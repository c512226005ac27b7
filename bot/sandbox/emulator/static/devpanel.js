/* The developer panel: fire alerts and storms, the live Web API log, and Slack fault injection. */

import { $, busy, clock, drive, el, on, request, setChildren, toast } from "./dom.js";
import { hooks, state } from "./state.js";

const LOG_MAX_ROWS = 2000;

// -- alerts -----------------------------------------------------------------------------------

export function renderSamples() {
  const info = state.info;
  $("alerts").hidden = !info;
  if (!info) return;
  $("alert-sample").replaceChildren(...(info.samples || []).map((s) => el("option", { value: s.id }, s.label || s.id)));
  $("storm-count").value = info.storm_default ?? 200;
  if (info.storm_max) $("storm-count").max = info.storm_max;
}

function showResult(res) {
  const box = $("alert-result");
  box.hidden = false;
  const data = res.data && typeof res.data === "object" ? res.data : { body: res.data };
  const failed = res.status >= 400 || data.ok === false || (typeof data.status === "number" && data.status >= 400);
  box.className = failed ? "result error" : "result ok";
  if (data.ok === false) box.textContent = `Refused: ${data.error}`;
  else if ("statuses" in data) {
    box.textContent = `Sent ${data.sent} alerts (${data.distinct ?? "?"} distinct). Bot answers by HTTP status:\n`
      + JSON.stringify(data.statuses, null, 2);
  }
  else box.textContent = `Bot answered HTTP ${data.status}\n${JSON.stringify(data.body, null, 2)}`;
}

async function sandboxPost(button, path, body) {
  await busy(button, async () => {
    try {
      showResult(await request(path, body));
    } catch (err) {
      toast(`Network error: ${err.message}`);
    }
  });
  hooks.refresh();
}

function alertBody(status) {
  const body = { sample: $("alert-sample").value, status };
  if ($("alert-summary").value.trim()) body.summary = $("alert-summary").value;
  if ($("alert-key").value.trim()) body.key = $("alert-key").value;
  return body;
}

// -- Web API log ------------------------------------------------------------------------------

function callClasses(call) {
  const response = call.response && typeof call.response === "object" ? call.response : {};
  return ["call", (call.status ?? null) === null && "pending", response.ok === true && "ok", response.ok === false && "error",
    call.status === 429 && "ratelimited", call.fault && "fault"];
}

function callDetails(call) {
  return JSON.stringify({ args: call.args, response: call.response }, null, 2);
}

function callRow(call) {
  const response = call.response && typeof call.response === "object" ? call.response : {};
  const pending = call.status === undefined || call.status === null;
  const outcome = pending ? "…" : response.ok === true ? "ok" : response.error || (response.ok === false ? "error" : "");
  const row = el("div", { class: callClasses(call), "data-method": call.method, "data-index": call.index, title: "Click for details" },
    el("div", { class: "call-line" },
      el("span", { class: "call-time" }, clock(call.at)),
      el("span", { class: "call-method" }, call.method),
      el("span", { class: "call-status" }, String(call.status ?? "")),
      el("span", { class: "call-outcome" }, outcome),
      call.fault ? el("span", { class: "call-fault" }, `⚡ ${call.fault}`) : null));
  row.addEventListener("click", (event) => {
    if (event.target.closest("pre")) return;
    const open = row.querySelector("pre");
    if (open) open.remove();
    else row.append(el("pre", { class: "call-details" }, callDetails(call)));
  });
  return row;
}

function matchesFilter(row) {
  const filter = $("api-filter").value.trim().toLowerCase();
  return !filter || row.dataset.method.toLowerCase().includes(filter);
}

/** Add new calls on top; calls still in flight (no status yet) are replaced once answered. */
function appendCalls(calls) {
  const log = $("api-log");
  const fresh = document.createDocumentFragment();
  const { rows, pending, methods } = state.calls;
  for (const call of [...calls].reverse()) {
    const done = call.status !== undefined && call.status !== null;
    const old = rows.get(call.index);
    if (old && (!done || !pending.has(call.index))) continue; // nothing new about it
    const row = callRow(call);
    row.hidden = !matchesFilter(row);
    if (old) {
      if (old.querySelector("pre")) row.append(el("pre", { class: "call-details" }, callDetails(call)));
      old.replaceWith(row);
    } else fresh.append(row);
    rows.set(call.index, row);
    if (done) pending.delete(call.index);
    else pending.add(call.index);
    if (call.method !== "response_url" && !methods.has(call.method)) {
      methods.add(call.method);
      $("api-methods").append(el("option", { value: call.method }));
    }
  }
  log.prepend(fresh);
  while (log.childElementCount > LOG_MAX_ROWS) {
    const index = Number(log.lastElementChild.dataset.index);
    rows.delete(index);
    pending.delete(index);
    log.lastElementChild.remove();
  }
  updateCallCount();
}

function applyFilter() {
  for (const row of $("api-log").children) row.hidden = !matchesFilter(row);
  updateCallCount();
}

function updateCallCount() {
  const rows = $("api-log").children;
  const shown = [...rows].filter((r) => !r.hidden).length;
  $("api-count").textContent = `${state.calls.next} calls${shown !== state.calls.next ? ` · ${shown} shown` : ""}`;
}

export async function fetchCalls() {
  const calls = state.calls;
  const since = Math.min(calls.next, ...calls.pending);
  const res = await request(`/_emulator/calls?since=${since}`).catch(() => null);
  if (res?.status !== 200 || !res.data) return;
  if (res.data.next < calls.next) {
    // the emulator was reset: start the log again
    Object.assign(calls, { next: 0, rows: new Map(), pending: new Set() });
    $("api-log").replaceChildren();
    return fetchCalls();
  }
  calls.next = res.data.next;
  appendCalls(res.data.calls || []);
}

// -- faults -----------------------------------------------------------------------------------

/** "45 s", "12 min", "3 h 20 min": how long a fault lasts, as a person reads it. */
export function duration(seconds) {
  const s = Math.ceil(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  const minutes = Math.round((s % 3600) / 60);
  return `${Math.floor(s / 3600)} h${minutes ? ` ${minutes} min` : ""}`;
}

function faultLines(faults) {
  const lines = [];
  if (faults.down_for > 3600) lines.push("Slack down until you untick “Slack down” (or clear all faults)");
  else if (faults.down_for > 0) lines.push(`Slack down for ${duration(faults.down_for)} more`);
  if (faults.latency_ms > 0) lines.push(`${faults.latency_ms} ms latency on every call`);
  if (faults.error_status) lines.push(`next ${faults.error_count} calls answer HTTP ${faults.error_status}`);
  if (faults.hang_for > 0) lines.push(`calls hang for ${duration(faults.hang_for)} more`);
  if (faults.lost_answers > 0) lines.push(`next ${faults.lost_answers} answers lost after the call is made`);
  if (faults.answer_delay_ms > 0) lines.push(`answers held ${faults.answer_delay_ms} ms after the call is made`);
  if (faults.methods) lines.push(`only for ${faults.methods.join(", ")}`);
  return lines;
}

/** Show the fault plan; controls follow it unless focused or the plan predates our change. */
export function renderFaults(faults, fresh = true) {
  if (!faults) return;
  const down = $("fault-down");
  const latency = $("fault-latency");
  if (fresh && document.activeElement !== down) down.checked = faults.down_for > 0;
  if (fresh && document.activeElement !== latency) latency.value = faults.latency_ms || 0;
  const limits = Object.entries(faults.rate_limits || {});
  const lines = faultLines(faults);
  setChildren($("faults-current"),
    lines.length || limits.length ? null : el("div", { class: "none" }, "No faults: Slack behaves."),
    lines.map((line) => el("div", { class: "fault-line" }, line)),
    limits.map(([method, rpm]) => el("div", { class: "fault-line" }, `${method} rate-limited to ${rpm}/min `,
      el("button", { type: "button", class: "link-button", "data-method": method, onclick: () => removeRateLimit(method) },
        "remove"))));
}

async function setFaults(settings, button) {
  state.faultsChangedAt = performance.now(); // state fetched before this is stale
  const data = await busy(button, () => drive("/_emulator/faults", settings));
  if (data?.faults) renderFaults(data.faults);
}

function currentRateLimits() {
  return { ...(state.ws?.faults?.rate_limits || {}) };
}

function removeRateLimit(method) {
  const limits = currentRateLimits();
  delete limits[method];
  setFaults({ rate_limits: limits });
}

// -- wiring -----------------------------------------------------------------------------------

export function wireDevPanel() {
  on("alert-fire", "click", (e) => sandboxPost(e.currentTarget, "/_sandbox/alerts", alertBody("firing")));
  on("alert-resolve", "click", (e) => sandboxPost(e.currentTarget, "/_sandbox/alerts", alertBody("resolved")));
  on("storm", "click", (e) => sandboxPost(e.currentTarget, "/_sandbox/storm",
    { sample: $("alert-sample").value, count: Number($("storm-count").value) || 1 }));
  on("api-filter", "input", applyFilter);
  on("fault-down", "change", (e) => setFaults({ down_for: e.target.checked ? 86400 : 0 }, e.target));
  on("fault-latency", "change", () => setFaults({ latency_ms: Number($("fault-latency").value) || 0 }));
  on("fault-latency-apply", "click", (e) => setFaults({ latency_ms: Number($("fault-latency").value) || 0 }, e.currentTarget));
  on("fault-error-apply", "click", (e) => setFaults(
    { error_status: Number($("fault-error-status").value), error_count: Number($("fault-error-count").value) || 1 },
    e.currentTarget));
  on("fault-methods-apply", "click", (e) => {
    const methods = $("fault-methods").value.split(",").map((m) => m.trim()).filter(Boolean);
    setFaults({ methods: methods.length ? methods : null }, e.currentTarget);
  });
  on("fault-ratelimit-apply", "click", (e) => {
    const method = $("fault-ratelimit-method").value.trim();
    if (!method) return toast("Name the Web API method to rate-limit", "info");
    setFaults({ rate_limits: { ...currentRateLimits(), [method]: Number($("fault-ratelimit-rpm").value) || 1 } }, e.currentTarget);
  });
  on("faults-clear", "click", (e) => setFaults({ clear: true }, e.currentTarget));
  on("toggle-devpanel", "click", (e) => {
    // on a phone the panel covers the channel when opened; on a desktop it sits beside it
    const shown = NARROW.matches
      ? document.body.classList.toggle("devpanel-open")
      : !document.body.classList.toggle("devpanel-hidden");
    if (shown) closeSidebar();
    e.currentTarget.setAttribute("aria-expanded", String(shown));
  });
  on("toggle-sidebar", "click", (e) => {
    const shown = document.body.classList.toggle("sidebar-open");
    if (shown) document.body.classList.remove("devpanel-open");
    e.currentTarget.setAttribute("aria-expanded", String(shown));
  });
}

/** Below this width the sidebar and the developer panel are toggles over the channel. */
export const NARROW = window.matchMedia("(max-width: 700px)");

/** Close the sidebar overlay (phones), e.g. once a conversation was picked. */
export function closeSidebar() {
  document.body.classList.remove("sidebar-open");
  $("toggle-sidebar")?.setAttribute("aria-expanded", "false");
}
