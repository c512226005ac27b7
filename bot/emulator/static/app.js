/*
 * PulseOps sandbox: the browser front end of `pulseops sandbox`.
 *
 * One static page that shows the emulated Slack workspace the way a Slack user would see it
 * (channels, messages rendered from Block Kit and mrkdwn, ephemerals, modals, App Home) and lets
 * a person drive it: act as any human, click buttons, pick options, run slash commands, submit
 * modals, post messages, fire alerts, inject Slack faults and watch every Web API call the bot
 * makes.
 *
 * It talks only to same-origin routes: the emulator's /_emulator/* control routes (state, calls,
 * events, click, command, views, home, messages, faults, files) and the sandbox's /_sandbox/*
 * routes (info, alerts, storm). No framework, no build step, nothing loaded from elsewhere.
 *
 * Everything the workspace holds is untrusted text: nodes are built with createElement and
 * textContent only (never innerHTML), and links are limited to http:, https: and mailto:.
 */
"use strict";

/** The page's only mutable state. */
const state = {
  ws: null, // last GET /_emulator/state
  info: null, // GET /_sandbox/info, null when the emulator runs without the sandbox
  user: null, // acting user id
  selected: null, // a channel id, "dm" (the DM with the bot, not opened yet) or "home"
  seen: null, // channel id -> number of messages when last viewed (unread marks)
  pane: { channel: undefined, items: new Map(), stuck: true, header: "" },
  modalKey: null,
  homeKey: null,
  usersKey: "",
  refresh: { busy: false, again: false },
  calls: { next: 0, methods: new Set(), rows: new Map(), pending: new Set() }, // the API log
  live: false,
  fetchedAt: 0, // when the fetch of `ws` started (performance.now())
  faultsChangedAt: -1, // when our last fault change was answered
  toastTimer: 0,
  choiceCounter: 0, // names radio groups
};

const LOG_MAX_ROWS = 2000;
const SAFE_LINK = /^(https?:|mailto:)/i;
const SAFE_IMAGE = /^https?:/i;
const IMAGE_FILE = /\.(png|jpe?g|gif|webp|svg)$/i;
const ATTACHMENT_COLORS = { good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a" };
const ENTITIES = { amp: "&", lt: "<", gt: ">" };
const EMOJI = {
  eyes: "👀", rotating_light: "🚨", white_check_mark: "✅", bar_chart: "📊", warning: "⚠️",
  tada: "🎉", fire: "🔥", pager: "📟", red_circle: "🔴", large_green_circle: "🟢",
  large_yellow_circle: "🟡", x: "❌", heavy_check_mark: "✔️", calendar: "📆", clock3: "🕒",
  chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", bell: "🔔", mag: "🔍",
  information_source: "ℹ️", arrow_up: "⬆️", arrow_down: "⬇️", pushpin: "📌", sos: "🆘",
  house: "🏠", wave: "👋", thumbsup: "👍", "+1": "👍", hourglass: "⌛", zzz: "💤",
  busts_in_silhouette: "👥", bust_in_silhouette: "👤", memo: "📝", link: "🔗", repeat: "🔁",
};

// ---------------------------------------------------------------------------------------------
// DOM and HTTP helpers

const $ = (id) => document.getElementById(id);

/** Build an element: props are attributes (plus class, text, on<event>), children nodes/text. */
function el(tag, props, ...children) {
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

function setChildren(node, ...children) {
  node.replaceChildren();
  return appendAll(node, children);
}

function appendAll(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** GET (no body) or POST JSON; resolves to {status, data}, throws only on network errors. */
async function request(path, body) {
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
function problemOf(res) {
  const data = res.data && typeof res.data === "object" ? res.data : {};
  if (res.status >= 400 || data.ok === false) return data.error || `HTTP ${res.status}`;
  if (data.error) return `${data.error}${data.status ? ` (bot answered HTTP ${data.status})` : ""}`;
  if (typeof data.status === "number" && data.status !== 200) return `the bot answered HTTP ${data.status}`;
  return null;
}

/** POST to a driver route as the page does for every action: toast problems, refresh after.
 * With botStatus false only refusals are toasted, not what the bot answered (plain messages:
 * the app does not subscribe to message events, so its answer means nothing to a person). */
async function drive(path, body, { botStatus = true } = {}) {
  let res;
  try {
    res = await request(path, body);
  } catch (err) {
    toast(`Network error: ${err.message}`);
    return null;
  } finally {
    requestRefresh();
  }
  const problem = botStatus || res.status >= 400 ? problemOf(res) : null;
  if (problem) toast(problem);
  return res.status < 400 ? res.data : null;
}

/** Run an async action with `button` disabled while it is in flight. */
async function busy(button, action) {
  if (button) button.disabled = true;
  try {
    return await action();
  } finally {
    if (button) button.disabled = false;
  }
}

function toast(message, kind = "error") {
  const node = $("toast");
  node.textContent = String(message);
  node.className = kind;
  node.hidden = false;
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => { node.hidden = true; }, 6000);
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** Local HH:MM:SS of a Slack ts or an epoch in seconds. */
function clock(seconds) {
  const date = new Date(Number(seconds) * 1000);
  if (Number.isNaN(date.getTime())) return "";
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

// ---------------------------------------------------------------------------------------------
// Workspace lookups

function humans() {
  return (state.ws?.users || []).filter((u) => !u.is_bot && !u.deleted);
}

function findUser(id) {
  return (state.ws?.users || []).find((u) => u.id === id);
}

function displayName(user) {
  return user.profile?.display_name || user.name || user.id;
}

function realName(user) {
  return user.real_name || user.name || user.id;
}

function findChannel(id) {
  return (state.ws?.channels || []).find((c) => c.id === id);
}

function isBotMessage(message) {
  return Boolean(message.bot_id) || message.user === state.ws?.bot?.user_id;
}

function canSee(channel, user) {
  return !(channel.is_private || channel.is_im || channel.is_mpim) || channel.members.includes(user);
}

function dmWithBot() {
  return (state.ws?.channels || []).find((c) => c.is_im && c.user === state.user);
}

function channelLabel(channel) {
  if (channel.is_im) return "pulseops";
  if (channel.is_mpim) {
    const others = channel.members.filter((id) => id !== state.user && id !== state.ws.bot.user_id);
    return ["pulseops", ...others.map((id) => (findUser(id) ? displayName(findUser(id)) : id))].join(", ");
  }
  return `#${channel.name}`;
}

// ---------------------------------------------------------------------------------------------
// mrkdwn: Slack's markup, parsed into nodes (never HTML)

const FORMAT = /`([^`\n]+)`|<([^<>\n]+)>|\*((?:<[^<>\n]*>|[^*\n<])+)\*|_((?:<[^<>\n]*>|[^_\n<])+)_|~((?:<[^<>\n]*>|[^~\n<])+)~/g;
const WORD_CHAR = /[\p{L}\p{N}_*~`]/u; // next to these, *, _ and ~ are literal

function decode(text) {
  return String(text).replace(/&(amp|lt|gt);/g, (_, name) => ENTITIES[name]);
}

function emojify(text) {
  return String(text).replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}

function textNode(raw) {
  return document.createTextNode(emojify(decode(raw)));
}

/** A mrkdwn string as a <div class="mrkdwn">: pre blocks, quotes, lines, inline formatting. */
function renderMrkdwn(text, tag = "div") {
  const root = el(tag, { class: "mrkdwn" });
  const parts = String(text ?? "").split("```");
  parts.forEach((part, i) => {
    const isPre = i % 2 === 1 && i < parts.length - 1;
    if (isPre) {
      root.append(el("pre", { class: "mrkdwn-pre" }, inlineNodes(part.replace(/^\n|\n$/g, ""), "controls")));
      return;
    }
    let body = i % 2 === 1 ? "```" + part : part;
    if (i > 0) body = body.replace(/^\n/, "");
    if (i < parts.length - 1) body = body.replace(/\n$/, "");
    appendAll(root, lineNodes(body));
  });
  return root;
}

/** Lines joined with <br>, consecutive "> " lines grouped into a blockquote. */
function lineNodes(text) {
  const nodes = [];
  let previous = null;
  let quote = null;
  for (const line of text.split("\n")) {
    const quoted = /^(?:&gt;|>) ?(.*)$/.exec(line);
    if (quoted) {
      if (previous === "quote") quote.append(el("br"));
      else nodes.push((quote = el("blockquote")));
      appendAll(quote, inlineNodes(quoted[1]));
      previous = "quote";
    } else {
      if (previous === "text") nodes.push(el("br"));
      nodes.push(...inlineNodes(line));
      previous = "text";
    }
  }
  return nodes;
}

/** Inline nodes of one line; mode "controls" renders only <…> controls (inside ``` blocks). */
function inlineNodes(text, mode = "all", depth = 0) {
  const nodes = [];
  const pattern = new RegExp(FORMAT.source, "g");
  let last = 0;
  let match;
  while ((match = pattern.exec(text))) {
    const node = formatNode(match, text, mode, depth);
    if (!node) {
      pattern.lastIndex = match.index + 1;
      continue;
    }
    if (match.index > last) nodes.push(textNode(text.slice(last, match.index)));
    nodes.push(node);
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(textNode(text.slice(last)));
  return nodes;
}

function formatNode(match, text, mode, depth) {
  const [whole, code, control, bold, italic, strike] = match;
  if (control !== undefined) return renderControl(control);
  if (mode === "controls") return null;
  if (code !== undefined) return el("code", {}, textNode(code));
  const inner = bold ?? italic ?? strike;
  if (depth > 3 || /^\s|\s$/.test(inner) || !delimited(text, match.index, whole.length)) return null;
  const tag = bold !== undefined ? "b" : italic !== undefined ? "i" : "s";
  return el(tag, {}, inlineNodes(inner, mode, depth + 1));
}

/** Slack formats *x* only between non-word characters ("snake_case_name", "__x" stay as is). */
function delimited(text, start, length) {
  const before = text[start - 1];
  const after = text[start + length];
  return !(before && WORD_CHAR.test(before)) && !(after && WORD_CHAR.test(after));
}

/** A <…> control: user, channel, special mention, user group, date or link. */
function renderControl(inner) {
  const bar = inner.indexOf("|");
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? null : inner.slice(bar + 1);
  if (target.startsWith("@")) return userMention(target.slice(1), label);
  if (target.startsWith("#")) return channelMention(target.slice(1), label);
  if (target.startsWith("!")) return specialMention(target.slice(1), label);
  return link(decode(target), label === null ? null : decode(label));
}

function userMention(id, label) {
  const user = findUser(id);
  const name = label ? decode(label).replace(/^@/, "") : user ? displayName(user) : id;
  return el("span", { class: "mention", "data-user-id": id, title: user ? realName(user) : id }, `@${name}`);
}

function channelMention(id, label) {
  const channel = findChannel(id);
  const name = label ? decode(label) : channel ? channel.name : id;
  const visible = channel && canSee(channel, state.user);
  return el("a", {
    class: "mention channel-link",
    href: "#",
    "data-channel-id": id,
    onclick: (event) => {
      event.preventDefault();
      if (visible) select(id);
      else toast(`#${name} is not visible to you`, "info");
    },
  }, `#${name}`);
}

function specialMention(target, label) {
  if (target.startsWith("subteam^")) {
    const id = target.slice("subteam^".length);
    const group = (state.ws?.usergroups || []).find((g) => g.id === id);
    const handle = label ? decode(label).replace(/^@/, "") : group ? group.handle : id;
    return el("span", { class: "mention usergroup", "data-usergroup-id": id }, `@${handle}`);
  }
  if (target.startsWith("date^")) {
    const seconds = Number(target.split("^")[1]);
    const fallback = label ? decode(label) : new Date(seconds * 1000).toLocaleString();
    return el("time", { class: "slack-date", title: new Date(seconds * 1000).toString() }, fallback);
  }
  const word = target.split("^")[0];
  if (["channel", "here", "everyone"].includes(word)) {
    return el("span", { class: "mention broadcast" }, `@${word}`);
  }
  return textNode(label ?? word);
}

/** A link to a safe URL, else just its text. */
function link(url, label) {
  const text = label ?? url.replace(/^mailto:/i, "");
  if (!SAFE_LINK.test(url)) return document.createTextNode(text);
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text);
}

/** A text object: plain_text literally (emoji aside), mrkdwn parsed. */
function renderText(obj, tag = "div") {
  if (obj === null || obj === undefined) return null;
  if (typeof obj === "string") return renderMrkdwn(obj, tag);
  if (obj.type === "plain_text") {
    const text = String(obj.text ?? "");
    return el(tag === "div" ? "div" : "span", { class: "plain" }, obj.emoji === false ? text : emojify(text));
  }
  return renderMrkdwn(obj.text, tag);
}

function plainOf(obj) {
  if (!obj) return "";
  return typeof obj === "string" ? obj : String(obj.text ?? "");
}

// ---------------------------------------------------------------------------------------------
// Block Kit: one renderer per block type and per element type.
// ctx = {target: {channel, ts} | {view_id}, blockId, index, actionId, form}

const BLOCKS = {
  section: renderSection,
  header: (block) => el("div", { class: "block block-header" }, renderText(block.text)),
  divider: () => el("hr", { class: "block block-divider" }),
  context: renderContext,
  image: renderImageBlock,
  actions: (block, ctx) =>
    el("div", { class: "block block-actions" }, (block.elements || []).map((e) => renderElement(e, ctx))),
  rich_text: (block) => el("div", { class: "block block-rich-text" }, (block.elements || []).map(renderRichElement)),
  input: renderInputBlock,
  file: (block) => el("div", { class: "block block-file" }, `📎 File ${block.external_id || ""}`),
  video: (block) =>
    el("div", { class: "block block-video" }, link(String(block.title_url || block.video_url || ""), plainOf(block.title))),
};

function renderBlocks(blocks, ctx) {
  const box = el("div", { class: "blocks" });
  (Array.isArray(blocks) ? blocks : []).forEach((block, index) => {
    if (!block || typeof block !== "object") return;
    const render = BLOCKS[block.type] || renderUnknownBlock;
    box.append(render(block, { ...ctx, blockId: block.block_id || `emu-block-${index}`, index }));
  });
  return box;
}

function renderUnknownBlock(block) {
  return el("div", { class: "block block-unknown" }, `[unsupported block: ${block.type}]`);
}

function renderSection(block, ctx) {
  const main = el("div", { class: "section-main" }, renderText(block.text));
  if (Array.isArray(block.fields) && block.fields.length) {
    main.append(el("div", { class: "section-fields" }, block.fields.map((f) => el("div", { class: "field" }, renderText(f)))));
  }
  const node = el("div", { class: "block block-section" }, main);
  if (block.accessory) node.append(el("div", { class: "accessory" }, renderElement(block.accessory, ctx)));
  return node;
}

function renderContext(block) {
  return el("div", { class: "block block-context" }, (block.elements || []).map((item) =>
    item.type === "image" ? renderImage(item.image_url, item.alt_text, "context-image") : renderText(item, "span")));
}

function renderImageBlock(block) {
  const url = block.image_url || (block.slack_file?.id ? fileUrl(block.slack_file.id) : block.slack_file?.url);
  return el("figure", { class: "block block-image" },
    block.title ? el("figcaption", {}, plainOf(block.title)) : null,
    renderImage(url, block.alt_text, "block-img"));
}

/** An <img>; offline or unsafe URLs show the alt text instead. */
function renderImage(url, alt, className) {
  const fallback = el("span", { class: "img-alt", title: String(url || "") }, `🖼 ${alt || "image"}`);
  const local = typeof url === "string" && url.startsWith("/_emulator/files/");
  if (!local && !SAFE_IMAGE.test(String(url || ""))) return fallback;
  const img = el("img", { class: className, src: url, alt: alt || "", loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(fallback));
  img.addEventListener("load", keepPaneAtBottom);
  return img;
}

// -- rich_text ---------------------------------------------------------------------------------

const RICH = {
  rich_text_section: (item) => el("div", { class: "rt-section" }, (item.elements || []).map(renderRichInline)),
  rich_text_preformatted: (item) => el("pre", { class: "mrkdwn-pre" }, (item.elements || []).map(renderRichInline)),
  rich_text_quote: (item) => el("blockquote", {}, (item.elements || []).map(renderRichInline)),
  rich_text_list: (item) => el(item.style === "ordered" ? "ol" : "ul", { class: `rt-list indent-${Number(item.indent) || 0}` },
    (item.elements || []).map((section) => el("li", {}, renderRichElement(section)))),
};

function renderRichElement(item) {
  const render = RICH[item?.type];
  return render ? render(item) : null;
}

const RICH_INLINE = {
  text: (item) => document.createTextNode(String(item.text ?? "")),
  link: (item) => link(String(item.url || ""), item.text ? String(item.text) : null),
  user: (item) => userMention(String(item.user_id), null),
  channel: (item) => channelMention(String(item.channel_id), null),
  usergroup: (item) => specialMention(`subteam^${item.usergroup_id}`, null),
  broadcast: (item) => el("span", { class: "mention broadcast" }, `@${item.range}`),
  emoji: (item) => document.createTextNode(EMOJI[item.name] || `:${item.name}:`),
  date: (item) => el("time", { class: "slack-date" }, String(item.fallback || new Date(item.timestamp * 1000).toLocaleString())),
};

function renderRichInline(item) {
  const render = RICH_INLINE[item?.type];
  let node = render ? render(item) : document.createTextNode("");
  const style = item?.style || {};
  for (const [flag, tag] of [["code", "code"], ["strike", "s"], ["italic", "i"], ["bold", "b"]]) {
    if (style[flag]) node = el(tag, {}, node);
  }
  return node;
}

// -- interactive elements ----------------------------------------------------------------------

const ELEMENTS = {
  button: renderButton,
  overflow: renderOverflow,
  radio_buttons: renderChoices,
  checkboxes: renderChoices,
  datepicker: (e, ctx) => renderPicker(e, ctx, "date", e.initial_date),
  timepicker: (e, ctx) => renderPicker(e, ctx, "time", e.initial_time),
  image: (e) => renderImage(e.image_url, e.alt_text, "accessory-image"),
};
for (const type of ["static_select", "external_select", "users_select", "conversations_select", "channels_select"]) {
  ELEMENTS[type] = ELEMENTS[`multi_${type}`] = renderSelect;
}
for (const type of ["plain_text_input", "number_input", "email_text_input", "url_text_input"]) {
  ELEMENTS[type] = renderTextInput;
}

function renderElement(element, ctx) {
  if (!element || typeof element !== "object") return null;
  const render = ELEMENTS[element.type];
  if (!render) return el("span", { class: "unsupported" }, `[${element.type}]`);
  return render(element, { ...ctx, actionId: element.action_id || `emu-action-${ctx.index}` });
}

/** The attributes every interactive control carries. */
function controlAttrs(ctx, element, className) {
  return {
    class: [className, ctx.form && "bk-input"],
    "data-action-id": ctx.actionId,
    "data-block-id": ctx.blockId,
    "data-kind": element.type,
    "aria-label": ctx.label || plainOf(element.placeholder) || element.type,
  };
}

/** Outside forms, picking a value sends it like Slack's block_actions. */
function watch(control, ctx, readValue) {
  if (ctx.form) return control;
  control.addEventListener("change", () => {
    const value = readValue();
    if (value === "" || (Array.isArray(value) && !value.length)) return;
    sendAction(ctx, value, control);
  });
  return control;
}

function renderButton(element, ctx) {
  const style = element.style === "primary" || element.style === "danger" ? `bk-${element.style}` : null;
  const button = el("button", {
    type: "button",
    class: ["bk-button", style],
    "data-action-id": ctx.actionId,
    "data-block-id": ctx.blockId,
    "data-value": element.value,
    title: element.url,
  }, plainOf(element.text));
  button.addEventListener("click", () => {
    if (element.confirm && !window.confirm(`${plainOf(element.confirm.title)}\n\n${plainOf(element.confirm.text)}`)) return;
    if (element.url && SAFE_LINK.test(element.url)) window.open(element.url, "_blank", "noopener");
    sendAction(ctx, element.value, button);
  });
  return button;
}

function renderOverflow(element, ctx) {
  const select = el("select", controlAttrs(ctx, element, "bk-overflow"), el("option", { value: "" }, "⋯"));
  appendOptions(select, element.options, null, []);
  select.addEventListener("change", () => {
    const value = select.value;
    select.value = "";
    if (value) sendAction(ctx, value, select);
  });
  return select;
}

/** Options of a select, whatever its source: static options, humans or channels. */
function selectSource(element) {
  const kind = element.type.replace(/^multi_/, "");
  if (kind === "users_select") {
    const options = humans().map((u) => ({ value: u.id, label: realName(u) }));
    return { options, initial: [element.initial_user, ...(element.initial_users || [])] };
  }
  if (kind === "conversations_select" || kind === "channels_select") {
    const channels = (state.ws?.channels || []).filter((c) => !c.is_im && !c.is_mpim && !c.is_archived && canSee(c, state.user));
    return {
      options: channels.map((c) => ({ value: c.id, label: `#${c.name}` })),
      initial: [element.initial_conversation, element.initial_channel,
        ...(element.initial_conversations || []), ...(element.initial_channels || [])],
    };
  }
  return {
    options: element.options,
    groups: element.option_groups,
    initial: [element.initial_option?.value, ...(element.initial_options || []).map((o) => o.value)],
  };
}

function renderSelect(element, ctx) {
  const multi = element.type.startsWith("multi_");
  const source = selectSource(element);
  const initial = source.initial.filter((v) => v !== undefined && v !== null);
  const select = el("select", { ...controlAttrs(ctx, element, "bk-select"), multiple: multi });
  if (!multi && !initial.length) select.append(el("option", { value: "" }, plainOf(element.placeholder) || "Select…"));
  appendOptions(select, source.options, source.groups, initial);
  return watch(select, ctx, () => (multi ? [...select.selectedOptions].map((o) => o.value) : select.value));
}

function appendOptions(select, options, groups, initial) {
  const option = (o) => el("option", { value: o.value ?? "", selected: initial.includes(o.value) }, o.label ?? plainOf(o.text));
  for (const o of options || []) select.append(option(o));
  for (const group of groups || []) {
    select.append(el("optgroup", { label: plainOf(group.label) }, (group.options || []).map(option)));
  }
}

function renderChoices(element, ctx) {
  const type = element.type === "checkboxes" ? "checkbox" : "radio";
  const initial = [element.initial_option?.value, ...(element.initial_options || []).map((o) => o.value)];
  const name = `choice-${++state.choiceCounter}`;
  const group = el("div", { ...controlAttrs(ctx, element, "bk-choices"), role: type === "radio" ? "radiogroup" : "group" },
    (element.options || []).map((o) => el("label", { class: "choice" },
      el("input", { type, name, value: o.value ?? "", checked: initial.includes(o.value) }),
      renderText(o.text, "span"),
      o.description ? el("span", { class: "choice-description" }, plainOf(o.description)) : null)));
  return watch(group, ctx, () => readControl(group));
}

function renderPicker(element, ctx, type, initial) {
  const input = el("input", { ...controlAttrs(ctx, element, "bk-picker"), type, value: initial });
  return watch(input, ctx, () => input.value);
}

function renderTextInput(element, ctx) {
  const types = { number_input: "number", email_text_input: "email", url_text_input: "url" };
  const attrs = {
    ...controlAttrs(ctx, element, "bk-text"),
    placeholder: plainOf(element.placeholder) || null,
    maxlength: element.max_length,
    minlength: element.min_length,
  };
  if (element.multiline) {
    const area = el("textarea", { ...attrs, rows: 4 });
    area.value = element.initial_value ?? "";
    return area;
  }
  const input = el("input", {
    ...attrs,
    type: types[element.type] || "text",
    min: element.min_value,
    max: element.max_value,
    step: element.type === "number_input" ? (element.is_decimal_allowed ? "any" : "1") : null,
  });
  input.value = element.initial_value ?? "";
  return input;
}

/** The value of a form control as the emulator's submit route wants it. */
function readControl(control) {
  if (control.classList.contains("bk-choices")) {
    const checked = [...control.querySelectorAll("input:checked")].map((i) => i.value);
    return control.dataset.kind === "checkboxes" ? checked : checked[0] ?? "";
  }
  if (control.multiple) return [...control.selectedOptions].map((o) => o.value);
  return control.value;
}

function renderInputBlock(block, ctx) {
  const label = plainOf(block.label);
  const element = renderElement(block.element, { ...ctx, form: !block.dispatch_action, label });
  if (element && block.dispatch_action) element.classList.add("bk-input");
  return el("div", { class: "block block-input", "data-input-block": ctx.blockId },
    el("div", { class: "input-label" }, label, block.optional ? el("span", { class: "optional" }, " (optional)") : null),
    element,
    block.hint ? el("div", { class: "input-hint" }, renderText(block.hint)) : null,
    el("div", { class: "input-error", "data-error-for": ctx.blockId, hidden: true }));
}

/** A click or a pick: POST /_emulator/click for the message or view it sits in. */
async function sendAction(ctx, value, control) {
  const body = { user: state.user, action_id: ctx.actionId, block_id: ctx.blockId, ...ctx.target };
  if (value !== undefined) body.value = value;
  await busy(control, () => drive("/_emulator/click", body));
}

// ---------------------------------------------------------------------------------------------
// Messages

function fileUrl(id) {
  return `/_emulator/files/${encodeURIComponent(id)}`;
}

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
    (m.files || []).map(renderFile)));
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
function renderMessages(channelId) {
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

function keepPaneAtBottom() {
  if (state.pane.stuck) $("messages").scrollTop = $("messages").scrollHeight;
}

// ---------------------------------------------------------------------------------------------
// Sidebar, header, channel pane, App Home

function messageCount(channelId) {
  return (state.ws.messages?.[channelId] || []).length;
}

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
      select(target);
    },
  }, label || `#${channel.name}`);
}

function renderSidebar() {
  const byName = (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true });
  const visible = state.ws.channels.filter((c) => !c.is_im && !c.is_mpim && canSee(c, state.user)).sort(byName);
  const archived = visible.filter((c) => c.is_archived);
  $("sidebar-channels").replaceChildren(...visible.filter((c) => !c.is_archived).map((c) => sidebarLink(c)));
  $("sidebar-archived").replaceChildren(...archived.map((c) => sidebarLink(c)));
  $("sidebar-archived-section").hidden = archived.length === 0;
  const dm = dmWithBot();
  const dmLink = dm ? sidebarLink(dm, "pulseops") : sidebarLink({ id: "", name: "pulseops", is_im: true }, "pulseops", "dm");
  const mpims = state.ws.channels.filter((c) => c.is_mpim && c.members.includes(state.user));
  $("sidebar-dms").replaceChildren(dmLink, ...mpims.map((c) => sidebarLink(c, channelLabel(c))));
  $("open-home").classList.toggle("active", state.selected === "home");
}

function renderUserPicker() {
  const people = humans();
  const key = people.map((u) => `${u.id}:${realName(u)}`).join(",");
  const picker = $("user-picker");
  if (key !== state.usersKey) {
    state.usersKey = key;
    picker.replaceChildren(...people.map((u) => el("option", { value: u.id }, `${realName(u)} (@${displayName(u)})`)));
  }
  picker.value = state.user;
}

function renderHeader() {
  $("workspace-name").textContent = state.ws.team?.name || state.ws.team?.domain || "workspace";
  const botUrl = $("bot-url");
  botUrl.hidden = !state.info?.bot_url;
  if (state.info?.bot_url && SAFE_IMAGE.test(state.info.bot_url)) {
    botUrl.href = state.info.bot_url;
    botUrl.textContent = `bot: ${state.info.bot_url}`;
  }
}

/** The selected conversation: a channel object, or null for the DM not opened yet. */
function currentChannel() {
  return state.selected === "dm" ? null : findChannel(state.selected);
}

function renderChannelHeader(channel) {
  const title = channel ? channelLabel(channel) : "pulseops";
  const key = JSON.stringify([title, channel?.topic, channel?.pins, channel?.is_archived, channel && messageCount(channel.id)]);
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

function renderComposer(channel) {
  const composer = $("composer");
  const note = $("composer-note");
  const home = state.selected === "home";
  const archived = Boolean(channel?.is_archived);
  composer.disabled = home || archived;
  $("composer-send").disabled = composer.disabled;
  note.hidden = !composer.disabled;
  note.textContent = home
    ? "App Home has no message box: use its buttons, or pick a channel."
    : archived ? `#${channel.name} is archived: nobody can post here.` : "";
  const where = channel ? channelLabel(channel) : "pulseops";
  const commands = state.info?.commands || [];
  composer.placeholder = composer.disabled ? "" : `Message ${where}${commands.length ? ` or ${commands[0]} help` : ""}`;
  $("composer-hint").textContent = commands.length
    ? `Commands: ${commands.join(", ")} · Enter sends, Shift+Enter adds a line`
    : "Enter sends, Shift+Enter adds a line · /command text runs a slash command";
}

function renderMain() {
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

// ---------------------------------------------------------------------------------------------
// Modals

/** The acting user's top modal: the last of state.modal_stacks[user]. */
function topModal() {
  const id = state.ws.modal_stacks?.[state.user]?.at(-1);
  return id ? state.ws.views?.[id] || null : null;
}

/** Re-render the modal only when its view or hash changes, so typing survives live updates. */
function renderModal() {
  const view = topModal();
  const key = view ? `${state.user}:${view.id}:${view.hash}` : null;
  if (key === state.modalKey) return;
  state.modalKey = key;
  const root = $("modal-root");
  root.replaceChildren();
  if (!view) return;
  const depth = state.ws.modal_stacks?.[state.user]?.length || 1;
  root.append(buildModal(view, depth));
  root.querySelector(".bk-input")?.focus();
}

function buildModal(view, depth) {
  const ctx = { target: { view_id: view.id } };
  const form = el("form", { class: "modal-card", novalidate: true },
    el("header", { class: "modal-header" },
      el("h2", { id: "modal-title" }, emojify(plainOf(view.title))),
      depth > 1 ? el("span", { class: "modal-depth" }, `${depth} deep`) : null,
      el("button", { type: "button", class: "modal-x", "aria-label": "Close", onclick: () => closeModal(view) }, "×")),
    el("div", { class: "modal-body" }, renderBlocks(view.blocks, ctx)),
    el("div", { id: "modal-error", class: "modal-error", hidden: true }),
    el("footer", { class: "modal-footer" },
      el("button", { id: "modal-close", type: "button", class: "btn", onclick: () => closeModal(view) },
        view.close ? plainOf(view.close) : "Cancel"),
      view.submit ? el("button", { id: "modal-submit", type: "submit", class: "btn btn-primary" }, plainOf(view.submit)) : null));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (view.submit) submitModal(view, form);
  });
  const dialog = { id: "modal", class: "modal-overlay", role: "dialog", "aria-modal": "true", "aria-labelledby": "modal-title" };
  return el("div", { ...dialog, "data-view-id": view.id }, form);
}

/** {block_id: {action_id: value}} of the filled inputs; empty ones are left out. */
function modalValues(form) {
  const values = {};
  for (const control of form.querySelectorAll(".bk-input")) {
    const value = readControl(control);
    if (value === "" || value === null || (Array.isArray(value) && value.length === 0)) continue;
    values[control.dataset.blockId] ||= {};
    values[control.dataset.blockId][control.dataset.actionId] = value;
  }
  return values;
}

function showModalErrors(form, errors, message) {
  for (const node of form.querySelectorAll(".input-error")) {
    const text = errors[node.dataset.errorFor];
    node.textContent = text ? String(text) : "";
    node.hidden = !text;
    node.closest(".block-input")?.classList.toggle("has-error", Boolean(text));
  }
  const box = form.querySelector("#modal-error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function submitModal(view, form) {
  const submit = form.querySelector("#modal-submit");
  showModalErrors(form, {}, "");
  let res;
  try {
    const body = { user: state.user, values: modalValues(form) };
    res = await busy(submit, () => request(`/_emulator/views/${encodeURIComponent(view.id)}/submit`, body));
  } catch (err) {
    toast(`Network error: ${err.message}`);
    return;
  } finally {
    requestRefresh();
  }
  const data = res.data && typeof res.data === "object" ? res.data : {};
  const problem = problemOf(res);
  const missing = /required inputs left empty: (.*)$/.exec(data.error || "");
  const errors = { ...(data.errors || {}) };
  if (missing) for (const id of missing[1].split(", ")) errors[id] = "Please fill out this field.";
  showModalErrors(form, errors, problem);
  if (problem) toast(problem);
}

async function closeModal(view) {
  await drive(`/_emulator/views/${encodeURIComponent(view.id)}/close`, { user: state.user });
}

// ---------------------------------------------------------------------------------------------
// Developer panel: alerts, Web API log, faults

function renderSamples() {
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
  requestRefresh();
}

function alertBody(status) {
  const body = { sample: $("alert-sample").value, status };
  if ($("alert-summary").value.trim()) body.summary = $("alert-summary").value;
  if ($("alert-key").value.trim()) body.key = $("alert-key").value;
  return body;
}

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

async function fetchCalls() {
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

function faultLines(faults) {
  const lines = [];
  if (faults.down_for > 0) lines.push(`Slack down for ${Math.ceil(faults.down_for)} s more`);
  if (faults.latency_ms > 0) lines.push(`${faults.latency_ms} ms latency on every call`);
  if (faults.error_status) lines.push(`next ${faults.error_count} calls answer HTTP ${faults.error_status}`);
  if (faults.hang_for > 0) lines.push(`calls hang for ${Math.ceil(faults.hang_for)} s more`);
  if (faults.methods) lines.push(`only for ${faults.methods.join(", ")}`);
  return lines;
}

/** Show the fault plan; controls follow it unless focused or the plan predates our change. */
function renderFaults(faults, fresh = true) {
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

// ---------------------------------------------------------------------------------------------
// Selection, composer, refresh

function select(target) {
  state.selected = target;
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

function parseCommand(text) {
  const match = /^(\/[\w-]+)(?:\s+([\s\S]*))?$/.exec(text.trim());
  if (!match) return null;
  const known = state.info ? (state.info.commands || []).includes(match[1]) : true;
  return known ? { command: match[1], text: (match[2] || "").trim() } : null;
}

async function sendComposer() {
  const composer = $("composer");
  const text = composer.value;
  if (!text.trim() || composer.disabled) return;
  const channel = currentChannel();
  const where = channel ? channel.id : state.user; // a user id opens that user's DM with the bot
  const command = parseCommand(text);
  const data = await busy($("composer-send"), () => (command
    ? drive("/_emulator/command", { user: state.user, channel: where, command: command.command, text: command.text })
    : drive("/_emulator/messages", { user: state.user, channel: channel ? channel.id : null, text }, { botStatus: false })));
  if (data) {
    composer.value = "";
    composer.style.height = "";
  }
  composer.focus();
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
// Wiring

function on(id, event, handler) {
  $(id).addEventListener(event, handler);
}

function wireComposer() {
  on("composer", "keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendComposer();
    }
  });
  on("composer", "input", (event) => {
    const box = event.target;
    box.style.height = "";
    box.style.height = `${Math.min(box.scrollHeight, 200)}px`;
  });
  on("composer-send", "click", sendComposer);
}

function wireDevPanel() {
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
    const hidden = document.body.classList.toggle("devpanel-hidden");
    e.currentTarget.setAttribute("aria-expanded", String(!hidden));
  });
}

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

document.addEventListener("DOMContentLoaded", boot);
