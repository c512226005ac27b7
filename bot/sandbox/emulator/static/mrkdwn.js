/* mrkdwn, Slack's markup, parsed into DOM nodes (never HTML): formatting, quotes, code, mentions,
 * dates, safe links and emoji; plus Block Kit text objects. */

import { SAFE_LINK, appendAll, el, toast } from "./dom.js";
import { canSee, displayName, findChannel, findUser, hooks, realName, state } from "./state.js";

const ENTITIES = { amp: "&", lt: "<", gt: ">" };
export const EMOJI = {
  eyes: "👀", rotating_light: "🚨", white_check_mark: "✅", bar_chart: "📊", warning: "⚠️",
  tada: "🎉", fire: "🔥", pager: "📟", red_circle: "🔴", large_green_circle: "🟢",
  large_yellow_circle: "🟡", x: "❌", heavy_check_mark: "✔️", calendar: "📆", clock3: "🕒",
  chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", bell: "🔔", mag: "🔍",
  information_source: "ℹ️", arrow_up: "⬆️", arrow_down: "⬇️", pushpin: "📌", sos: "🆘",
  house: "🏠", wave: "👋", thumbsup: "👍", "+1": "👍", hourglass: "⌛", zzz: "💤",
  busts_in_silhouette: "👥", bust_in_silhouette: "👤", memo: "📝", link: "🔗", repeat: "🔁",
};

const FORMAT = /`([^`\n]+)`|<([^<>\n]+)>|\*((?:<[^<>\n]*>|[^*\n<])+)\*|_((?:<[^<>\n]*>|[^_\n<])+)_|~((?:<[^<>\n]*>|[^~\n<])+)~/g;
const WORD_CHAR = /[\p{L}\p{N}_*~`]/u; // next to these, *, _ and ~ are literal

function decode(text) {
  return String(text).replace(/&(amp|lt|gt);/g, (_, name) => ENTITIES[name]);
}

export function emojify(text) {
  return String(text).replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}

function textNode(raw) {
  return document.createTextNode(emojify(decode(raw)));
}

/** A mrkdwn string as a <div class="mrkdwn">: pre blocks, quotes, lines, inline formatting. */
export function renderMrkdwn(text, tag = "div") {
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

export function userMention(id, label) {
  const user = findUser(id);
  const name = label ? decode(label).replace(/^@/, "") : user ? displayName(user) : id;
  return el("span", { class: "mention", "data-user-id": id, title: user ? realName(user) : id }, `@${name}`);
}

export function channelMention(id, label) {
  const channel = findChannel(id);
  const name = label ? decode(label) : channel ? channel.name : id;
  const visible = channel && canSee(channel, state.user);
  return el("a", {
    class: "mention channel-link",
    href: "#",
    "data-channel-id": id,
    onclick: (event) => {
      event.preventDefault();
      if (visible) hooks.select(id);
      else toast(`#${name} is not visible to you`, "info");
    },
  }, `#${name}`);
}

export function specialMention(target, label) {
  if (target.startsWith("subteam^")) {
    const id = target.slice("subteam^".length);
    const group = (state.ws?.usergroups || []).find((g) => g.id === id);
    const handle = label ? decode(label).replace(/^@/, "") : group ? group.handle : id;
    return el("span", { class: "mention usergroup", "data-usergroup-id": id }, `@${handle}`);
  }
  if (target.startsWith("date^")) {
    const [, secondsText, format, link] = target.split("^");
    const seconds = Number(secondsText);
    const when = new Date(seconds * 1000);
    const shown = Number.isFinite(seconds) && format ? slackDate(when, decode(format)) : null;
    const text = shown ?? (label ? decode(label) : when.toLocaleString());
    const node = el("time", { class: "slack-date", datetime: Number.isFinite(seconds) ? when.toISOString() : null, title: when.toString() }, text);
    return link && SAFE_LINK.test(decode(link))
      ? el("a", { href: decode(link), target: "_blank", rel: "noopener noreferrer" }, node)
      : node;
  }
  const word = target.split("^")[0];
  if (["channel", "here", "everyone"].includes(word)) {
    return el("span", { class: "mention broadcast" }, `@${word}`);
  }
  return textNode(label ?? word);
}

/** A link to a safe URL, else just its text. */
export function link(url, label) {
  const text = label ?? url.replace(/^mailto:/i, "");
  if (!SAFE_LINK.test(url)) return document.createTextNode(text);
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text);
}

/** A text object: plain_text literally (emoji aside), mrkdwn parsed. */
export function renderText(obj, tag = "div") {
  if (obj === null || obj === undefined) return null;
  if (typeof obj === "string") return renderMrkdwn(obj, tag);
  if (obj.type === "plain_text") {
    const text = String(obj.text ?? "");
    return el(tag === "div" ? "div" : "span", { class: "plain" }, obj.emoji === false ? text : emojify(text));
  }
  return renderMrkdwn(obj.text, tag);
}

export function plainOf(obj) {
  if (!obj) return "";
  return typeof obj === "string" ? obj : String(obj.text ?? "");
}

// -- dates: <!date^SECONDS^FORMAT|fallback>, shown in the reader's time zone as Slack does ------

const DAY_MS = 86400000;

function ordinal(n) {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
  return `${n}${suffix}`;
}

function pretty(when, plain) {
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const diff = Math.round((day(when) - day(new Date())) / DAY_MS);
  return { 0: "today", [-1]: "yesterday", 1: "tomorrow" }[diff] ?? plain;
}

function ago(when) {
  const seconds = Math.round((Date.now() - when.getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const [n, unit] = s < 60 ? [s, "second"] : s < 3600 ? [Math.round(s / 60), "minute"]
    : s < 86400 ? [Math.round(s / 3600), "hour"] : [Math.round(s / 86400), "day"];
  const phrase = `${n} ${unit}${n === 1 ? "" : "s"}`;
  return future ? `in ${phrase}` : `${phrase} ago`;
}

/** A Slack date format ("{date_short_pretty} at {time}") in the browser's time zone; null when
 * the format names no token Slack knows (the fallback is shown then). */
export function slackDate(when, format) {
  if (Number.isNaN(when.getTime())) return null;
  const month = when.toLocaleString("en-US", { month: "long" });
  const mon = when.toLocaleString("en-US", { month: "short" });
  const weekday = when.toLocaleString("en-US", { weekday: "long" });
  const pad = (n) => String(n).padStart(2, "0");
  const date = `${month} ${ordinal(when.getDate())}, ${when.getFullYear()}`;
  const dateShort = `${mon} ${when.getDate()}, ${when.getFullYear()}`;
  const dateLong = `${weekday}, ${date}`;
  const tokens = {
    date_num: `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`,
    date, date_short: dateShort, date_long: dateLong,
    date_pretty: pretty(when, date), date_short_pretty: pretty(when, dateShort), date_long_pretty: pretty(when, dateLong),
    time: when.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" }),
    time_secs: when.toLocaleTimeString([], { hour: "numeric", minute: "2-digit", second: "2-digit" }),
    ago: ago(when),
  };
  let known = false;
  const text = format.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in tokens)) return whole;
    known = true;
    return tokens[name];
  });
  if (!known) return null;
  // Slack capitalises a pretty date that starts the text ("Today at 9:00 AM")
  return text.charAt(0).toUpperCase() + text.slice(1);
}
