"""Paging beyond Slack through the running app: e-mail to a real SMTP server (aiosmtpd), SMS
and calls through the Twilio emulator, push through Apprise to a local HTTP receiver;
acknowledging by e-mail link, SMS reply and key press; cancellation, retries, throttles;
and `/oncall notify`, where people test, add and remove their own methods."""

from __future__ import annotations

import asyncio
import base64
import email
import re
import socket
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import PulseOpsConfig, parse_config
from bot.sandbox.emulator import Emulator
from bot.sandbox.twilio import TwilioEmulator
from store.models import ContactMethodRow, EscalationRow, NotificationRow
from tests.conftest import Harness
from tests.helpers import ONCALL_YAML, WEDNESDAY, dms, fire

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

SID = "AC" + "0" * 31 + "1"
TOKEN = "twilio-test-auth-token"
PUBLIC = "https://pulseops.example"
BOB_PHONE = "+4915112345678"
ENVIRON = {"TWILIO_SID": SID, "TWILIO_TOKEN": TOKEN, "PULSEOPS_LINK_SECRET": "link-secret"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.mails: list[Message] = []
        self.refuse = False  # answer 451 (a temporary failure), as a server in trouble does

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse:
            return "451 Requested action aborted: local error in processing"
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def push_receiver() -> AsyncIterator[tuple[list[dict[str, Any]], int]]:
    """A local HTTP endpoint an Apprise `json://` URL posts to."""
    received: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/push", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield received, port
    finally:
        await runner.cleanup()


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioEmulator]:
    emu = TwilioEmulator(account_sid=SID, auth_token=TOKEN, numbers=["+15550001111"])
    await emu.start()
    emu.sms_url = f"{PUBLIC}/notify/twilio/sms"
    try:
        yield emu
    finally:
        await emu.stop()


def paging_yaml(twilio_url: str, smtp_port: int, push_port: int, rules: str) -> str:
    return (
        ONCALL_YAML.format(first="5m", second="10m")
        + f"""contacts:
  - user: "U0BOB0001"
    methods:
      - {{id: mail, type: email, address: "bob@example.com"}}
      - {{id: phone-sms, type: sms, number: "{BOB_PHONE}"}}
      - {{id: phone-call, type: voice, number: "{BOB_PHONE}"}}
      - {{id: push, type: apprise, url: "json://127.0.0.1:{push_port}/push"}}
    rules:
{rules}notifications:
  smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, from: "pulseops@example.com"}}
  twilio: {{account_sid_env: TWILIO_SID, auth_token_env: TWILIO_TOKEN, from: "+15550001111",
           api_url: "{twilio_url}"}}
  public_url: "{PUBLIC}"
  link_secret_env: PULSEOPS_LINK_SECRET
  throttle: {{sms: 2, window: 15m}}
"""
    )


STANDARD_RULES = """      - {after: 0m, methods: [push, mail]}
      - {after: 2m, methods: [phone-sms]}
      - {after: 5m, methods: [phone-call]}
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(WEDNESDAY)


@pytest.fixture
def paging_config(
    twilio: TwilioEmulator, smtp: tuple[Inbox, int], push_receiver: tuple[list[Any], int]
) -> PulseOpsConfig:
    yaml = paging_yaml(twilio.api_url, smtp[1], push_receiver[1], STANDARD_RULES)
    return parse_config(yaml, source="paging.yml", environ=ENVIRON)


@pytest.fixture
async def paging(
    emulator: Emulator,
    database_url: str,
    paging_config: PulseOpsConfig,
    clock: ManualClock,
    twilio: TwilioEmulator,
) -> AsyncIterator[Harness]:
    async with Harness(
        emulator=emulator,
        database_url=database_url,
        config=paging_config,
        clock=clock,
        environ=ENVIRON,
    ) as h:
        twilio.forward(PUBLIC, h.url)
        yield h


async def notifications(h: Harness, incident_id: int) -> list[NotificationRow]:
    async with h.deps.db.read() as session:
        rows = await session.scalars(
            select(NotificationRow)
            .where(NotificationRow.incident_id == incident_id)
            .order_by(NotificationRow.id)
        )
        return list(rows.all())


def statuses(rows: list[NotificationRow]) -> dict[str, str]:
    return {r.method_id: r.status for r in rows}


async def timeline(h: Harness, incident_id: int) -> list[dict[str, Any]]:
    return list((await h.incident(incident_id))["timeline"])


async def step(h: Harness, seconds: int) -> None:
    """Let `seconds` pass: escalation deadlines and due notifications are delivered."""
    assert isinstance(h.clock, ManualClock)
    h.clock.advance(seconds)
    await h.deps.escalations.sweep()
    await h.settle()


@BOTH
async def test_alert_pages_push_and_mail_at_once_sms_later_and_a_reply_acknowledges(
    paging: Harness,
    twilio: TwilioEmulator,
    smtp: tuple[Inbox, int],
    push_receiver: tuple[list[dict[str, Any]], int],
) -> None:
    incident_id = await fire(paging, summary="Checkout <!channel> down")
    inbox, _ = smtp
    pushes, _ = push_receiver
    # at once: push and e-mail; nothing by phone yet
    assert len(pushes) == 1 and f"INC-{incident_id}" in pushes[0]["title"]
    assert len(inbox.mails) == 1 and inbox.mails[0]["To"] == "bob@example.com"
    assert twilio.messages == [] and twilio.calls == []
    assert statuses(await notifications(paging, incident_id)) == {
        "push": "sent",
        "mail": "sent",
        "phone-sms": "pending",
        "phone-call": "pending",
    }
    await step(paging, 119)
    assert twilio.messages == []
    await step(paging, 1)  # two minutes after the page: the SMS
    (sms,) = twilio.messages
    assert sms.to == BOB_PHONE and f"INC-{incident_id}" in sms.body and "ACK" in sms.body
    # Bob replies "ack": acknowledged, the escalation and the call (due at 5m) are cancelled
    status, body = await twilio.reply(from_number=BOB_PHONE, body=" Ack ")
    assert status == 200, body
    assert twilio.replies[-1]["answer"] == f"PulseOps: INC-{incident_id} is acknowledged."
    incident = await paging.incident(incident_id)
    assert incident["status"] == "acknowledged"
    async with paging.deps.db.read() as session:
        escalation = await session.get(EscalationRow, incident_id)
        assert escalation is not None and escalation.status == "stopped"
    assert statuses(await notifications(paging, incident_id))["phone-call"] == "cancelled"
    await step(paging, 600)
    assert twilio.calls == []
    events = await timeline(paging, incident_id)
    texts = [e["text"] for e in events]
    assert any("Acknowledged by replying to the SMS" in t for t in texts)
    assert any(t.startswith("Cancelled pending notifications: Call to +49") for t in texts)
    # numbers and addresses are masked on the timeline
    joined = "\n".join(texts)
    assert BOB_PHONE not in joined and "bob@example.com" not in joined
    assert "+49••••••••678" in joined and "b•••@example.com" in joined
    # the escalation's next level never paged Carol
    assert all("U0CAROL01" not in t for t in texts)
    status, metrics = await paging.get("/metrics", token=None)
    assert 'pulseops_notifications_total{result="sent",type="sms"} 1.0' in metrics
    assert 'pulseops_notifications_total{result="cancelled",type="voice"}' not in metrics


@BOTH
async def test_email_link_confirms_on_get_and_acknowledges_once_on_post(
    paging: Harness, smtp: tuple[Inbox, int]
) -> None:
    incident_id = await fire(paging)
    inbox, _ = smtp
    (mail,) = inbox.mails
    text = next(
        part.get_payload(decode=True).decode()
        for part in mail.walk()
        if part.get_content_type() == "text/plain"
    )
    match = re.search(rf"{re.escape(PUBLIC)}(/notify/ack/\S+)", text)
    assert match, text
    link = paging.url + match.group(1)
    assert paging.http is not None
    async with paging.http.get(link) as r:  # a mail scanner opening it changes nothing
        page = await r.text()
        assert r.status == 200 and "<form" in page and f"INC-{incident_id}" in page
    assert (await paging.incident(incident_id))["status"] == "triggered"
    async with paging.http.post(link) as r:
        assert r.status == 200, await r.text()
    assert (await paging.incident(incident_id))["status"] == "acknowledged"
    async with paging.http.post(link) as r:  # single use
        assert r.status == 410
    forged = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    async with paging.http.get(forged) as r:
        assert r.status == 400
    texts = [e["text"] for e in await timeline(paging, incident_id)]
    assert any("Acknowledged by the link in the e-mail" in t for t in texts)


async def test_email_link_expires(paging: Harness, smtp: tuple[Inbox, int]) -> None:
    incident_id = await fire(paging)
    text = smtp[0].mails[0].as_string()
    match = re.search(r"/notify/ack/([A-Za-z0-9_.=-]+)", text)
    assert match
    assert isinstance(paging.clock, ManualClock)
    paging.clock.advance(3 * 3600)  # link_ttl is 2h by default
    assert paging.http is not None
    async with paging.http.post(f"{paging.url}/notify/ack/{match.group(1)}") as r:
        assert r.status == 400 and "expired" in await r.text()
    assert (await paging.incident(incident_id))["status"] == "triggered"


async def test_call_gathers_a_key_and_pressing_1_acknowledges(
    paging: Harness, twilio: TwilioEmulator
) -> None:
    incident_id = await fire(paging)
    await step(paging, 300)  # SMS at 2m, call at 5m
    (call,) = twilio.calls
    rows = {r.method_id: r for r in await notifications(paging, incident_id)}
    assert call.to == BOB_PHONE
    assert call.url == f"{PUBLIC}/notify/twilio/voice/{rows['phone-call'].id}"
    status, twiml = await twilio.answer(call.sid)
    assert status == 200 and "<Gather" in twiml
    assert "Press 1 to acknowledge" in call.said[0]
    status, _ = await twilio.press(call.sid, "2")
    assert (await paging.incident(incident_id))["status"] == "triggered"
    await twilio.answer(call.sid)
    status, twiml = await twilio.press(call.sid, "1")
    assert status == 200 and "acknowledged" in twiml
    assert (await paging.incident(incident_id))["status"] == "acknowledged"


async def test_bad_twilio_signatures_are_refused_and_change_nothing(
    paging: Harness, twilio: TwilioEmulator
) -> None:
    incident_id = await fire(paging)
    await step(paging, 120)
    params = {"From": BOB_PHONE, "To": "+15550001111", "Body": "ack", "AccountSid": SID}
    url = f"{PUBLIC}/notify/twilio/sms"
    status, _ = await twilio.callback(url, params, signature="bm90IGEgc2lnbmF0dXJl")
    assert status == 403
    status, _ = await twilio.callback(url, params, signature="")
    assert status == 403
    # signed for another URL (a replay against a different webhook)
    other = twilio.sign(f"{PUBLIC}/notify/twilio/status/1", params)
    status, _ = await twilio.callback(url, params, signature=other)
    assert status == 403
    # signed with another account's token
    twilio.auth_token, real = "someone-elses-token", twilio.auth_token
    status, _ = await twilio.callback(url, params)
    twilio.auth_token = real
    assert status == 403
    assert (await paging.incident(incident_id))["status"] == "triggered"
    status, _ = await twilio.callback(url, params)  # the real thing still works
    assert status == 200
    assert (await paging.incident(incident_id))["status"] == "acknowledged"


async def test_a_twilio_outage_is_retried_with_backoff_and_recorded(
    paging: Harness, twilio: TwilioEmulator
) -> None:
    incident_id = await fire(paging)
    twilio.fail_next(2, status=503)
    await step(paging, 120)
    assert twilio.messages == []
    rows = await notifications(paging, incident_id)
    assert statuses(rows)["phone-sms"] == "pending"
    for _ in range(6):  # backoff: the row comes back within a minute
        await step(paging, 30)
    assert len(twilio.messages) == 1
    texts = [e["text"] for e in await timeline(paging, incident_id)]
    retried = [t for t in texts if "retrying" in t]
    assert len(retried) == 2 and "Twilio 503" in retried[0]
    assert any(t.startswith("SMS to +49") and t.endswith(" sent") for t in texts)


async def test_resolving_in_slack_cancels_every_pending_notification(
    paging: Harness, twilio: TwilioEmulator
) -> None:
    incident_id = await fire(paging)
    status, body = await paging.call(
        "PATCH", f"/api/v1/incidents/{incident_id}", {"status": "resolved"}
    )
    assert status == 200, body
    await step(paging, 900)
    assert twilio.messages == [] and twilio.calls == []
    assert statuses(await notifications(paging, incident_id)) == {
        "push": "sent",
        "mail": "sent",
        "phone-sms": "cancelled",
        "phone-call": "cancelled",
    }


@BOTH
async def test_sms_throttle_summarises_instead_of_ringing_again(
    paging: Harness, twilio: TwilioEmulator
) -> None:
    ids = []
    for n in range(4):  # four incidents, each paging Bob: SMS limit 2 per 15 min
        ids.append(
            await fire(paging, alertname=f"Alert{n}", fingerprint=f"f{n}", group_key=f"g{n}")
        )
    await step(paging, 120)
    assert len(twilio.messages) == 2
    throttled = [r for i in ids for r in await notifications(paging, i) if r.status == "throttled"]
    assert len(throttled) == 2
    texts = [e["text"] for i in ids for e in await timeline(paging, i)]
    assert sum("throttled" in t for t in texts) == 2
    # the window passes: the next SMS carries the summary of the held-back pages
    fifth = await fire(paging, alertname="Alert5", fingerprint="f5", group_key="g5")
    await step(paging, 16 * 60)
    last = twilio.messages[-1]
    assert f"INC-{fifth}" in last.body and "throttled" in last.body
    assert all(f"INC-{r.incident_id}" in last.body for r in throttled)


async def test_twilio_emulator_checks_auth_and_numbers(twilio: TwilioEmulator) -> None:
    import aiohttp

    url = f"{twilio.api_url}/2010-04-01/Accounts/{SID}/Messages.json"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data={"To": BOB_PHONE}) as r:
            assert r.status == 401 and (await r.json())["code"] == 20003
        auth = {"Authorization": "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()}
        for form, code in (
            ({"To": "0151 1234", "From": "+15550001111", "Body": "x"}, 21211),
            ({"To": BOB_PHONE, "From": "+15559999999", "Body": "x"}, 21606),
            ({"To": BOB_PHONE, "From": "+15550001111", "Body": ""}, 21602),
            ({"To": BOB_PHONE, "From": "+15550001111", "Body": "x" * 1601}, 21617),
        ):
            async with http.post(url, data=form, headers=auth) as r:
                assert r.status == 400 and (await r.json())["code"] == code
        calls = url.replace("Messages", "Calls")
        async with http.post(
            calls, data={"To": BOB_PHONE, "From": "+15550001111"}, headers=auth
        ) as r:
            assert r.status == 400 and (await r.json())["code"] == 21205
    assert twilio.messages == [] and twilio.calls == []


async def test_apprise_failure_is_recorded_with_the_reason(
    emulator: Emulator,
    database_url: str,
    clock: ManualClock,
    twilio: TwilioEmulator,
    smtp: tuple[Inbox, int],
) -> None:
    port = free_port()  # nothing listens there
    yaml = paging_yaml(twilio.api_url, smtp[1], port, "      - {after: 0m, methods: [push]}\n")
    yaml = yaml.replace("  public_url:", "  max_attempts: 1\n  public_url:")
    config = parse_config(yaml, source="p.yml", environ=ENVIRON)
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock, environ=ENVIRON
    ) as h:
        incident_id = await fire(h)
        texts = [e["text"] for e in await timeline(h, incident_id)]
        failed = [t for t in texts if t.startswith("Push to json://••• failed")]
        assert failed, texts
        assert statuses(await notifications(h, incident_id)) == {"push": "failed"}


async def test_twilio_status_reports_land_on_the_timeline(
    paging: Harness, twilio: TwilioEmulator
) -> None:
    incident_id = await fire(paging)
    await step(paging, 300)
    (sms,) = twilio.messages
    (call,) = twilio.calls
    status, _ = await twilio.report(sms.sid, "delivered")
    assert status == 204
    status, _ = await twilio.report(call.sid, "no-answer")
    assert status == 204
    rows = {r.method_id: r for r in await notifications(paging, incident_id)}
    assert rows["phone-sms"].status == "delivered"
    assert rows["phone-call"].status == "failed"
    texts = [e["text"] for e in await timeline(paging, incident_id)]
    assert "SMS to +49••••••••678 delivered (delivered)" in texts
    assert "Call to +49••••••••678 failed (no-answer)" in texts


@pytest.mark.slow
async def test_an_sms_whose_answer_was_lost_is_found_not_sent_again(
    emulator: Emulator,
    database_url: str,
    clock: ManualClock,
    twilio: TwilioEmulator,
    smtp: tuple[Inbox, int],
    push_receiver: tuple[list[Any], int],
) -> None:
    yaml = paging_yaml(twilio.api_url, smtp[1], push_receiver[1], STANDARD_RULES)
    yaml = yaml.replace('from: "+15550001111",', 'from: "+15550001111", timeout: 1s,')
    config = parse_config(yaml, source="p.yml", environ=ENVIRON)
    twilio.now = clock.now
    async with Harness(
        emulator=emulator, database_url=database_url, config=config, clock=clock, environ=ENVIRON
    ) as h:
        twilio.forward(PUBLIC, h.url)
        incident_id = await fire(h)
        twilio.lose_next_answer()
        await step(h, 120)  # Twilio takes the SMS; its answer never arrives
        assert len(twilio.messages) == 1
        rows = {r.method_id: r for r in await notifications(h, incident_id)}
        assert rows["phone-sms"].status == "sending"
        for _ in range(4):
            await step(h, 30)
        (sms,) = twilio.messages  # found in Twilio's log, not sent again
        rows = {r.method_id: r for r in await notifications(h, incident_id)}
        assert rows["phone-sms"].status == "sent"
        assert rows["phone-sms"].provider_id == sms.sid
        # and a reply to it still acknowledges
        status, _ = await twilio.reply(from_number=BOB_PHONE, body="1")
        assert status == 200
        assert (await h.incident(incident_id))["status"] == "acknowledged"


# --------------------------------------------------------------------------- /oncall notify

BOB = "U0BOB0001"


async def open_modal(h: Harness) -> tuple[str, dict[str, Any]]:
    result = await h.emu.command(user=BOB, channel="C0PAYMENTS", command="/oncall", text="notify")
    assert result["status"] == 200
    for _ in range(100):
        if h.emu.views:
            break
        await asyncio.sleep(0.02)
    ((view_id, view),) = h.emu.views.items()
    assert view["callback_id"] == "notify_methods"
    return view_id, view


def texts(view: dict[str, Any]) -> str:
    return "\n".join(
        str(b.get("text", {}).get("text", "")) for b in view["blocks"] if b["type"] == "section"
    )


async def wait_for_view(h: Harness, view_id: str, needle: str) -> dict[str, Any]:
    for _ in range(200):
        view = h.emu.views[view_id]
        if needle in texts(view) or any(
            needle in str(b) for b in view["blocks"] if b["type"] == "context"
        ):
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"{needle!r} never shown: {texts(h.emu.views[view_id])}")


async def test_the_modal_lists_defaults_and_sends_a_test_page(
    paging: Harness, twilio: TwilioEmulator
) -> None:
    view_id, view = await open_modal(paging)
    shown = texts(view)
    assert "*SMS* to `+49••••••••678`, after 2m _(default from pulseops.yml)_" in shown
    assert "*Push* to `json://•••`, at once" in shown
    assert BOB_PHONE not in str(view)
    sms_button = next(
        el
        for b in view["blocks"]
        if b["type"] == "actions"
        for el in b["elements"]
        if el["value"] == "phone-sms"
    )
    await paging.emu.click(user=BOB, view_id=view_id, action_id=sms_button["action_id"])
    await wait_for_view(paging, view_id, "Test page on its way")
    await paging.settle()
    (sms,) = twilio.messages
    assert sms.to == BOB_PHONE and "test page" in sms.body
    (dm,) = dms(paging, BOB)
    assert dm["text"] == "Test page sent: SMS to +49••••••••678. Check that it arrived."


async def test_bad_input_is_a_field_error_and_changes_nothing(paging: Harness) -> None:
    view_id, _ = await open_modal(paging)
    result = await paging.emu.submit_view(
        user=BOB,
        view_id=view_id,
        values={"notify_type": {"type": "sms"}, "notify_destination": {"destination": "0151 12"}},
    )
    assert result["body"]["response_action"] == "errors"
    assert "E.164" in result["body"]["errors"]["notify_destination"]
    result = await paging.emu.submit_view(
        user=BOB,
        view_id=view_id,
        values={
            "notify_type": {"type": "sms"},
            "notify_destination": {"destination": "+4917000000001"},
            "notify_after": {"after": "soon"},
        },
    )
    assert "notify_after" in result["body"]["errors"]
    async with paging.deps.db.read() as session:
        assert (await session.scalars(select(ContactMethodRow))).all() == []


@BOTH
async def test_own_methods_replace_the_defaults_when_paged(
    paging: Harness, twilio: TwilioEmulator, smtp: tuple[Inbox, int]
) -> None:
    view_id, _ = await open_modal(paging)
    result = await paging.emu.submit_view(
        user=BOB,
        view_id=view_id,
        values={
            "notify_type": {"type": "sms"},
            "notify_destination": {"destination": "+4917000000001"},
            "notify_after": {"after": "30s"},
        },
    )
    assert result["body"]["response_action"] == "update", result["body"]
    assert "*SMS* to `+49••••••••001`, after 30s" in texts(result["body"]["view"])
    incident_id = await fire(paging)
    assert smtp[0].mails == []  # the config's e-mail default no longer applies
    await step(paging, 30)
    (sms,) = twilio.messages
    assert sms.to == "+4917000000001"
    rows = await notifications(paging, incident_id)
    assert [(r.method_id, r.status) for r in rows] == [("sms-1", "sent")]
    # removing it brings the defaults back
    view_id, view = await open_modal_again(paging)
    remove = next(
        el
        for b in view["blocks"]
        if b["type"] == "actions"
        for el in b["elements"]
        if el["action_id"].startswith("notify_remove_")
    )
    await paging.emu.click(user=BOB, view_id=view_id, action_id=remove["action_id"])
    view = await wait_for_view(paging, view_id, "default from pulseops.yml")
    async with paging.deps.db.read() as session:
        assert (await session.scalars(select(ContactMethodRow))).all() == []


async def open_modal_again(h: Harness) -> tuple[str, dict[str, Any]]:
    before = set(h.emu.views)
    await h.emu.command(user=BOB, channel="C0PAYMENTS", command="/oncall", text="notify")
    for _ in range(100):
        new = set(h.emu.views) - before
        if new:
            view_id = new.pop()
            return view_id, h.emu.views[view_id]
        await asyncio.sleep(0.02)
    raise AssertionError("no modal opened")


@BOTH
async def test_notifications_due_while_the_service_was_down_go_out_once_after_restart(
    paging: Harness, twilio: TwilioEmulator, smtp: tuple[Inbox, int]
) -> None:
    incident_id = await fire(paging)
    await paging.stop()
    assert isinstance(paging.clock, ManualClock)
    paging.clock.advance(600)  # the SMS (2m) and the call (5m) fell due meanwhile
    await paging.start()
    twilio.forward(PUBLIC, paging.url)
    await paging.settle()
    assert len(twilio.messages) == 1 and len(twilio.calls) == 1
    assert len(smtp[0].mails) == 1  # sent before the stop, not again
    await paging.restart()
    await step(paging, 60)
    assert len(twilio.messages) == 1 and len(twilio.calls) == 1
    assert set(statuses(await notifications(paging, incident_id)).values()) == {"sent"}


async def test_an_smtp_outage_is_retried(
    paging: Harness, smtp: tuple[Inbox, int], push_receiver: tuple[list[Any], int]
) -> None:
    inbox, port = smtp
    inbox.refuse = True
    incident_id = await fire(paging)
    assert inbox.mails == [] and len(push_receiver[0]) == 1
    texts = [e["text"] for e in await timeline(paging, incident_id)]
    assert any(
        t.startswith("E-mail to b•••@example.com failed (attempt 1), retrying") for t in texts
    )
    inbox.refuse = False
    await step(paging, 30)
    assert len(inbox.mails) == 1
    assert statuses(await notifications(paging, incident_id))["mail"] == "sent"


async def test_a_push_url_set_in_slack_may_not_reach_private_addresses(paging: Harness) -> None:
    view_id, _ = await open_modal(paging)
    for url in ("json://127.0.0.1:8080/x", "ntfys://169.254.169.254/latest", "json://localhost/"):
        result = await paging.emu.submit_view(
            user=BOB,
            view_id=view_id,
            values={"notify_type": {"type": "apprise"}, "notify_destination": {"destination": url}},
        )
        assert result["body"]["response_action"] == "errors", url
        error = result["body"]["errors"]["notify_destination"]
        assert "private or loopback" in error or "link-local" in error, error
    async with paging.deps.db.read() as session:
        assert (await session.scalars(select(ContactMethodRow))).all() == []
