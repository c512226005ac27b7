/* The "Phones and inboxes" panel: the e-mails, SMS, calls and pushes PulseOps sent through the
   sandbox's SMTP server, Twilio emulator and push receiver, with "reply ack", "press 1" and
   the e-mail's acknowledge link. Shown only when the sandbox serves /_sandbox/phones. */

import { $, busy, el, request, setChildren, toast } from "./dom.js";
import { hooks } from "./state.js";

const POLL_MS = 2000;

async function act(button, action, body) {
  await busy(button, async () => {
    try {
      const res = await request(`/_sandbox/phones/${action}`, body);
      const data = res.data && typeof res.data === "object" ? res.data : {};
      if (res.status >= 400 || data.ok === false) toast(data.error || `PulseOps answered HTTP ${data.status ?? res.status}`);
    } catch (err) {
      toast(`Network error: ${err.message}`);
    }
  });
  await refreshPhones();
  hooks.refresh();
}

function item(title, text, ...buttons) {
  return el("div", { class: "phone-item" },
    el("div", { class: "phone-title" }, title),
    text ? el("div", { class: "phone-text" }, text) : null,
    buttons.length ? el("div", { class: "dev-row" }, ...buttons) : null);
}

function button(label, onclick) {
  return el("button", { type: "button", class: "btn", onclick }, label);
}

function render(data) {
  const rows = [];
  for (const sms of data.sms || []) {
    rows.push(item(`SMS to ${sms.to} (${sms.status})`, sms.body,
      button("Reply ack", (e) => act(e.currentTarget, "reply", { from: sms.to, body: "ack" }))));
  }
  for (const call of data.calls || []) {
    const said = (call.said || []).join(" ");
    const buttons = [];
    if (call.status === "queued" && call.url) buttons.push(button("Answer", (e) => act(e.currentTarget, "answer", { sid: call.sid })));
    if (call.gather_action) buttons.push(button("Press 1", (e) => act(e.currentTarget, "press", { sid: call.sid, digits: "1" })));
    rows.push(item(`Call to ${call.to} (${call.status})`, said, ...buttons));
  }
  for (const mail of data.mails || []) {
    const buttons = mail.ack_url
      ? [button("Open link and acknowledge", (e) => act(e.currentTarget, "ack-link", { url: mail.ack_url }))]
      : [];
    rows.push(item(`E-mail to ${mail.to}: ${mail.subject}`, mail.text, ...buttons));
  }
  for (const push of data.pushes || []) rows.push(item(`Push to ${push.user}: ${push.title}`, push.body));
  for (const reply of data.replies || []) {
    rows.push(item(`SMS from ${reply.from}: ${reply.body}`, reply.answer ? `PulseOps answered: ${reply.answer}` : ""));
  }
  setChildren($("phones-list"), rows.length ? rows : el("div", { class: "hint" }, "Nothing sent yet. Fire an alert: people on call get a push and an e-mail at once, an SMS after 20 s and a call after 40 s."));
}

export async function refreshPhones() {
  let res;
  try {
    res = await request("/_sandbox/phones");
  } catch (_) {
    return;
  }
  const available = res.status === 200 && res.data && typeof res.data === "object";
  $("phones").hidden = !available;
  if (available) render(res.data);
}

export function wirePhones() {
  refreshPhones();
  setInterval(() => {
    if (!$("phones").hidden && $("phones").open) refreshPhones();
  }, POLL_MS);
}
