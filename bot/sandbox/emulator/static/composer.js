/* The message box: enabled or not, placeholder and hint for the selected conversation, and
 * sending what was typed as a message or a slash command. */

import { closeSuggestions, completionKey, suggest } from "./complete.js";
import { $, busy, drive, on } from "./dom.js";
import { channelLabel, currentChannel, state } from "./state.js";

export function renderComposer(channel) {
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
    ? drive("/_emulator/command", { user: state.user, channel: where, command: command.command, text: command.text, typed: true })
    : drive("/_emulator/messages", { user: state.user, channel: channel ? channel.id : null, text, typed: true }, { botStatus: false })));
  if (data) {
    composer.value = "";
    composer.style.height = "";
  }
  composer.focus();
}

export function wireComposer() {
  on("composer", "keydown", (event) => {
    if (completionKey(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendComposer();
    }
  });
  on("composer", "input", (event) => {
    const box = event.target;
    box.style.height = "";
    box.style.height = `${Math.min(box.scrollHeight, 200)}px`;
    suggest();
  });
  on("composer", "blur", closeSuggestions);
  on("composer-send", "click", sendComposer);
}
