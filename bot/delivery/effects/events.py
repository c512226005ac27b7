"""The event effect: deliver one event to one sink, a signed webhook or a NATS subject.

A webhook is retried with backoff while it answers 5xx/429 or cannot be reached, and marked
dead (logged, counted in `pulseops_outbox_failed_total{kind="event"}`) when it refuses the event
for good (another 4xx) or after the outbox's longest retry window. NATS: when a JetStream
stream covers the subject the event is published there with `Nats-Msg-Id` set to the event id
(the server drops a repeat within its duplicate window) and the publish is acknowledged;
otherwise it is published on core NATS (flushed), with the same header.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import nats
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.config.events import EventSinkConfig
from bot.delivery.effects.base import Effects, GiveUp, Handler, Postpone
from bot.delivery.kinds import OutboxKind
from bot.domain.workflows import signature
from bot.outgoing import Refused, request
from bot.render import Renderer
from bot.slack.gateway import SlackGateway, backoff_delay
from store.outbox import OutboxItem
from store.session import Database

log = logging.getLogger(__name__)

RETRY_CAP = 300.0  # seconds between two attempts at most


class EventEffects(Effects):
    """Delivers `event` rows recorded by `bot.services.events`."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        renderer: Renderer,
        config: PulseOpsConfig,
        clock: Clock,
        environ: Mapping[str, str],
    ) -> None:
        super().__init__(db=db, gateway=gateway, renderer=renderer, config=config, clock=clock)
        self.environ = environ
        self._nats: dict[str, NATS] = {}
        self._nats_lock = asyncio.Lock()

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.EVENT: self._deliver}

    async def _deliver(self, item: OutboxItem) -> None:
        index = int(item.payload["sink"])
        sinks = self.config.event_sinks
        sink = sinks[index] if index < len(sinks) else None
        if sink is None or sink.url != item.payload.get("url"):
            log.warning("event sink no longer configured; event dropped", extra={"sink": index})
            return
        event: dict[str, Any] = item.payload["event"]
        body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        if sink.type == "webhook":
            await self._webhook(item, sink, event, body)
        else:
            await self._publish(item, sink, event, body)

    def _retry(self, item: OutboxItem, reason: str) -> Postpone:
        return Postpone(backoff_delay(item.attempts, cap=RETRY_CAP), reason)

    async def _webhook(
        self, item: OutboxItem, sink: EventSinkConfig, event: dict[str, Any], body: bytes
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PulseOps",
            "X-PulseOps-Timestamp": str(int(self.clock.now().timestamp())),
            "X-PulseOps-Event": str(event["type"]),
            "X-PulseOps-Delivery": str(event["id"]),
        }
        secret = (
            sink.secret.get_secret_value()
            if sink.secret is not None
            else self.environ.get(sink.secret_env or "")
        )
        if secret:
            headers["X-PulseOps-Signature"] = signature(secret, body)
        try:
            answer = await request(
                "POST",
                sink.url,
                body=body,
                headers=headers,
                seconds=sink.timeout.total_seconds(),
                allowed_hosts=self.config.allowed_hosts,
            )
        except Refused as exc:
            raise GiveUp(f"event sink {sink.url}: {exc}") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._retry(item, f"event sink {sink.url}: {type(exc).__name__}: {exc}") from None
        if 200 <= answer.status < 300:
            return
        said = f"event sink {sink.url} answered HTTP {answer.status}"
        if answer.status >= 500 or answer.status in (408, 425, 429):
            raise self._retry(item, said)
        raise GiveUp(said)

    async def _publish(
        self, item: OutboxItem, sink: EventSinkConfig, event: dict[str, Any], body: bytes
    ) -> None:
        subject = sink.nats_subject
        headers = {"Nats-Msg-Id": str(event["id"]), "PulseOps-Event": str(event["type"])}
        timeout = sink.timeout.total_seconds()
        try:
            client = await self._client(sink.url, timeout)
            js = client.jetstream(timeout=timeout)
            try:
                stream: str | None = await js.find_stream_name_by_subject(subject)
            except NotFoundError:
                stream = None
            if stream is not None:
                await js.publish(subject, body, timeout=timeout, stream=stream, headers=headers)
            else:
                await client.publish(subject, body, headers=headers)
                await client.flush(timeout=max(int(timeout), 1))
        except (NatsError, OSError, TimeoutError) as exc:
            await self._forget(sink.url)
            raise self._retry(item, f"NATS {sink.url}: {type(exc).__name__}: {exc}") from None

    async def _client(self, url: str, seconds: float) -> NATS:
        async with self._nats_lock:
            client = self._nats.get(url)
            if client is not None and client.is_connected:
                return client
            client = await nats.connect(
                url,
                connect_timeout=max(int(seconds), 1),
                allow_reconnect=False,
                max_reconnect_attempts=0,
                name="pulseops",
            )
            self._nats[url] = client
            return client

    async def _forget(self, url: str) -> None:
        async with self._nats_lock:
            client = self._nats.pop(url, None)
        if client is not None:
            try:
                await client.close()
            except Exception:  # closing a broken connection: nothing more to do
                log.debug("closing a NATS connection failed", exc_info=True)

    async def close(self) -> None:
        """Close the NATS connections (on shutdown)."""
        for url in list(self._nats):
            await self._forget(url)
