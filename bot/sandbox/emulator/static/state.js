/* The page's single shared state, late-bound hooks that break import cycles, and lookups into
 * the workspace snapshot (users, channels). */

/** The page's only mutable state. */
export const state = {
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

/** Calls that modules make into app.js without importing it; app.js fills them in. */
export const hooks = {
  refresh: () => {}, // fetch state and calls again (requestRefresh)
  select: (_target) => {}, // show a channel id, "dm" or "home"
  imageLoaded: () => {}, // an image finished loading: keep the message pane at the bottom
};

// -- workspace lookups ------------------------------------------------------------------------

export function humans() {
  return (state.ws?.users || []).filter((u) => !u.is_bot && !u.deleted);
}

export function findUser(id) {
  return (state.ws?.users || []).find((u) => u.id === id);
}

export function displayName(user) {
  return user.profile?.display_name || user.name || user.id;
}

export function realName(user) {
  return user.real_name || user.name || user.id;
}

export function findChannel(id) {
  return (state.ws?.channels || []).find((c) => c.id === id);
}

export function isBotMessage(message) {
  return Boolean(message.bot_id) || message.user === state.ws?.bot?.user_id;
}

export function canSee(channel, user) {
  return !(channel.is_private || channel.is_im || channel.is_mpim) || channel.members.includes(user);
}

export function dmWithBot() {
  return (state.ws?.channels || []).find((c) => c.is_im && c.user === state.user);
}

export function channelLabel(channel) {
  if (channel.is_im) return "pulseops";
  if (channel.is_mpim) {
    const others = channel.members.filter((id) => id !== state.user && id !== state.ws.bot.user_id);
    return ["pulseops", ...others.map((id) => (findUser(id) ? displayName(findUser(id)) : id))].join(", ");
  }
  return `#${channel.name}`;
}

export function messageCount(channelId) {
  return (state.ws.messages?.[channelId] || []).length;
}

/** The selected conversation: a channel object, or null for the DM not opened yet. */
export function currentChannel() {
  return state.selected === "dm" ? null : findChannel(state.selected);
}
