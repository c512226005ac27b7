"""The providers notifications go through: SMTP (aiosmtplib), Twilio's REST API (aiohttp)
and Apprise (its blocking client in a thread, with a timeout).

Each `send` returns the provider's id for the message (or None) and raises NotifyRetryable
(an outage, a timeout, a 5xx or 429) or NotifyFatal (refused for good). Secrets are held
here and never logged; errors carry the provider's reason only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import aiosmtplib

from bot.config.paging import SmtpConfig, TwilioConfig
from bot.errors import NotifyFatal, NotifyRetryable

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024
TWILIO_API_VERSION = "2010-04-01"


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str


class SmtpSender:
    """Sends e-mail through the configured SMTP server."""

    def __init__(self, config: SmtpConfig, *, username: str | None, password: str | None) -> None:
        self.config = config
        self._username = username
        self._password = password

    async def send(self, mail: Mail) -> str | None:
        message = EmailMessage()
        message["From"] = self.config.from_
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        try:
            await aiosmtplib.send(
                message,
                hostname=self.config.host,
                port=self.config.port,
                username=self._username,
                password=self._password,
                start_tls=self.config.starttls,
                use_tls=self.config.tls,
                timeout=self.config.timeout.total_seconds(),
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise NotifyFatal(f"SMTP login refused: {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = ", ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise NotifyFatal(f"SMTP refused the address: {codes}") from None
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.code} {exc.message}"
            if 400 <= exc.code < 500:
                raise NotifyRetryable(reason) from None
            raise NotifyFatal(reason) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise NotifyRetryable(f"SMTP server unreachable: {type(exc).__name__}") from None
        return str(message["Message-ID"]) if message["Message-ID"] else None


class TwilioClient:
    """Twilio's REST API: Messages and Calls, with the account's basic auth."""

    def __init__(self, config: TwilioConfig, *, account_sid: str, auth_token: str) -> None:
        self.config = config
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            basic = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Basic {basic}"},
                timeout=aiohttp.ClientTimeout(total=self.config.timeout.total_seconds()),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send_sms(self, *, to: str, body: str, status_callback: str | None) -> str:
        form = {"To": to, "From": self.config.from_, "Body": body}
        if status_callback:
            form["StatusCallback"] = status_callback
        return await self._create("Messages", form)

    async def call(
        self, *, to: str, url: str | None, status_callback: str | None, twiml: str | None = None
    ) -> str:
        """Place a call that fetches its TwiML from `url` (or says the given `twiml`)."""
        form = {"To": to, "From": self.config.from_}
        if url is not None:
            form.update(Url=url, Method="POST")
        if twiml is not None:
            form["Twiml"] = twiml
        if status_callback:
            form["StatusCallback"] = status_callback
        return await self._create("Calls", form)

    async def sent_to(self, resource: str, *, to: str, since: datetime) -> list[dict[str, Any]]:
        """The account's Messages or Calls to `to` created since `since` (newest first), to
        find what an interrupted delivery sent before sending it again."""
        key = "messages" if resource == "Messages" else "calls"
        day = f"{'DateSent' if key == 'messages' else 'StartTime'}>"
        url = (
            f"{self.config.api_url}/{TWILIO_API_VERSION}/Accounts/"
            f"{self.account_sid}/{resource}.json"
        )
        params = {"To": to, "From": self.config.from_, day: since.strftime("%Y-%m-%d")}
        try:
            async with self._client().get(url, params=params) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES * 16)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NotifyRetryable(f"Twilio unreachable: {type(exc).__name__}") from None
        if status != 200:
            raise NotifyRetryable(f"Twilio {status} listing {resource}")
        try:
            items = json.loads(raw).get(key, [])
        except (ValueError, AttributeError):
            raise NotifyRetryable(f"Twilio's {resource} list was unreadable") from None
        found = []
        for item in items if isinstance(items, list) else []:
            try:
                created = parsedate_to_datetime(str(item.get("date_created")))
            except (TypeError, ValueError):
                continue
            if created >= since.replace(microsecond=0):
                found.append(item)
        return found

    async def _create(self, resource: str, form: dict[str, str]) -> str:
        url = (
            f"{self.config.api_url}/{TWILIO_API_VERSION}/Accounts/"
            f"{self.account_sid}/{resource}.json"
        )
        try:
            async with self._client().post(url, data=form) as response:
                raw = await response.content.read(MAX_ANSWER_BYTES)
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as exc:  # never reached Twilio
            raise NotifyRetryable(f"Twilio unreachable: {type(exc).__name__}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:  # Twilio may have acted on it
            reason = f"Twilio's answer was lost: {type(exc).__name__}"
            raise NotifyRetryable(reason, unsure=True) from None
        body: dict[str, Any] = {}
        try:
            parsed = json.loads(raw or b"{}")
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            pass
        if status in (200, 201) and isinstance(body.get("sid"), str):
            return str(body["sid"])
        reason = f"Twilio {status}"
        if body.get("code") or body.get("message"):
            reason += f" (error {body.get('code')}: {str(body.get('message'))[:300]})"
        if status == 429 or status >= 500:
            wait = float(retry_after) if retry_after and retry_after.isdigit() else None
            raise NotifyRetryable(reason, retry_after=wait)
        raise NotifyFatal(reason)


class AppriseSender:
    """Any Apprise URL (ntfy, Pushover, Telegram, Teams, Discord, Matrix, …)."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout

    async def send(self, *, url: str, title: str, body: str) -> None:
        try:
            ok, reason = await asyncio.wait_for(
                asyncio.to_thread(_apprise_notify, url, title, body), self.timeout
            )
        except TimeoutError:
            raise NotifyRetryable(f"Apprise did not finish within {self.timeout:g}s") from None
        if ok is None:
            raise NotifyFatal(reason)
        if not ok:
            raise NotifyRetryable(reason)


def _apprise_notify(url: str, title: str, body: str) -> tuple[bool | None, str]:
    """Blocking: notify one Apprise URL; (None, why) when the URL is not understood."""
    import apprise  # imported here: it loads every plugin, which takes a moment

    client = apprise.Apprise()
    if not client.add(url):
        return None, "Apprise does not support this URL"
    problems: list[str] = []

    def keep(entry: Any, _service: Any = None) -> None:
        if str(getattr(entry, "level", "")).upper() in ("WARNING", "ERROR"):
            problems.append(str(getattr(entry, "message", ""))[:300])

    result = client.notify(body=body, title=title, log_callback=keep)
    if result:
        return True, ""
    return False, "Apprise: " + (problems[-1] if problems else "the service did not accept it")
