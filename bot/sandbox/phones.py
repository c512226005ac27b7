"""The sandbox's phones and inboxes: the Twilio emulator and a local SMTP server, wired to the
service, and the `/_sandbox/phones` routes the page's "Phones and inboxes" panel reads.

Unless the configuration already sets `contacts` or `notifications`, every team member gets
an e-mail address, a phone for SMS and calls and a push URL pointing into the sandbox, with
rules that reach them in seconds (push and e-mail at once, SMS after 20s, a call after 40s),
so a newcomer sees the whole paging chain offline and can "reply ack" or "press 1".
"""

from __future__ import annotations

import email
import re
import secrets
import socket
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import aiohttp
from aiohttp import web

from bot.config import PulseOpsConfig
from bot.config.paging import ContactConfig, NotificationsConfig
from bot.sandbox.twilio import TwilioEmulator

SANDBOX_NUMBER = "+15550001111"
SID_ENV, TOKEN_ENV, LINK_ENV = (
    "PULSEOPS_SANDBOX_TWILIO_SID",
    "PULSEOPS_SANDBOX_TWILIO_TOKEN",
    "PULSEOPS_SANDBOX_LINK_SECRET",
)
_LINK = re.compile(r"https?://\S+/notify/ack/\S+")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class _Inbox:
    """An aiosmtpd handler keeping what the sandbox's SMTP server receives."""

    mails: list[dict[str, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content)
        text = _text_of(message)
        link = _LINK.search(text)
        self.mails.append(
            {
                "to": ", ".join(envelope.rcpt_tos),
                "subject": str(message["Subject"] or ""),
                "text": re.sub(r"\n{3,}", "\n\n", text.replace("\r\n", "\n"))[:4000],
                "ack_url": link.group(0) if link else None,
            }
        )
        return "250 Message accepted for delivery"


def _text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(errors="replace")
    return ""


class Phones:
    """Twilio emulator + SMTP inbox + push receiver for one sandbox run."""

    def __init__(self, *, host: str) -> None:
        self.host = host
        self.twilio = TwilioEmulator(
            account_sid="AC" + secrets.token_hex(16),
            auth_token=secrets.token_hex(16),
            numbers=[SANDBOX_NUMBER],
        )
        self.inbox = _Inbox()
        self.pushes: list[dict[str, Any]] = []
        self.smtp_port = _free_port(host)
        self._controller: Any = None
        self._http: aiohttp.ClientSession | None = None
        self.bot_url = ""
        self.environ = {
            SID_ENV: self.twilio.account_sid,
            TOKEN_ENV: self.twilio.auth_token,
            LINK_ENV: secrets.token_hex(16),
        }

    async def start(self) -> None:
        from aiosmtpd.controller import Controller  # only the sandbox runs an SMTP server

        await self.twilio.start(host=self.host)
        self._controller = Controller(self.inbox, hostname=self.host, port=self.smtp_port)
        self._controller.start()

    async def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
        if self._http is not None:
            await self._http.close()
        await self.twilio.stop()

    def wire(self, config: PulseOpsConfig, *, bot_url: str, push_url: str) -> PulseOpsConfig:
        """`config` with the sandbox's providers and, unless it has its own, contacts for
        every team member."""
        self.bot_url = bot_url
        self.twilio.sms_url = f"{bot_url}/notify/twilio/sms"
        if config.contacts or config.notifications.smtp or config.notifications.twilio:
            return config
        people = sorted({m for team in config.teams for m in team.members})
        contacts = tuple(
            ContactConfig.model_validate(
                {
                    "user": user,
                    "methods": [
                        {"id": "push", "type": "apprise", "url": f"{push_url}/{user}"},
                        {
                            "id": "mail",
                            "type": "email",
                            "address": f"{user.lower()}@sandbox.example",
                        },
                        {"id": "sms", "type": "sms", "number": f"+1555010{n:04d}"},
                        {"id": "call", "type": "voice", "number": f"+1555010{n:04d}"},
                    ],
                    "rules": [
                        {"after": "0s", "methods": ["push", "mail"]},
                        {"after": "20s", "methods": ["sms"]},
                        {"after": "40s", "methods": ["call"]},
                    ],
                }
            )
            for n, user in enumerate(people, 1)
        )
        notifications = NotificationsConfig.model_validate(
            {
                "smtp": {
                    "host": self.host,
                    "port": self.smtp_port,
                    "starttls": False,
                    "from": "pulseops@sandbox.example",
                },
                "twilio": {
                    "account_sid_env": SID_ENV,
                    "auth_token_env": TOKEN_ENV,
                    "from": SANDBOX_NUMBER,
                    "api_url": self.twilio.api_url,
                },
                "public_url": bot_url,
                "link_secret_env": LINK_ENV,
            }
        )
        # validated again (not model_copy): the config indexes its contacts when built
        return PulseOpsConfig.model_validate(
            {**dict(config), "contacts": contacts, "notifications": notifications}
        )

    def snapshot(self) -> dict[str, Any]:
        sent = self.twilio.snapshot()
        return {
            "mails": self.inbox.mails[::-1],
            "sms": sent["messages"][::-1],
            "calls": sent["calls"][::-1],
            "replies": sent["replies"][::-1],
            "pushes": self.pushes[::-1],
        }

    async def follow_link(self, url: str) -> int:
        """What the "Acknowledge" button on the e-mail's confirmation page does."""
        if not url.startswith(self.bot_url + "/notify/ack/"):
            raise ValueError("not one of this sandbox's acknowledge links")
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        async with self._http.post(url) as response:
            return response.status


def register(app: web.Application, phones: Phones) -> None:
    """Add the `/_sandbox/phones` routes and the push receiver to the emulator's app."""

    async def listing(request: web.Request) -> web.Response:
        return web.json_response(phones.snapshot())

    async def push(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        phones.pushes.append(
            {
                "user": request.match_info["user"],
                "title": str(body.get("title", ""))[:200] if isinstance(body, dict) else "",
                "body": str(body.get("message", ""))[:2000] if isinstance(body, dict) else "",
            }
        )
        return web.json_response({"ok": True})

    async def act(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            return web.json_response(
                {"ok": False, "error": "the body must be a JSON object", "field": "body"},
                status=400,
            )
        action = request.match_info["action"]
        try:
            if action == "reply":
                status, _ = await phones.twilio.reply(
                    from_number=str(body["from"]), body=str(body.get("body", "ack"))
                )
            elif action == "answer":
                status, _ = await phones.twilio.answer(str(body["sid"]))
            elif action == "press":
                status, _ = await phones.twilio.press(
                    str(body["sid"]), str(body.get("digits", "1"))
                )
            elif action == "ack-link":
                status = await phones.follow_link(str(body["url"]))
            else:
                return web.json_response({"ok": False, "error": "unknown action"}, status=404)
        except KeyError as exc:
            return web.json_response(
                {"ok": False, "error": f"{exc.args[0]} is required", "field": exc.args[0]},
                status=400,
            )
        except (StopIteration, AssertionError, ValueError) as exc:
            return web.json_response(
                {"ok": False, "error": str(exc) or "not possible now"}, status=409
            )
        return web.json_response({"ok": status < 400, "status": status})

    app.router.add_get("/_sandbox/phones", listing)
    app.router.add_post("/_sandbox/phones/push/{user}", push)
    app.router.add_post("/_sandbox/phones/{action}", act)
