"""One gateway over Slack's Web API: intent-level methods, retries, per-method back-off.

Two pure helpers decide: `classify` (is a failure retryable, and after how long) and
`backoff_delay` (capped exponential back-off with jitter). Failures leave as our own
`SlackRetryable` / `SlackFatal` so callers (the outbox) never see slack_sdk types.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import SlackError, SlackFatal, SlackRetryable
from bot.metrics import Metrics

log = logging.getLogger(__name__)

RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def classify(
    method: str, *, status: int | None, error: str | None, retry_after: str | None = None
) -> SlackError:
    """Turn one failed call into SlackRetryable (429, 5xx, transient errors) or SlackFatal."""
    error = error or f"http_{status}"
    if status == 429:
        try:
            after = max(float(retry_after or 1), 0.0)
        except ValueError:
            after = 1.0
        return SlackRetryable(method, "ratelimited", status=status, retry_after=after)
    if (status is not None and status >= 500) or error in RETRYABLE_ERRORS:
        return SlackRetryable(method, error, status=status)
    return SlackFatal(method, error, status=status)


def backoff_delay(
    attempt: int, *, base: float = 0.5, cap: float = 60.0, rand: Callable[[], float] = random.random
) -> float:
    """Delay before retry number `attempt` (1-based): full-jitter exponential, capped."""
    ceiling = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return ceiling / 2 + rand() * ceiling / 2


class SlackGateway:
    """Intent-level Slack calls with bounded in-call retries and per-method back-off.

    Waits up to `max_inline_wait` seconds inside a call (short 429s, a 5xx blip); a longer
    wait raises SlackRetryable so the outbox reschedules and other work keeps flowing.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        metrics: Metrics | None = None,
        max_attempts: int = 3,
        max_inline_wait: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.max_inline_wait = max_inline_wait
        self._monotonic = monotonic
        self._blocked_until: dict[str, float] = {}

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call `method`; retry what can succeed soon; raise SlackRetryable / SlackFatal."""
        attempt = 0
        # chat.postMessage is limited per channel: a busy channel must not hold back a DM
        key = f"{method} {kwargs.get('channel')}" if method == "chat.postMessage" else method
        while True:
            attempt += 1
            wait = self._blocked_until.get(key, 0.0) - self._monotonic()
            if wait > self.max_inline_wait:
                raise SlackRetryable(method, "ratelimited", status=429, retry_after=wait)
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                # the typed client methods know which Slack methods take JSON and which forms
                response = await getattr(self.client, method.replace(".", "_"))(**kwargs)
                self._count(method, "ok")
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as exc:
                resp = exc.response
                err = classify(
                    method,
                    status=resp.status_code,
                    error=(resp.data or {}).get("error") if isinstance(resp.data, dict) else None,
                    retry_after=(resp.headers or {}).get("Retry-After")
                    or (resp.headers or {}).get("retry-after"),
                )
                if isinstance(err, SlackFatal) and isinstance(resp.data, dict):
                    err.response = resp.data  # type: ignore[attr-defined]
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                err = SlackRetryable(method, f"network: {type(exc).__name__}")
            self._count(method, err.error)
            if isinstance(err, SlackFatal):
                raise err
            assert isinstance(err, SlackRetryable)
            delay = err.retry_after if err.retry_after is not None else backoff_delay(attempt)
            if err.status == 429:
                self._blocked_until[key] = self._monotonic() + delay
            if attempt >= self.max_attempts or delay > self.max_inline_wait:
                err.retry_after = delay
                raise err
            if self.metrics:
                self.metrics.slack_retries.labels(method=method).inc()
            await asyncio.sleep(delay)

    def _count(self, method: str, result: str) -> None:
        if self.metrics:
            self.metrics.slack_calls.labels(method=method, result=result).inc()

    # intent-level methods -------------------------------------------------------------

    async def create_channel(self, name: str, *, private: bool = False) -> dict[str, Any]:
        data = await self.call("conversations.create", name=name, is_private=private)
        return dict(data["channel"])

    async def invite(self, channel: str, users: Sequence[str]) -> list[dict[str, Any]]:
        """Invite users; per-user failures (already in, not found) are returned, not raised."""
        if not users:
            return []
        try:
            data = await self.call(
                "conversations.invite", channel=channel, users=",".join(users), force=True
            )
        except SlackFatal as exc:
            if exc.error in {"already_in_channel", "cant_invite_self", "user_not_found"}:
                return [{"error": exc.error}]
            raise
        return list(data.get("errors", []))

    async def set_topic(self, channel: str, topic: str) -> None:
        await self.call("conversations.setTopic", channel=channel, topic=topic[:250])

    async def post_message(
        self, channel: str, *, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> tuple[str, str]:
        """Post a message; return (channel ID, ts), the two keys chat.update needs later."""
        data = await self.call(
            "chat.postMessage",
            channel=channel,
            text=text,
            blocks=blocks or [],
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(data["channel"]), str(data["ts"])

    async def update_message(
        self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]]
    ) -> None:
        await self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    async def pin(self, channel: str, ts: str) -> None:
        try:
            await self.call("pins.add", channel=channel, timestamp=ts)
        except SlackFatal as exc:
            if exc.error != "already_pinned":
                raise

    async def open_dm(self, user: str) -> str:
        """The DM channel with `user` (conversations.open), for pages."""
        data = await self.call("conversations.open", users=user)
        return str(data["channel"]["id"])

    async def set_usergroup_members(self, usergroup: str, users: Sequence[str]) -> None:
        await self.call("usergroups.users.update", usergroup=usergroup, users=",".join(users))

    async def upload_file(
        self,
        *,
        channel: str,
        filename: str,
        content: bytes,
        title: str,
        initial_comment: str | None = None,
    ) -> str:
        """Upload `content` and share it to `channel` with an optional comment; return the file ID.

        Slack's external upload flow (files.upload is retired): files.getUploadURLExternal,
        POST the raw bytes to the returned upload_url, files.completeUploadExternal. The two
        Web API calls retry like any `call`; the POST is not retried in place (a failed upload
        raises SlackRetryable for 429 / 5xx / network errors, SlackFatal otherwise) and the
        caller repeats the whole upload, since an upload URL is for one file. `initial_comment`
        is mrkdwn: escape outside text before passing it. An unknown or invisible channel is
        reported by the last step (SlackFatal channel_not_found / not_in_channel).
        """
        reserved = await self.call(
            "files.getUploadURLExternal", filename=filename, length=len(content)
        )
        file_id, upload_url = str(reserved["file_id"]), str(reserved["upload_url"])
        step = "files.upload_url"  # the POST of the bytes, as a pseudo-method in metrics/errors
        session = self.client.session
        own_session = session is None or session.closed
        if own_session:
            session = aiohttp.ClientSession()
        assert session is not None
        try:
            async with session.post(
                upload_url,
                data=content,
                timeout=aiohttp.ClientTimeout(total=self.client.timeout),
                proxy=self.client.proxy,
                ssl=self.client.ssl or True,
            ) as resp:
                status, retry_after = resp.status, resp.headers.get("Retry-After")
                body = await resp.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._count(step, "network")
            raise SlackRetryable(step, f"network: {type(exc).__name__}") from exc
        finally:
            if own_session:
                await session.close()
        if not 200 <= status < 300:
            err = classify(
                step,
                status=status,
                error=f"http_{status}",
                retry_after=retry_after,
            )
            self._count(step, err.error)
            log.warning("file upload to Slack failed: %s %s %.200s", filename, status, body)
            raise err
        self._count(step, "ok")
        await self.call(
            "files.completeUploadExternal",
            files=[{"id": file_id, "title": title}],
            channel_id=channel,
            initial_comment=initial_comment,
        )
        return file_id
