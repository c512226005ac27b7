/* DOM and HTTP helpers: build nodes (createElement and textContent only, never innerHTML), call
 * same-origin routes, toast problems, format times. */

import { hooks, state } from "./state.js";

/** Links may only use these schemes; images may only load from http(s) (or /_emulator/files/). */
export const SAFE_LINK = /^(https?:|mailto:)/i;
export const SAFE_IMAGE = /^https?:/i;

export const $ = (id) => document.getElementById(id);

/** Build an element: props are attributes (plus class, text, on<event>), children nodes/text. */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  appendAll(node, children);
  return node;
}

export function setChildren(node, ...children) {
  node.replaceChildren();
  return appendAll(node, children);
}

export function appendAll(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** GET (no body) or POST JSON; resolves to {status, data}, throws only on network errors. */
export async function request(path, body) {
  const init = body === undefined
    ? { method: "GET", cache: "no-store" }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const text = await response.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    // keep the text
  }
  return { status: response.status, data };
}

/** What went wrong in a driver answer (a refused request or the bot's answer), else null. */
export function problemOf(res) {
  const data = res.data && typeof res.data === "object" ? res.data : {};
  if (res.status >= 400 || data.ok === false) return data.error || `HTTP ${res.status}`;
  if (data.error) return `${data.error}${data.status ? ` (bot answered HTTP ${data.status})` : ""}`;
  if (typeof data.status === "number" && data.status !== 200) return `the bot answered HTTP ${data.status}`;
  return null;
}

/** POST to a driver route as the page does for every action: toast problems, refresh after.
 * With botStatus false only refusals are toasted, not what the bot answered (plain messages:
 * the app does not subscribe to message events, so its answer means nothing to a person). */
export async function drive(path, body, { botStatus = true } = {}) {
  let res;
  try {
    res = await request(path, body);
  } catch (err) {
    toast(`Network error: ${err.message}`);
    return null;
  } finally {
    hooks.refresh();
  }
  const problem = botStatus || res.status >= 400 ? problemOf(res) : null;
  if (problem) toast(problem);
  return res.status < 400 ? res.data : null;
}

/** Run an async action with `button` disabled while it is in flight. */
export async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } finally {
    if (button) button.disabled = false;
  }
}

export function toast(message, kind = "error") {
  const node = $("toast");
  node.textContent = String(message);
  node.className = kind;
  node.hidden = false;
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => { node.hidden = true; }, 6000);
}

/** Hide the toast at once (its problem was solved, e.g. a form retried successfully). */
export function hideToast() {
  clearTimeout(state.toastTimer);
  $("toast").hidden = true;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** Local HH:MM:SS of a Slack ts or an epoch in seconds. */
export function clock(seconds) {
  const date = new Date(Number(seconds) * 1000);
  if (Number.isNaN(date.getTime())) return "";
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Where the emulator serves an uploaded file. */
export function fileUrl(id) {
  return `/_emulator/files/${encodeURIComponent(id)}`;
}

/** Listen to `event` on the element with this id. */
export function on(id, event, handler) {
  $(id).addEventListener(event, handler);
}
