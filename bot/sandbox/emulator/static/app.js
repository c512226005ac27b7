/* PulseOps sandbox page, the entry module: selection, refresh, the live change stream, wiring
 * and boot. It shows the emulated Slack workspace as a Slack user would see it and lets a person
 * drive it, talking only to same-origin /_emulator/* and /_sandbox/* routes. Everything the
 * workspace holds is untrusted text: never innerHTML, links only http:, https: and mailto:. */

import { $, drive, on, request, toast } from "./dom.js";
import { wireComposer } from "./composer.js";
import { closeSidebar, fetchCalls, renderFaults, renderSamples, wireDevPanel } from "./devpanel.js";
import { renderHeader, renderMain, renderSidebar, renderUserPicker } from "./layout.js";
import { keepPaneAtBottom } from "./messages.js";
import { wirePhones } from "./phones.js";
import { closeModal, renderModal, topModal } from "./modal.js";
import { canSee, dmWithBot, findChannel, hooks, humans, messageCount, state } from "./state.js";

// ---------------------------------------------------------------------------------------------
// Selection and refresh

function select(target) {
  state.selected = target;
  closeSidebar();
  render();
  if (target === "home") openHome();
  else if (!$("composer").disabled) $("composer").focus();
}

async function openHome() {
  state.homeKey = null;
  await drive("/_emulator/home", { user: state.user });
}

/** Keep the acting user and selection valid after the workspace changed. */
function normalizeSelection() {
  const people = humans();
  if (!people.some((u) => u.id === state.user)) state.user = people[0]?.id ?? null;
  if (state.seen === null) {
    state.seen = {};
    for (const c of state.ws.channels) state.seen[c.id] = messageCount(c.id);
  }
  const dm = dmWithBot();
  if (state.selected === "dm" && dm) state.selected = dm.id;
  if (state.selected === "home" || state.selected === "dm") return;
  const channel = findChannel(state.selected);
  if (channel && canSee(channel, state.user) && (!channel.is_im || channel.user === state.user)) return;
  if (channel?.is_im) {
    state.selected = dm ? dm.id : "dm";
    return;
  }
  const first = state.ws.channels.find((c) => !c.is_im && !c.is_mpim && !c.is_archived && canSee(c, state.user));
  state.selected = first ? first.id : "dm";
}

function render() {
  if (!state.ws) return;
  normalizeSelection();
  renderHeader();
  renderUserPicker();
  renderSidebar();
  renderMain();
  renderModal();
  renderFaults(state.ws.faults, state.fetchedAt > state.faultsChangedAt);
}

async function refreshOnce() {
  const started = performance.now();
  const [res] = await Promise.all([request("/_emulator/state").catch(() => null), fetchCalls()]);
  if (!res) return; // offline: the live indicator says so and the poller retries
  if (res.status !== 200 || !res.data || typeof res.data !== "object") return toast(`GET /_emulator/state answered HTTP ${res.status}`);
  state.ws = res.data;
  state.fetchedAt = started;
  render();
}

/** Fetch state and calls; at most one fetch in flight, one more when changes came meanwhile. */
function requestRefresh() {
  if (state.refresh.busy) {
    state.refresh.again = true;
    return;
  }
  state.refresh.busy = true;
  refreshOnce()
    .catch((err) => {
      toast(`Cannot show the workspace: ${err.message}`);
      setTimeout(() => { throw err; }); // and report it like any page error
    })
    .finally(() => {
      state.refresh.busy = false;
      if (state.refresh.again) {
        state.refresh.again = false;
        requestRefresh();
      }
    });
}

function setLive(live) {
  state.live = live;
  const node = $("live");
  node.textContent = live ? "live" : "reconnecting…";
  node.className = live ? "live" : "offline";
}

/** Server-sent change events; without them (or while reconnecting) poll every two seconds. */
function connectEvents() {
  if (!("EventSource" in window)) return;
  const source = new EventSource("/_emulator/events");
  source.addEventListener("open", () => {
    setLive(true);
    requestRefresh();
  });
  source.addEventListener("change", () => requestRefresh());
  source.addEventListener("error", () => {
    setLive(false);
    if (source.readyState === EventSource.CLOSED) setTimeout(connectEvents, 5000);
  });
}

async function loadInfo() {
  try {
    const res = await request("/_sandbox/info");
    state.info = res.status === 200 && res.data && typeof res.data === "object" ? res.data : null;
  } catch (_) {
    state.info = null;
  }
  renderSamples();
  render();
}

// ---------------------------------------------------------------------------------------------
// Wiring and boot

function wire() {
  on("user-picker", "change", (e) => {
    state.user = e.target.value;
    state.pane.channel = undefined;
    state.pane.header = "";
    render();
    if (state.selected === "home") openHome();
  });
  on("open-home", "click", (e) => {
    e.preventDefault();
    select("home");
  });
  on("messages", "scroll", () => {
    const box = $("messages");
    state.pane.stuck = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  });
  on("toast", "click", () => { $("toast").hidden = true; });
  document.addEventListener("keydown", (event) => {
    const view = event.key === "Escape" && state.ws ? topModal() : null;
    if (view) closeModal(view);
  });
  wireComposer();
  wireDevPanel();
  wirePhones();
}

function boot() {
  wire();
  loadInfo();
  requestRefresh();
  connectEvents();
  setInterval(() => {
    if (!state.live) requestRefresh();
  }, 2000);
}

// What the other modules call back into (see `hooks` in state.js).
Object.assign(hooks, { refresh: requestRefresh, select, imageLoaded: keepPaneAtBottom });
document.addEventListener("DOMContentLoaded", boot);
