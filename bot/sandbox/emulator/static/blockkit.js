/* Block Kit: one renderer per block type and per element type; interactive elements send
 * block_actions through POST /_emulator/click. */

import { SAFE_IMAGE, SAFE_LINK, busy, drive, el, fileUrl } from "./dom.js";
import { EMOJI, channelMention, link, plainOf, renderText, specialMention, userMention } from "./mrkdwn.js";
import { canSee, hooks, humans, realName, state } from "./state.js";

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

export function renderBlocks(blocks, ctx) {
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
export function renderImage(url, alt, className) {
  const fallback = el("span", { class: "img-alt", title: String(url || "") }, `🖼 ${alt || "image"}`);
  const local = typeof url === "string" && url.startsWith("/_emulator/files/");
  if (!local && !SAFE_IMAGE.test(String(url || ""))) return fallback;
  const img = el("img", { class: className, src: url, alt: alt || "", loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(fallback));
  img.addEventListener("load", () => hooks.imageLoaded());
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
  datetimepicker: (e, ctx) => renderPicker(e, ctx, "datetime-local", localInput(e.initial_date_time)),
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

/** Unix seconds as a datetime-local input's value (the reader's time zone), "" for none. */
function localInput(seconds) {
  if (typeof seconds !== "number") return "";
  const at = new Date(seconds * 1000);
  return new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
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
export function readControl(control) {
  if (control.classList.contains("bk-choices")) {
    const checked = [...control.querySelectorAll("input:checked")].map((i) => i.value);
    return control.dataset.kind === "checkboxes" ? checked : checked[0] ?? "";
  }
  if (control.multiple) return [...control.selectedOptions].map((o) => o.value);
  if (control.dataset.kind === "datetimepicker") {  // Slack sends Unix seconds
    return control.value ? Math.floor(new Date(control.value).getTime() / 1000) : null;
  }
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
