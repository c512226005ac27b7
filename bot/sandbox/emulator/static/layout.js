/* The page around the messages: top bar, user picker, sidebar, channel header and pins, App Home,
 * and which of them the main area shows. */

import { $, SAFE_IMAGE, clock, el } from "./dom.js";
import { renderBlocks } from "./blockkit.js";
import { renderComposer } from "./composer.js";
import { renderMessages } from "./messages.js";
import { renderMrkdwn } from "./mrkdwn.js";
import {
  canSee, channelLabel, currentChannel, displayName, dmWithBot, hooks, humans, messageCount, realName, state,
} from "./state.js";

/** A sidebar entry; `target` is what selecting it selects (the channel id by default). */
function sidebarLink(channel, label, target = channel.id) {
  const unread = target !== state.selected && messageCount(channel.id) > (state.seen[channel.id] ?? 0);
  return el("a", {
    class: ["channel", channel.is_archived && "archived", channel.is_private && "private", channel.is_im && "dm",
      unread && "unread", target === state.selected && "active"],
    href: "#",
    "data-channel-id": channel.id,
    "data-channel-name": channel.name,
    title: channel.is_archived ? `#${channel.name} (archived)` : null,
    onclick: (event) => {
      event.preventDefault();
      hooks.select(target);
    },
  }, label || `#${channel.name}`);
}

export function renderSidebar() {
  const byName = (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true });
  const visible = state.ws.channels.filter((c) => !c.is_im && !c.is_mpim && canSee(c, state.user)).sort(byName);
  const archived = visible.filter((c) => c.is_archived);
  $("sidebar-channels").replaceChildren(...visible.filter((c) => !c.is_archived).map((c) => sidebarLink(c)));
  $("sidebar-archived").replaceChildren(...archived.map((c) => sidebarLink(c)));
  // Slack keeps archived channels out of the sidebar: here they are folded away, one click off
  $("sidebar-archived-section").hidden = archived.length === 0;
  $("sidebar-archived-count").textContent = `Archived (${archived.length})`;
  if (archived.some((c) => c.id === state.selected)) $("sidebar-archived-section").open = true;
  const dm = dmWithBot();
  const dmLink = dm ? sidebarLink(dm, "pulseops") : sidebarLink({ id: "", name: "pulseops", is_im: true }, "pulseops", "dm");
  const mpims = state.ws.channels.filter((c) => c.is_mpim && c.members.includes(state.user));
  $("sidebar-dms").replaceChildren(dmLink, ...mpims.map((c) => sidebarLink(c, channelLabel(c))));
  $("open-home").classList.toggle("active", state.selected === "home");
}

export function renderUserPicker() {
  const people = humans();
  const key = people.map((u) => `${u.id}:${realName(u)}`).join(",");
  const picker = $("user-picker");
  if (key !== state.usersKey) {
    state.usersKey = key;
    picker.replaceChildren(...people.map((u) => el("option", { value: u.id }, `${realName(u)} (@${displayName(u)})`)));
  }
  picker.value = state.user;
}

export function renderHeader() {
  $("workspace-name").textContent = state.ws.team?.name || state.ws.team?.domain || "workspace";
  const botUrl = $("bot-url");
  botUrl.hidden = !state.info?.bot_url;
  if (state.info?.bot_url && SAFE_IMAGE.test(state.info.bot_url)) {
    botUrl.href = state.info.bot_url;
    botUrl.textContent = `bot: ${state.info.bot_url}`;
  }
}

function renderChannelHeader(channel) {
  const title = channel ? channelLabel(channel) : "pulseops";
  // the pinned messages' text is part of the key: an edit must show in the pins list too
  const messages = state.ws.messages?.[channel?.id] || [];
  const pinned = (channel?.pins || []).map((ts) => messages.find((m) => m.ts === ts)?.text);
  const key = JSON.stringify([title, channel?.topic, channel?.pins, pinned, channel?.is_archived, channel && messageCount(channel.id)]);
  if (key === state.pane.header) return;
  state.pane.header = key;
  $("channel-name").replaceChildren(title, channel?.is_archived ? el("span", { class: "archived-tag" }, "archived") : "");
  const topic = $("channel-topic");
  topic.replaceChildren(channel?.topic ? renderMrkdwn(channel.topic, "span") : "");
  topic.hidden = !channel?.topic;
  renderPins(channel);
}

function renderPins(channel) {
  const pins = channel?.pins || [];
  $("channel-pins").hidden = pins.length === 0;
  $("channel-pins-count").textContent = `📌 ${pins.length} pinned`;
  const messages = state.ws.messages?.[channel?.id] || [];
  $("channel-pins-list").replaceChildren(...pins.map((ts) => {
    const message = messages.find((m) => m.ts === ts);
    const summary = message ? (message.text || "(no text)").split("\n")[0] : ts;
    return el("li", {}, el("a", {
      href: "#",
      "data-ts": ts,
      onclick: (event) => {
        event.preventDefault();
        document.querySelector(`#messages .message[data-ts="${CSS.escape(ts)}"]`)?.scrollIntoView({ block: "center" });
      },
    }, `${clock(ts)} · `, renderMrkdwn(summary, "span")));
  }));
}

function renderHome() {
  const view = state.ws.home_views?.[state.user];
  const key = view ? `${state.user}:${view.id}:${view.hash}` : `${state.user}:none`;
  if (key === state.homeKey) return;
  state.homeKey = key;
  $("home-blocks").replaceChildren(view
    ? renderBlocks(view.blocks, { target: { view_id: view.id } })
    : el("p", { class: "empty" }, "Opening App Home… (the bot has not published a Home tab for you yet)"));
}

export function renderMain() {
  const home = state.selected === "home";
  $("home").hidden = !home;
  $("channel-view").hidden = home;
  const channel = home ? null : currentChannel();
  if (home) renderHome();
  else {
    if (channel) state.seen[channel.id] = messageCount(channel.id);
    renderChannelHeader(channel);
    renderMessages(channel ? channel.id : null);
  }
  renderComposer(channel);
}
