"""A strict emulator of the parts of Twilio's REST API PulseOps uses, for tests and the sandbox.

It checks the account's basic auth, the parameters and the numbers as Twilio does (same
error codes and messages), records messages and calls, and plays the phone's side: a
person replying to an SMS, answering a call and pressing a key, and Twilio's status
reports. Every callback is signed the way Twilio signs them (`X-Twilio-Signature`, made
with the official `twilio` library's RequestValidator) over the URL Twilio was given.

    twilio = TwilioEmulator(account_sid="AC…", auth_token="…", numbers=["+15550001111"])
    await twilio.start()                      # config: twilio.api_url = twilio.api_url
    twilio.sms_url = "https://pulseops.example/notify/twilio/sms"   # the number's webhook
    twilio.forward("https://pulseops.example", "http://127.0.0.1:3000")  # a reverse proxy
    await twilio.reply(from_number="+4915112345678", body="ack")
    await twilio.answer(call_sid); await twilio.press(call_sid, "1")
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from bot.domain.contacts import is_e164

MAX_BODY = 1600
_URL = re.compile(r"https?://[^\s]+")


@dataclass
class SentMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    status: str = "queued"
    created_at: str = ""
    direction: str = "outbound-api"
    received: float = 0.0  # time.monotonic() when the request arrived (for benchmarks)


@dataclass
class PlacedCall:
    sid: str
    to: str
    from_: str
    url: str
    status_callback: str | None
    status: str = "queued"
    created_at: str = ""
    said: list[str] = field(default_factory=list)  # what the call said, in order
    gather_action: str | None = None
    digits: str | None = None


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


class TwilioEmulator:
    """Messages.json and Calls.json of one account, and the phones on the other side."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        numbers: list[str] | tuple[str, ...] = ("+15550001111",),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.now = now
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = tuple(numbers)
        self.messages: list[SentMessage] = []
        self.calls: list[PlacedCall] = []
        self.replies: list[dict[str, str]] = []  # inbound SMS and what PulseOps answered
        self.requests = 0
        self.sms_url: str | None = None  # the numbers' inbound message webhook
        self._failures: list[int] = []
        self._lose_answers = 0
        self._forward: tuple[str, str] | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.base_url: str | None = None
        self.changed = asyncio.Event()
        self.app = web.Application()
        prefix = "/2010-04-01/Accounts/{sid}"
        self.app.router.add_post(prefix + "/Messages.json", self._messages)
        self.app.router.add_post(prefix + "/Calls.json", self._calls)
        self.app.router.add_get(prefix + "/Messages.json", self._list)
        self.app.router.add_get(prefix + "/Calls.json", self._list)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        """The `notifications.twilio.api_url` that points PulseOps here."""
        assert self.base_url is not None, "the emulator is not started"
        return self.base_url

    def forward(self, public_url: str, local_url: str) -> None:
        """Callbacks to `public_url…` are made to `local_url…` (signed over the public URL,
        as a reverse proxy in front of PulseOps would pass them on)."""
        self._forward = (public_url.rstrip("/"), local_url.rstrip("/"))

    def lose_next_answer(self, count: int = 1) -> None:
        """The next `count` messages or calls are made, but their answers never arrive (the
        client times out): a retry must find them instead of sending them again."""
        self._lose_answers += count

    async def _maybe_lose(self) -> None:
        if self._lose_answers:
            self._lose_answers -= 1
            await asyncio.sleep(3600)  # the client's timeout ends the request first

    def fail_next(self, count: int = 1, *, status: int = 503) -> None:
        """The next `count` API requests fail with `status` (an outage)."""
        self._failures.extend([status] * count)

    # -- the REST API ---------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        if self._failures:
            status = self._failures.pop(0)
            return _error(status, 20500 if status >= 500 else 20429, "Service unavailable")
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return _error(401, 20003, "Authenticate")
        if scheme.lower() != "basic" or (login, password) != (self.account_sid, self.auth_token):
            return _error(401, 20003, "Authenticate")
        if request.match_info["sid"] != self.account_sid:
            return _error(404, 20404, "The requested resource was not found")
        return None

    def _now(self) -> str:
        return self.now().strftime("%a, %d %b %Y %H:%M:%S +0000")

    def _check_numbers(self, form: dict[str, str], *, kind: str) -> web.Response | None:
        to, from_ = form.get("To", ""), form.get("From", "")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not is_e164(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if from_ not in self.numbers:
            if kind == "sms":
                return _error(
                    400,
                    21606,
                    f"The From phone number {from_} is not a valid, SMS-capable inbound "
                    "phone number or short code for your account.",
                )
            return _error(
                400, 21210, f"The source phone number provided, {from_}, is not yet verified."
            )
        callback = form.get("StatusCallback")
        if callback is not None and not _URL.fullmatch(callback):
            return _error(400, 21609, f"Invalid StatusCallback URL {callback}")
        return None

    async def _messages(self, request: web.Request) -> web.Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        form = {k: str(v) for k, v in (await request.post()).items()}
        refused = self._check_numbers(form, kind="sms")
        if refused is not None:
            return refused
        body = form.get("Body", "")
        if not body.strip():
            return _error(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        message = SentMessage(
            sid="SM" + secrets.token_hex(16),
            to=form["To"],
            from_=form["From"],
            body=body,
            status_callback=form.get("StatusCallback"),
            created_at=self._now(),
            received=time.monotonic(),
        )
        self.messages.append(message)
        self.changed.set()
        await self._maybe_lose()
        return web.json_response(self._message_json(message), status=201)

    async def _list(self, request: web.Request) -> web.Response:
        """GET Messages.json / Calls.json, filtered by To and From, newest first."""
        refused = self._authorised(request)
        if refused is not None:
            return refused
        to, from_ = request.query.get("To"), request.query.get("From")
        if request.path.endswith("/Messages.json"):
            key, items = "messages", [self._message_json(m) for m in self.messages]
        else:
            key, items = "calls", [self._call_json(c) for c in self.calls]
        items = [
            i
            for i in items
            if (to is None or i["to"] == to) and (from_ is None or i["from"] == from_)
        ]
        return web.json_response({key: items[::-1], "page": 0, "page_size": 50})

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        return {
            "sid": message.sid,
            "account_sid": self.account_sid,
            "to": message.to,
            "from": message.from_,
            "body": message.body,
            "status": message.status,
            "direction": message.direction,
            "date_created": message.created_at,
            "num_segments": str(1 + (len(message.body) - 1) // 153),
        }

    def _call_json(self, call: PlacedCall) -> dict[str, Any]:
        return {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "to": call.to,
            "from": call.from_,
            "status": call.status,
            "date_created": call.created_at,
        }

    async def _calls(self, request: web.Request) -> web.Response:
        refused = self._authorised(request)
        if refused is not None:
            return refused
        form = {k: str(v) for k, v in (await request.post()).items()}
        refused = self._check_numbers(form, kind="voice")
        if refused is not None:
            return refused
        url = form.get("Url")
        if not url and not form.get("Twiml"):
            return _error(400, 21205, "Url parameter is required.")
        if url is not None and not _URL.fullmatch(url):
            return _error(400, 21205, f"Url is not a valid URL: {url}")
        call = PlacedCall(
            sid="CA" + secrets.token_hex(16),
            to=form["To"],
            from_=form["From"],
            url=url or "",
            status_callback=form.get("StatusCallback"),
            created_at=self._now(),
        )
        self.calls.append(call)
        self.changed.set()
        await self._maybe_lose()
        return web.json_response(self._call_json(call), status=201)

    # -- the phones' side -----------------------------------------------------------------

    def sign(self, url: str, params: dict[str, str]) -> str:
        """The X-Twilio-Signature Twilio would send for a POST of `params` to `url`."""
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    async def callback(
        self, url: str, params: dict[str, str], *, signature: str | None = None
    ) -> tuple[int, str]:
        """POST a signed webhook to `url` (as Twilio would); (status, body text)."""
        target = url
        if self._forward is not None and url.startswith(self._forward[0]):
            target = self._forward[1] + url[len(self._forward[0]) :]
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        headers = {"X-Twilio-Signature": self.sign(url, params) if signature is None else signature}
        async with self._http.post(target, data=params, headers=headers) as response:
            return response.status, await response.text()

    async def reply(self, *, from_number: str, body: str, to: str | None = None) -> tuple[int, str]:
        """A person texts `body` to our number: the inbound message webhook; what PulseOps
        answered in TwiML `<Message>` is recorded in `replies`."""
        assert self.sms_url is not None, "set sms_url (the number's messaging webhook) first"
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": self.account_sid,
            "From": from_number,
            "To": to or self.numbers[0],
            "Body": body,
            "NumMedia": "0",
        }
        status, text = await self.callback(self.sms_url, params)
        answer = ""
        if status == 200:
            found = ET.fromstring(text).find("Message")
            answer = "" if found is None else (found.text or "")
        self.replies.append({"from": from_number, "body": body, "answer": answer})
        self.changed.set()
        return status, text

    def call(self, sid: str) -> PlacedCall:
        return next(c for c in self.calls if c.sid == sid)

    def _call_params(self, call: PlacedCall, status: str) -> dict[str, str]:
        return {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": call.from_,
            "To": call.to,
            "CallStatus": status,
            "Direction": "outbound-api",
        }

    async def answer(self, sid: str) -> tuple[int, str]:
        """The callee picks up: Twilio fetches the call's TwiML."""
        call = self.call(sid)
        call.status = "in-progress"
        status, text = await self.callback(call.url, self._call_params(call, "in-progress"))
        if status == 200:
            self._play(call, text)
        self.changed.set()
        return status, text

    async def press(self, sid: str, digits: str) -> tuple[int, str]:
        """The callee presses `digits` during the `<Gather>`: Twilio posts them to its action."""
        call = self.call(sid)
        assert call.gather_action, "the call is not gathering digits"
        params = {**self._call_params(call, "in-progress"), "Digits": digits}
        call.digits = digits
        status, text = await self.callback(call.gather_action, params)
        if status == 200:
            self._play(call, text)
            call.status = "completed"
        self.changed.set()
        return status, text

    def _play(self, call: PlacedCall, twiml: str) -> None:
        root = ET.fromstring(twiml)
        call.gather_action = None
        for element in root.iter():
            if element.tag == "Say" and element.text:
                call.said.append(element.text)
            elif element.tag == "Gather":
                call.gather_action = element.get("action")

    async def report(self, sid: str, status: str, *, error_code: str = "") -> tuple[int, str]:
        """Twilio's status callback for a message or call (`delivered`, `failed`, …)."""
        message = next((m for m in self.messages if m.sid == sid), None)
        if message is not None:
            message.status = status
            assert message.status_callback
            params = {
                "MessageSid": sid,
                "AccountSid": self.account_sid,
                "MessageStatus": status,
                "To": message.to,
                "From": message.from_,
            }
            url = message.status_callback
        else:
            call = self.call(sid)
            call.status = status
            assert call.status_callback
            params = self._call_params(call, status)
            url = call.status_callback
        if error_code:
            params["ErrorCode"] = error_code
        return await self.callback(url, params)

    def snapshot(self) -> dict[str, Any]:
        """Everything sent, for the sandbox's "Phones and inboxes" panel."""
        return {
            "messages": [m.__dict__ for m in self.messages],
            "calls": [c.__dict__ for c in self.calls],
            "replies": list(self.replies),
        }
