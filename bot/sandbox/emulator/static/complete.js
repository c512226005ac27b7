/* Completion in the message box, as Slack offers it: `/` at the start lists the app's slash
 * commands, `@` people and user groups, `#` channels. Arrow keys move, Enter or Tab picks,
 * Escape closes; a click picks too. Picking writes `@alice ` (Slack turns it into a mention). */

import { $, el } from "./dom.js";
import { canSee, displayName, humans, realName, state } from "./state.js";

const MAX = 8;
const menu = { items: [], active: 0, start: 0, end: 0 };

/** The token being typed at the caret: {sigil, prefix, start, end}, or null. */
function tokenAtCaret(box) {
  const caret = box.selectionStart ?? box.value.length;
  const before = box.value.slice(0, caret);
  const command = /^\/([\w-]*)$/.exec(before);
  if (command) return { sigil: "/", prefix: command[1].toLowerCase(), start: 0, end: caret };
  const word = /(^|\s)([@#])([\w.-]*)$/.exec(before);
  if (!word) return null;
  return { sigil: word[2], prefix: word[3].toLowerCase(), start: caret - word[3].length - 1, end: caret };
}

function candidates(token) {
  const starts = (name) => name.toLowerCase().startsWith(token.prefix);
  if (token.sigil === "/") {
    return (state.info?.commands || []).filter((c) => starts(c.slice(1)))
      .map((c) => ({ insert: `${c} `, label: c, detail: `${c} help` }));
  }
  if (token.sigil === "#") {
    return (state.ws?.channels || [])
      .filter((c) => !c.is_im && !c.is_mpim && !c.is_archived && canSee(c, state.user) && starts(c.name))
      .map((c) => ({ insert: `#${c.name} `, label: `#${c.name}`, detail: "" }));
  }
  const people = humans().filter((u) => starts(displayName(u)) || starts(realName(u)))
    .map((u) => ({ insert: `@${displayName(u)} `, label: `@${displayName(u)}`, detail: realName(u) }));
  const groups = (state.ws?.usergroups || []).filter((g) => !g.date_delete && starts(g.handle))
    .map((g) => ({ insert: `@${g.handle} `, label: `@${g.handle}`, detail: g.name || "user group" }));
  const special = ["here", "channel"].filter(starts)
    .map((s) => ({ insert: `@${s} `, label: `@${s}`, detail: "notify the channel" }));
  return [...people, ...groups, ...special];
}

function close() {
  menu.items = [];
  $("composer-suggest").hidden = true;
  $("composer").setAttribute("aria-expanded", "false");
}

function draw() {
  const list = $("composer-suggest");
  list.replaceChildren(...menu.items.map((item, i) => el("li", {
    role: "option",
    class: ["suggestion", i === menu.active && "active"],
    "aria-selected": String(i === menu.active),
    "data-insert": item.insert.trim(),
    onmousedown: (event) => {
      event.preventDefault(); // keep the focus in the message box
      menu.active = i;
      pick();
    },
  }, el("span", { class: "suggestion-label" }, item.label), el("span", { class: "suggestion-detail" }, item.detail))));
  list.hidden = menu.items.length === 0;
  $("composer").setAttribute("aria-expanded", String(menu.items.length > 0));
}

/** Recompute the suggestions for what is typed at the caret. */
export function suggest() {
  const box = $("composer");
  const token = tokenAtCaret(box);
  if (!token || box.disabled) return close();
  menu.items = candidates(token).slice(0, MAX);
  menu.active = 0;
  menu.start = token.start;
  menu.end = token.end;
  draw();
}

function pick() {
  const item = menu.items[menu.active];
  if (!item) return;
  const box = $("composer");
  box.value = box.value.slice(0, menu.start) + item.insert + box.value.slice(menu.end);
  const caret = menu.start + item.insert.length;
  box.setSelectionRange(caret, caret);
  close();
  box.focus();
}

/** Handle a key in the message box; true when the completion menu used it. */
export function completionKey(event) {
  if (menu.items.length === 0) return false;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const step = event.key === "ArrowDown" ? 1 : -1;
    menu.active = (menu.active + step + menu.items.length) % menu.items.length;
    draw();
  } else if (event.key === "Enter" || event.key === "Tab") {
    // Enter on a word already typed in full sends the message rather than completing it again
    const typed = $("composer").value.slice(menu.start, menu.end);
    if (event.key === "Enter" && menu.items[menu.active]?.insert.trim() === typed) {
      close();
      return false;
    }
    pick();
  } else if (event.key === "Escape") {
    close();
  } else {
    return false;
  }
  event.preventDefault();
  return true;
}

export { close as closeSuggestions };
