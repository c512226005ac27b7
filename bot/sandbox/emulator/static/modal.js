/* Modals: the acting user's top view, its form, submit (with validation errors) and close. */

import { $, busy, drive, el, hideToast, problemOf, request, toast } from "./dom.js";
import { readControl, renderBlocks } from "./blockkit.js";
import { emojify, plainOf } from "./mrkdwn.js";
import { hooks, state } from "./state.js";

/** The acting user's top modal: the last of state.modal_stacks[user]. */
export function topModal() {
  const id = state.ws.modal_stacks?.[state.user]?.at(-1);
  return id ? state.ws.views?.[id] || null : null;
}

/** Re-render the modal only when its view or hash changes, so typing survives live updates. */
export function renderModal() {
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
    hooks.refresh();
  }
  const data = res.data && typeof res.data === "object" ? res.data : {};
  const missing = /required inputs left empty: (.*)$/.exec(data.error || "");
  const errors = { ...(data.errors || {}) };
  if (missing) for (const id of missing[1].split(", ")) errors[id] = "Please fill out this field.";
  // Slack shows an empty required field next to the field only (the form never left the
  // browser); the bot's field errors likewise; other problems once, inside the modal
  const problem = missing || (data.errors && !data.error) ? null : problemOf(res);
  showModalErrors(form, errors, problem);
  if (!problem && Object.keys(errors).length === 0) hideToast(); // a successful retry
}

export async function closeModal(view) {
  await drive(`/_emulator/views/${encodeURIComponent(view.id)}/close`, { user: state.user });
}
