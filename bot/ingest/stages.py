"""The alert pipeline's stages, in the order `build_pipeline` runs them.

Receiving (before any write): authenticate → bound the body → parse it.
Per delivery, in its transaction: idempotency.
Per alert, in that transaction: dedup → mute → route → group. An alert stage returns a
`Decision` to stop there, or None to pass the alert on; the last stage always decides.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from pydantic import ValidationError

from bot.config import IntegrationConfig, PulseOpsConfig
from bot.domain.alerts import Alert, AlertStatus
from bot.domain.incident import Severity, Status
from bot.domain.records import AlertRecord, Incident, NewIncident
from bot.domain.routing import Directory, Ownership, route
from bot.errors import AuthError, Conflict, NotFound, PulseOpsError, UserError
from bot.ingest.decisions import (
    AcknowledgeIncident,
    Decision,
    GroupInto,
    Ignore,
    Open,
    Repeat,
    ResolveAlert,
)
from bot.ingest.parsers import Parser, validation_problems
from store.incidents import AlertRepository, IncidentRepository
from store.outbox import IdempotencyRepository
from store.unit_of_work import UnitOfWork

MAX_IDEMPOTENCY_KEY = 255
MAX_DEDUP_KEY = 600  # the column's width; longer keys are hashed, never truncated

BodyReader = Callable[[int], Awaitable[bytes]]
"""Reads the request body, raising PayloadTooLarge past the given number of bytes."""


# ---- receiving ----------------------------------------------------------------------------


class Rejected(Exception):
    """A receiving stage refused the delivery; nothing was written.

    `reason` labels the rejection metric; `error` is what the sender is answered.
    """

    def __init__(self, reason: str, error: PulseOpsError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


@dataclass(frozen=True, slots=True)
class Received:
    """One webhook delivery as the receiving stages fill it in."""

    name: str  # the integration named in the URL
    headers: Mapping[str, str]
    read: BodyReader
    now: datetime
    integration: IntegrationConfig | None = None
    body: bytes = b""
    alerts: tuple[Alert, ...] = ()


class ReceiveStage(Protocol):
    async def __call__(self, received: Received) -> Received: ...


class Authenticate:
    """The integration named in the URL exists and the bearer token is its own."""

    def __init__(self, config: PulseOpsConfig, tokens: Mapping[str, str]) -> None:
        self.config = config
        self.tokens = tokens

    async def __call__(self, received: Received) -> Received:
        integration = self.config.integration(received.name)
        if integration is None:
            raise Rejected(
                "not_found",
                NotFound(
                    f"no integration named {received.name!r}", fields={"integration": "unknown"}
                ),
            )
        scheme, _, token = received.headers.get("Authorization", "").partition(" ")
        expected = self.tokens[integration.name]
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
            raise Rejected(
                "unauthorized",
                AuthError("missing or wrong bearer token in the Authorization header"),
            )
        return replace(received, integration=integration)


class BoundBody:
    """Read the body, refusing anything over `limit` bytes before it is all in memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def __call__(self, received: Received) -> Received:
        try:
            body = await received.read(self.limit)
        except UserError as exc:
            raise Rejected("too_large", exc) from None
        return replace(received, body=body)


class Parse:
    """JSON, then the integration type's parser: one `Alert` per alert in the body."""

    def __init__(self, parsers: Mapping[str, Parser]) -> None:
        self.parsers = parsers

    async def __call__(self, received: Received) -> Received:
        assert received.integration is not None, "Authenticate runs first"
        kind = received.integration.type
        try:
            document = json.loads(received.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Rejected(
                "bad_json",
                UserError(f"body is not valid JSON: {exc}", fields={"body": "invalid JSON"}),
            ) from None
        try:
            alerts = self.parsers[kind](document, received.now)
        except ValidationError as exc:
            raise Rejected(
                "invalid",
                UserError(f"body is not a valid {kind} payload", fields=validation_problems(exc)),
            ) from None
        return replace(received, alerts=tuple(alerts))


# ---- per delivery -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One received delivery to apply: its alerts and its idempotency key."""

    integration: IntegrationConfig
    alerts: tuple[Alert, ...]
    idempotency_key: str | None
    body_sha256: str

    @classmethod
    def of(
        cls,
        integration: IntegrationConfig,
        alerts: tuple[Alert, ...],
        *,
        idempotency_key: str | None,
        body: bytes,
    ) -> IngestRequest:
        return cls(integration, alerts, idempotency_key, hashlib.sha256(body).hexdigest())


@dataclass(frozen=True, slots=True)
class Delivery:
    """The answer to one webhook delivery (stored for Idempotency-Key replays)."""

    status: int
    body: dict[str, object]


class DeliveryStage(Protocol):
    async def __call__(
        self,
        uow: UnitOfWork,
        request: IngestRequest,
        now: datetime,
        apply: Callable[[], Awaitable[Delivery]],
    ) -> Delivery: ...


class Idempotency:
    """A delivery whose Idempotency-Key was seen gets the first answer again, applying nothing."""

    def __init__(self, ttl: timedelta) -> None:
        self.ttl = ttl

    async def __call__(
        self,
        uow: UnitOfWork,
        request: IngestRequest,
        now: datetime,
        apply: Callable[[], Awaitable[Delivery]],
    ) -> Delivery:
        key = request.idempotency_key
        if key is None:
            return await apply()
        keys = IdempotencyRepository(uow.session)
        integration = request.integration.name
        seen = await keys.get(integration=integration, key=key, now=now)
        if seen is not None:
            if seen.body_sha256 != request.body_sha256:
                raise Conflict(
                    "Idempotency-Key was already used with a different body",
                    fields={"Idempotency-Key": "reused with a different body"},
                )
            return Delivery(status=seen.status, body={**seen.body, "replayed": True})
        delivery = await apply()
        await keys.put(
            integration=integration,
            key=key,
            body_sha256=request.body_sha256,
            status_code=delivery.status,
            response=dict(delivery.body),
            now=now,
            expires_at=now + self.ttl,
        )
        return delivery


# ---- per alert ----------------------------------------------------------------------------


@dataclass(slots=True)
class AlertContext:
    """One alert on its way through the alert stages; stages note what they looked up."""

    uow: UnitOfWork
    integration: IntegrationConfig
    alert: Alert
    now: datetime
    dedup_key: str
    incident: Incident | None = None  # the open incident with this dedup key
    existing: AlertRecord | None = None  # this alert as stored on that incident
    ownership: Ownership | None = None  # where a new incident would belong

    @property
    def actor(self) -> str:
        return f"monitor:{self.integration.name}"


class AlertStage(Protocol):
    async def __call__(self, ctx: AlertContext) -> Decision | None: ...


def dedup_key(integration: str, group_key: str) -> str:
    """`integration:group_key`, hashed when too long for the column (never truncated)."""
    key = f"{integration}:{group_key}"
    if len(key) <= MAX_DEDUP_KEY:
        return key
    return f"{integration}:sha256:{hashlib.sha256(group_key.encode()).hexdigest()}"


class Dedup:
    """The same alert again on its open incident is a repeat.

    First the storm fast path: one prebuilt UPDATE counts a firing repeat. Otherwise it looks
    up the open incident of the alert's group and the alert on it, for the stages after.
    """

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        alerts = AlertRepository(ctx.uow.session)
        firing = ctx.alert.status is AlertStatus.FIRING
        if firing:
            counted = await alerts.record_repeat(
                dedup_key=ctx.dedup_key, fingerprint=ctx.alert.fingerprint, now=ctx.now
            )
            if counted is not None:
                return Repeat(
                    alert=ctx.alert,
                    incident_id=counted.incident_id,
                    alert_id=counted.alert_id,
                    occurrences=counted.occurrences,
                    last_note_at=counted.last_note_at,
                    counted=True,
                )
        incidents = IncidentRepository(ctx.uow.session)
        ctx.incident = await incidents.get_open_by_dedup_key(dedup_key=ctx.dedup_key)
        if ctx.incident is None:
            return None
        ctx.existing = await alerts.get(
            incident_id=ctx.incident.id, fingerprint=ctx.alert.fingerprint
        )
        if firing and ctx.existing is not None:
            return Repeat(
                alert=ctx.alert,
                incident_id=ctx.incident.id,
                alert_id=ctx.existing.id,
                occurrences=ctx.existing.occurrences,
                last_note_at=ctx.existing.last_note_at,
                counted=False,
                refired=ctx.existing.status == AlertStatus.RESOLVED.value,
            )
        return None


class Mute:
    """Silences and maintenance windows hold alerts here (none are configured yet)."""

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        return None


class Route:
    """Decide where a new incident belongs: the alert's service, else the integration's."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    async def __call__(self, ctx: AlertContext) -> Decision | None:
        if ctx.alert.status is AlertStatus.FIRING and ctx.incident is None:
            ctx.ownership = route(
                self.directory,
                service_id=ctx.alert.service,
                fallback_service=ctx.integration.service,
            )
        return None


class Group:
    """The last word: open an incident, join the open one, or move it as the monitor says."""

    def __init__(self, default_severity: Severity) -> None:
        self.default_severity = default_severity

    async def __call__(self, ctx: AlertContext) -> Decision:
        alert, incident = ctx.alert, ctx.incident
        if alert.status is AlertStatus.FIRING:
            if incident is not None:
                return GroupInto(alert=alert, incident=incident)
            return Open(alert=alert, new=self._new_incident(ctx))
        if incident is None:
            return Ignore(alert=alert)
        if alert.status is AlertStatus.ACKNOWLEDGED:
            if incident.status is not Status.TRIGGERED:
                return Ignore(alert=alert, incident_id=incident.id)
            return AcknowledgeIncident(alert=alert, incident=incident)
        if ctx.existing is None:
            return Ignore(alert=alert, incident_id=incident.id)
        return ResolveAlert(
            alert=alert,
            incident=incident,
            alert_id=ctx.existing.id,
            already_resolved=ctx.existing.status == AlertStatus.RESOLVED.value,
        )

    def _new_incident(self, ctx: AlertContext) -> NewIncident:
        alert = ctx.alert
        ownership = ctx.ownership or Ownership(None, None, None)
        return NewIncident(
            title=alert.title,
            description=alert.description,
            severity=alert.severity or self.default_severity,
            service_id=ownership.service_id,
            source=alert.source or ctx.integration.type,
            integration=ctx.integration.name,
            dedup_key=ctx.dedup_key,
            labels=dict(alert.labels),
            links=[{"url": link.url, "text": link.text} for link in alert.links],
            actor=ctx.actor,
            text=f"Triggered by alert: {alert.title}",
        )
