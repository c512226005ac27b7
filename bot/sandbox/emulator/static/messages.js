/* The channel pane's message list: messages, ephemerals, thread replies, attachments and files,
 * updated in place so unchanged messages keep their elements. */

import { $, clock, drive, el, fileUrl } from "./dom.js";
import { renderBlocks, renderImage } from "./blockkit.js";
import { link, renderMrkdwn } from "./mrkdwn.js";
import { channelLabel, findChannel, findUser, isBotMessage, realName, state } from "./state.js";

const IMAGE_FILE = /\.(png|jpe?g|gif|webp|svg)$/i;
const ATTACHMENT_COLORS = { good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a" };

function renderFile(file) {
  const title = file.title || file.name || file.id;
  const isImage = String(file.mimetype || "").startsWith("image/") || IMAGE_FILE.test(String(file.name || ""));
  if (!isImage) {
    return el("a", { class: "file", href: fileUrl(file.id), target: "_blank", rel: "noopener noreferrer" }, `📎 ${title}`);
  }
  return el("figure", { class: "file file-image" },
    el("figcaption", {}, title), renderImage(fileUrl(file.id), file.alt_txt || title, "file-img"));
}

function attachmentColor(color) {
  if (ATTACHMENT_COLORS[color]) return ATTACHMENT_COLORS[color];
  return /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.test(String(color || "")) ? `#${String(color).replace(/^#/, "")}` : "#dddddd";
}

function renderAttachment(att, ctx) {
  const node = el("div", { class: "attachment" },
    att.pretext ? renderMrkdwn(att.pretext) : null,
    att.author_name ? el("div", { class: "attachment-author" }, String(att.author_name)) : null,
    att.title ? el("div", { class: "attachment-title" }, link(String(att.title_link || ""), String(att.title))) : null,
    att.text ? renderMrkdwn(att.text) : null,
    Array.isArray(att.fields) && att.fields.length
      ? el("div", { class: "attachment-fields" }, att.fields.map((f) => el("div", { class: ["field", f.short && "short"] },
        el("div", { class: "field-title" }, String(f.title ?? "")), renderMrkdwn(f.value))))
      : null,
    att.blocks ? renderBlocks(att.blocks, ctx) : null,
    att.image_url ? renderImage(att.image_url, att.fallback, "attachment-img") : null,
    att.footer ? el("div", { class: "attachment-footer" }, renderMrkdwn(att.footer, "span")) : null);
  node.style.borderLeftColor = attachmentColor(att.color);
  return node;
}

function avatar(message) {
  const user = findUser(message.user);
  const letter = isBotMessage(message) ? "P" : (user ? realName(user) : message.user || "?").charAt(0).toUpperCase();
  const hue = [...String(message.user || "")].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7);
  const node = el("div", { class: "avatar", "aria-hidden": "true" }, letter);
  node.style.background = isBotMessage(message) ? "#4a154b" : `hsl(${hue}, 45%, 45%)`;
  return node;
}

function author(message) {
  if (isBotMessage(message)) return [el("span", { class: "author" }, "PulseOps"), el("span", { class: "app-tag" }, "APP")];
  const user = findUser(message.user);
  return el("span", { class: "author", "data-user-id": message.user }, user ? realName(user) : message.user || "unknown");
}

/** A shortcut's callback id as a label: add_to_incident_timeline -> "Add to incident timeline". */
function shortcutLabel(callbackId) {
  const words = String(callbackId).replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** What a person can do to a message: react with 📌, run the app's message shortcuts. */
function messageActions(m, channelId) {
  const channel = findChannel(channelId);
  if (!channel || channel.is_archived) return null;
  const target = { user: state.user, channel: channelId, ts: m.ts };
  return el("div", { class: "message-actions", role: "toolbar", "aria-label": "Message actions" },
    el("button", {
      type: "button", class: "react-pin", title: "React with :pushpin:",
      onclick: () => drive("/_emulator/reactions", { ...target, name: "pushpin" }),
    }, "📌"),
    (state.ws.shortcuts || []).map((callbackId) => el("button", {
      type: "button", class: "run-shortcut", "data-callback-id": callbackId,
      onclick: () => drive("/_emulator/shortcuts", { ...target, callback_id: callbackId }),
    }, `⋯ ${shortcutLabel(callbackId)}`)));
}

function renderReactions(m) {
  if (!Array.isArray(m.reactions) || !m.reactions.length) return null;
  return el("div", { class: "reactions" }, m.reactions.map((r) => el("span", {
    class: "reaction", title: (r.users || []).join(", "), "data-reaction": r.name,
  }, `:${r.name}: ${r.count}`)));
}

/** One message (or ephemeral) of the pane. */
function renderMessage(item, channelId) {
  const m = item.message;
  if (item.intro) return renderIntro(channelId);
  const channel = findChannel(channelId);
  const pinned = !item.ephemeral && Boolean(m.pinned || channel?.pins?.includes(m.ts));
  const ctx = { target: { channel: channelId, ts: m.ts } };
  const hasBlocks = Array.isArray(m.blocks) && m.blocks.length > 0;
  return el("div", {
    class: ["message", item.reply && "reply", item.ephemeral && "ephemeral"],
    "data-ts": m.ts,
    "data-channel-id": channelId,
    "data-pinned": pinned ? "true" : null,
  },
  avatar(m),
  el("div", { class: "message-body" },
    pinned ? el("div", { class: "pinned" }, "📌 Pinned") : null,
    el("div", { class: "message-meta" },
      author(m),
      el("time", { class: "message-time", title: new Date(Number(m.ts) * 1000).toString() }, clock(m.ts)),
      m.edited ? el("span", { class: "edited", title: `edited at ${clock(m.edited.ts)}` }, "(edited)") : null,
      item.ephemeral ? el("span", { class: "ephemeral-note" }, "Only visible to you") : null),
    hasBlocks ? renderBlocks(m.blocks, ctx) : m.text ? renderMrkdwn(m.text) : null,
    (m.attachments || []).map((att) => renderAttachment(att, ctx)),
    (m.files || []).map(renderFile),
    item.ephemeral ? null : renderReactions(m),
    item.ephemeral ? null : messageActions(m, channelId)));
}

function renderIntro(channelId) {
  const channel = findChannel(channelId);
  const name = channel ? channelLabel(channel) : "pulseops";
  return el("div", { class: "channel-intro" },
    el("h3", {}, channel && !channel.is_im && !channel.is_mpim ? name : `Your direct messages with ${name}`),
    el("p", {}, channel?.purpose ? renderMrkdwn(channel.purpose, "span") : `This is the very beginning of ${name}.`));
}

/** Pane items in order: messages and this user's ephemerals by ts, thread replies under parents. */
function paneItems(channelId) {
  const items = [{ key: "intro", intro: true, message: {} }];
  if (!channelId) return items;
  const messages = state.ws.messages?.[channelId] || [];
  const present = new Set(messages.map((m) => m.ts));
  const replies = new Map();
  const top = [];
  for (const m of messages) {
    if (m.thread_ts && m.thread_ts !== m.ts && present.has(m.thread_ts)) {
      if (!replies.has(m.thread_ts)) replies.set(m.thread_ts, []);
      replies.get(m.thread_ts).push({ key: `m:${m.ts}`, message: m, reply: true });
    } else {
      top.push({ key: `m:${m.ts}`, message: m });
    }
  }
  for (const e of state.ws.ephemerals || []) {
    if (e.channel === channelId && e.user === state.user) top.push({ key: `e:${e.ts}`, message: e, ephemeral: true });
  }
  top.sort((a, b) => Number(a.message.ts) - Number(b.message.ts));
  for (const item of top) items.push(item, ...(replies.get(item.message.ts) || []));
  return items;
}

function itemSignature(item, channel) {
  const pinned = Boolean(channel?.pins?.includes(item.message.ts));
  return `${item.reply ? 1 : 0}${pinned ? 1 : 0}${JSON.stringify(item.message)}`;
}

/** Update the message list in place: unchanged messages keep their elements. */
export function renderMessages(channelId) {
  const box = $("messages");
  const pane = state.pane;
  if (pane.channel !== channelId) {
    box.replaceChildren();
    pane.items = new Map();
    pane.channel = channelId;
    pane.stuck = true;
  }
  const channel = findChannel(channelId);
  const items = paneItems(channelId);
  const keys = new Set(items.map((i) => i.key));
  for (const [key, entry] of pane.items) {
    if (!keys.has(key)) {
      entry.node.remove();
      pane.items.delete(key);
    }
  }
  const scrollTop = box.scrollTop;
  let cursor = box.firstChild;
  for (const item of items) {
    const signature = item.intro ? `intro${channel?.name}${channel?.purpose}` : itemSignature(item, channel);
    let entry = pane.items.get(item.key);
    if (!entry || entry.signature !== signature) {
      const node = renderMessage(item, channelId);
      if (entry) {
        entry.node.replaceWith(node); // an edit: same place, no duplicate
        if (cursor === entry.node) cursor = node;
      }
      entry = { signature, node };
      pane.items.set(item.key, entry);
    }
    if (entry.node === cursor) cursor = cursor.nextSibling;
    else box.insertBefore(entry.node, cursor);
  }
  if (pane.stuck) box.scrollTop = box.scrollHeight;
  else box.scrollTop = scrollTop;
}

export function keepPaneAtBottom() {
  if (state.pane.stuck) $("messages").scrollTop = $("messages").scrollHeight;
}
