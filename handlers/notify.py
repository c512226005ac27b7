"""Acknowledging from outside Slack: the e-mail's link and Twilio's webhooks.

`GET /notify/ack/{token}` shows a confirmation page and changes nothing (mail scanners open
links); its form POSTs to the same URL, which acknowledges once. `POST /notify/twilio/sms`
(the number's inbound message webhook), `POST /notify/twilio/voice/{id}` (the call's TwiML,
a `<Gather>` for "press 1"), `.../gather` and `POST /notify/twilio/status/{id}` (delivery
reports) answer only requests whose `X-Twilio-Signature` is valid: 403 otherwise.
"""

from __future__ import annotations

from html import escape

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from bot.deps import DEPS, Deps
from bot.domain.contacts import is_ack_reply
from bot.errors import Forbidden, NotFound, UserError
from bot.notify import messages

TWIML = "text/xml"
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>PulseOps</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1.2rem;padding:.6rem 1.4rem}}</style></head><body>{body}</body></html>"""


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=_PAGE.format(body=body),
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


async def ack_page(request: web.Request) -> web.Response:
    """GET: what the link acknowledges, and a button; nothing changes."""
    deps = request.app[DEPS]
    token = request.match_info["token"]
    try:
        n, incident = await deps.acks.link_target(token)
    except UserError as exc:
        return _html(f"<p>{escape(exc.message)}</p>", status=410 if "used" in exc.message else 400)
    service = deps.config.service(incident.service_id) if incident.service_id else None
    line = escape(messages.headline(incident, service.name if service else None))
    if incident.status.value != "triggered":
        return _html(f"<p>{line}</p><p>Already {escape(incident.status.value)}.</p>")
    return _html(
        f"<h1>Acknowledge {escape(incident.number)}?</h1><p>{line}</p>"
        f'<form method="post"><button type="submit">Acknowledge</button></form>'
        "<p>This stops further notifications and the escalation.</p>"
    )


async def ack_submit(request: web.Request) -> web.Response:
    """POST: acknowledge, once."""
    deps = request.app[DEPS]
    try:
        incident = await deps.acks.acknowledge_by_link(request.match_info["token"])
    except UserError as exc:
        return _html(f"<p>{escape(exc.message)}</p>", status=410 if "used" in exc.message else 400)
    return _html(
        f"<h1>{escape(incident.number)} is {escape(incident.status.value)}</h1>"
        "<p>Pending notifications and the escalation are stopped.</p>"
    )


async def _twilio_form(request: web.Request, deps: Deps) -> dict[str, str]:
    """The webhook's form, once its X-Twilio-Signature proves Twilio sent it; else 403."""
    twilio, public = deps.providers.twilio, deps.providers.config.public_url
    if twilio is None or public is None:
        raise NotFound("Twilio is not configured")
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    url = f"{public}{request.path_qs}"
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(twilio.auth_token).validate(url, params, signature):
        raise Forbidden(
            "invalid X-Twilio-Signature", fields={"X-Twilio-Signature": "does not match"}
        )
    if params.get("AccountSid") not in (None, twilio.account_sid):
        raise Forbidden("not this account", fields={"AccountSid": "not this account"})
    return params


def _twiml(response: VoiceResponse | MessagingResponse) -> web.Response:
    return web.Response(text=str(response), content_type=TWIML)


async def inbound_sms(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    form = await _twilio_form(request, deps)
    reply = MessagingResponse()
    if not is_ack_reply(form.get("Body", "")):
        reply.message("PulseOps: reply ACK (or 1) to acknowledge your latest page.")
        return _twiml(reply)
    incident = await deps.acks.acknowledge_by_sms(from_number=form.get("From", ""))
    if incident is None:
        reply.message("PulseOps: no page was sent to this number.")
    else:
        reply.message(f"PulseOps: {incident.number} is {incident.status.value}.")
    return _twiml(reply)


def _notification_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise NotFound("no such notification")
    return int(raw)


async def voice(request: web.Request) -> web.Response:
    """The call was answered: say what it is about and gather one digit."""
    deps = request.app[DEPS]
    await _twilio_form(request, deps)
    notification_id = _notification_id(request)
    _, incident = await deps.acks.call_target(notification_id)
    service = deps.config.service(incident.service_id) if incident.service_id else None
    words = messages.call_words(incident, service.name if service else None)
    public = deps.providers.config.public_url
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1,
        action=f"{public}/notify/twilio/voice/{notification_id}/gather",
        method="POST",
        timeout=10,
    )
    gather.say(words)
    response.say("No key was pressed. Goodbye.")
    return _twiml(response)


async def gather(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    form = await _twilio_form(request, deps)
    response = VoiceResponse()
    if form.get("Digits") == "1":
        incident = await deps.acks.acknowledge_by_call(notification_id=_notification_id(request))
        response.say(f"{incident.number.replace('-', ' ')} is {incident.status.value}. Goodbye.")
    else:
        response.say("Not acknowledged. Goodbye.")
    return _twiml(response)


async def status(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    form = await _twilio_form(request, deps)
    state = form.get("MessageStatus") or form.get("CallStatus") or ""
    code = form.get("ErrorCode", "")
    await deps.acks.provider_status(
        notification_id=_notification_id(request),
        status=state,
        error=f"Twilio error {code}" if code else "",
    )
    return web.Response(status=204)


def register(app: web.Application, deps: Deps) -> None:
    app.router.add_get("/notify/ack/{token}", ack_page)
    app.router.add_post("/notify/ack/{token}", ack_submit)
    app.router.add_post("/notify/twilio/sms", inbound_sms)
    app.router.add_post("/notify/twilio/voice/{id}", voice)
    app.router.add_post("/notify/twilio/voice/{id}/gather", gather)
    app.router.add_post("/notify/twilio/status/{id}", status)
