"""Incident service: alerts in, state changes out, each with its timeline and outbox rows.

Every public method runs one write transaction: the incident, its timeline and the Slack
effects it needs (outbox rows) commit together, then the outbox worker is woken.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import IntegrationConfig, PulseOpsConfig
from bot.domain import Acknowledge, Alert, AlertStatus, Command, Resolve, Severity, apply
from bot.domain.incident import Effect, InvalidTransition, Status, Transition
from bot.domain.records import AlertRecord, Incident, TimelineEvent
from bot.errors import Conflict, UserError
from bot.metrics import Metrics
from bot.services.escalation import EscalationService
from store.repositories import (
    AlertRepository,
    IdempotencyRepository,
    IncidentFilter,
    IncidentRepository,
    OutboxRepository,
    RepeatRecorded,
    TimelineRepository,
)
from store.session import Database, is_transient, is_unique_violation

log = logging.getLogger(__name__)
T = TypeVar("T")

ANNOUNCE = "announce"
OPEN_CHANNEL = "open_channel"
SYNC_MESSAGES = "sync_messages"


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to one alert (created, grouped, deduplicated, acknowledged, resolved…)."""

    fingerprint: str
    outcome: str
    incident_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["incident"] = f"INC-{self.incident_id}" if self.incident_id else None
        return data


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One webhook delivery to apply: its parsed alerts and its idempotency key."""

    integration: IntegrationConfig
    alerts: Sequence[Alert]
    idempotency_key: str | None
    body_sha256: str

    @classmethod
    def of(
        cls,
        integration: IntegrationConfig,
        alerts: Sequence[Alert],
        *,
        idempotency_key: str | None,
        body: bytes,
    ) -> IngestRequest:
        return cls(integration, alerts, idempotency_key, hashlib.sha256(body).hexdigest())


@dataclass(frozen=True, slots=True)
class Delivery:
    """The answer to one webhook delivery (stored for Idempotency-Key replays)."""

    status: int
    body: dict[str, Any]


class IncidentService:
    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        escalations: EscalationService | None = None,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.escalations = escalations
        self.on_commit = on_commit

    # ---- transactions -------------------------------------------------------------------

    async def _in_write(self, work: Callable[[AsyncSession], Awaitable[T]], *, tries: int = 5) -> T:
        """Run `work` in a write transaction, retrying races (unique violations, lock timeouts)."""
        for attempt in range(1, tries + 1):
            try:
                async with self.db.write() as session:
                    session.info[_AFTER_COMMIT] = []
                    result = await work(session)
                for callback in session.info[_AFTER_COMMIT]:
                    callback()
                self.on_commit()
                return result
            except _Retry:
                if attempt == tries:
                    raise Conflict(
                        "the incident changed too often concurrently; try again"
                    ) from None
            except DBAPIError as exc:
                if attempt == tries or not (is_unique_violation(exc) or is_transient(exc)):
                    raise
                log.info("retrying transaction after %s", type(exc.orig).__name__)
        raise AssertionError("unreachable")

    # ---- alerts -------------------------------------------------------------------------

    async def ingest(
        self,
        *,
        integration: IntegrationConfig,
        alerts: Sequence[Alert],
        idempotency_key: str | None = None,
        body: bytes = b"",
    ) -> Delivery:
        """Apply one delivery's alerts in its own transaction (see `ingest_many`)."""
        request = IngestRequest.of(integration, alerts, idempotency_key=idempotency_key, body=body)
        (result,) = await self.ingest_many([request])
        if isinstance(result, UserError):
            raise result
        return result

    async def ingest_many(self, requests: Sequence[IngestRequest]) -> list[Delivery | UserError]:
        """Apply several deliveries in ONE write transaction (group commit).

        A delivery with an Idempotency-Key runs in a savepoint: one refused (the key reused
        with another body) changes nothing and gets its UserError back; the others commit
        together. Without a key nothing can refuse a delivery.
        """

        async def work(session: AsyncSession) -> list[Delivery | UserError]:
            now = self.clock.now()
            callbacks: list[Callable[[], None]] = session.info[_AFTER_COMMIT]
            results: list[Delivery | UserError] = []
            for request in requests:
                if not request.idempotency_key:  # nothing can refuse it: no savepoint needed
                    results.append(await self._ingest_delivery(session, request, now))
                    continue
                mark = len(callbacks)
                try:
                    async with session.begin_nested():
                        results.append(await self._ingest_delivery(session, request, now))
                except UserError as exc:
                    del callbacks[mark:]
                    results.append(exc)
            return results

        return await self._in_write(work)

    async def _ingest_delivery(
        self, session: AsyncSession, request: IngestRequest, now: datetime
    ) -> Delivery:
        integration = request.integration
        keys = IdempotencyRepository(session)
        if request.idempotency_key:
            seen = await keys.get(
                integration=integration.name, key=request.idempotency_key, now=now
            )
            if seen is not None:
                if seen.body_sha256 != request.body_sha256:
                    raise Conflict(
                        "Idempotency-Key was already used with a different body",
                        fields={"Idempotency-Key": "reused with a different body"},
                    )
                return Delivery(status=seen.status_code, body={**seen.response, "replayed": True})
        outcomes = [await self._ingest_one(session, integration, a, now) for a in request.alerts]
        delivery = Delivery(
            status=202,
            body={
                "status": "accepted",
                "alerts": len(outcomes),
                "results": [o.to_json() for o in outcomes],
            },
        )
        if request.idempotency_key:
            await keys.put(
                integration=integration.name,
                key=request.idempotency_key,
                body_sha256=request.body_sha256,
                status_code=delivery.status,
                response=delivery.body,
                now=now,
                expires_at=now + self.config.incidents.idempotency_ttl,
            )
        counter = self.metrics.alerts_received
        for outcome in outcomes:
            _after_commit(
                session,
                counter.labels(integration=integration.name, outcome=outcome.outcome).inc,
            )
        return delivery

    async def _ingest_one(
        self, session: AsyncSession, integration: IntegrationConfig, alert: Alert, now: datetime
    ) -> IngestOutcome:
        incidents = IncidentRepository(session)
        dedup_key = _dedup_key(integration.name, alert.group_key)
        if alert.status is AlertStatus.FIRING:
            repeat = await AlertRepository(session).record_repeat(
                dedup_key=dedup_key, fingerprint=alert.fingerprint, now=now
            )
            if repeat is not None:
                await self._note_repeat(session, integration, alert, repeat, now)
                return IngestOutcome(alert.fingerprint, "deduplicated", repeat.incident_id)
        incident = await incidents.get_open_by_dedup_key(dedup_key=dedup_key)
        if alert.status is AlertStatus.FIRING:
            if incident is None:
                incident = await self._open_from_alert(session, integration, alert, dedup_key, now)
                return IngestOutcome(alert.fingerprint, "created", incident.id)
            return await self._add_to_incident(session, integration, incident, alert, now)
        if incident is None:
            return IngestOutcome(alert.fingerprint, "ignored")
        actor = f"monitor:{integration.name}"
        if alert.status is AlertStatus.ACKNOWLEDGED:
            if incident.status is not Status.TRIGGERED:
                return IngestOutcome(alert.fingerprint, "ignored", incident.id)
            await self._transition_in(session, incident, Acknowledge(by=actor), now)
            return IngestOutcome(alert.fingerprint, "acknowledged", incident.id)
        return await self._resolve_alert(session, integration, incident, alert, now)

    async def _open_from_alert(
        self,
        session: AsyncSession,
        integration: IntegrationConfig,
        alert: Alert,
        dedup_key: str,
        now: datetime,
    ) -> Incident:
        service_id = alert.service if self.config.service(alert.service or "") else None
        service_id = service_id or integration.service
        incident = await self._create(
            session,
            now=now,
            title=alert.title,
            description=alert.description,
            severity=alert.severity or Severity(self.config.incidents.default_severity),
            service_id=service_id,
            source=alert.source or integration.type,
            integration=integration.name,
            dedup_key=dedup_key,
            created_by=None,
            labels=dict(alert.labels),
            links=[{"url": link.url, "text": link.text} for link in alert.links],
            actor=f"monitor:{integration.name}",
            text=f"Triggered by alert: {alert.title}",
        )
        await AlertRepository(session).add_first(
            incident_id=incident.id, integration=integration.name, alert=alert, now=now
        )
        return incident

    async def _note_repeat(
        self,
        session: AsyncSession,
        integration: IntegrationConfig,
        alert: Alert,
        repeat: RepeatRecorded,
        now: datetime,
    ) -> None:
        if not self._note_due(repeat.last_note_at, now):
            return
        await AlertRepository(session).set_last_note(alert_id=repeat.alert_id, at=now)
        await self._repeat_note(
            session, integration, alert, repeat.incident_id, repeat.occurrences, now, refired=False
        )

    def _note_due(self, last_note_at: datetime | None, now: datetime) -> bool:
        """At most one "alert repeated" timeline note per alert per repeat_note_interval."""
        interval = self.config.incidents.repeat_note_interval
        return last_note_at is None or now - last_note_at >= interval

    async def _repeat_note(
        self,
        session: AsyncSession,
        integration: IntegrationConfig,
        alert: Alert,
        incident_id: int,
        occurrences: int,
        now: datetime,
        *,
        refired: bool,
    ) -> None:
        await TimelineRepository(session).add(
            incident_id=incident_id,
            at=now,
            kind="alert_refired" if refired else "alert_repeated",
            actor=f"monitor:{integration.name}",
            text=(
                f"Alert fired again: {alert.title}"
                if refired
                else f"Alert repeated ({occurrences} notifications so far): {alert.title}"
            ),
            data={"fingerprint": alert.fingerprint, "occurrences": occurrences},
        )

    async def _add_to_incident(
        self,
        session: AsyncSession,
        integration: IntegrationConfig,
        incident: Incident,
        alert: Alert,
        now: datetime,
    ) -> IngestOutcome:
        alerts = AlertRepository(session)
        timeline = TimelineRepository(session)
        incidents = IncidentRepository(session)
        actor = f"monitor:{integration.name}"
        row = await alerts.get(incident_id=incident.id, fingerprint=alert.fingerprint)
        if row is None:
            await alerts.add_first(
                incident_id=incident.id, integration=integration.name, alert=alert, now=now
            )
            await timeline.add(
                incident_id=incident.id,
                at=now,
                kind="alert_added",
                actor=actor,
                text=f"Alert joined the incident: {alert.title}",
                data={"fingerprint": alert.fingerprint},
            )
            await incidents.count_alerts(incident_id=incident.id, now=now, rerender=True)
            await self._enqueue_sync(session, incident.id, now)
            return IngestOutcome(alert.fingerprint, "grouped", incident.id)
        refired = row.status == AlertStatus.RESOLVED.value
        row.status = alert.status.value
        row.occurrences += 1
        row.last_seen_at = now
        row.resolved_at = None
        if refired or self._note_due(row.last_note_at, now):
            row.last_note_at = now
            await self._repeat_note(
                session, integration, alert, incident.id, row.occurrences, now, refired=refired
            )
        # a repeat is counted but does not re-render the Slack messages (no update storm)
        await incidents.count_alerts(incident_id=incident.id, now=now, rerender=False)
        return IngestOutcome(alert.fingerprint, "deduplicated", incident.id)

    async def _resolve_alert(
        self,
        session: AsyncSession,
        integration: IntegrationConfig,
        incident: Incident,
        alert: Alert,
        now: datetime,
    ) -> IngestOutcome:
        alerts = AlertRepository(session)
        row = await alerts.get(incident_id=incident.id, fingerprint=alert.fingerprint)
        if row is None:
            return IngestOutcome(alert.fingerprint, "ignored", incident.id)
        actor = f"monitor:{integration.name}"
        if row.status != AlertStatus.RESOLVED.value:
            row.status = AlertStatus.RESOLVED.value
            row.resolved_at = now
            row.last_seen_at = now
            await TimelineRepository(session).add(
                incident_id=incident.id,
                at=now,
                kind="alert_resolved",
                actor=actor,
                text=f"Monitor reports resolved: {alert.title}",
                data={"fingerprint": alert.fingerprint},
            )
            await session.flush()
        if await alerts.count_firing(incident_id=incident.id) > 0:
            return IngestOutcome(alert.fingerprint, "alert_resolved", incident.id)
        if not incident.auto_resolve:
            return IngestOutcome(alert.fingerprint, "alert_resolved", incident.id)
        fresh = await IncidentRepository(session).get(incident_id=incident.id)
        await self._transition_in(session, fresh, Resolve(by=actor), now)
        return IngestOutcome(alert.fingerprint, "resolved", incident.id)

    # ---- people -------------------------------------------------------------------------

    async def declare(
        self,
        *,
        title: str,
        severity: Severity,
        service_id: str | None,
        description: str,
        by: str,
    ) -> Incident:
        """Open an incident declared by a person (no alert behind it)."""

        async def work(session: AsyncSession) -> Incident:
            return await self._create(
                session,
                now=self.clock.now(),
                title=title,
                description=description,
                severity=severity,
                service_id=service_id,
                source="slack",
                integration=None,
                dedup_key=None,
                created_by=by,
                labels={},
                links=[],
                actor=by,
                text=f"Declared: {title}",
                invite=[by],
            )

        return await self._in_write(work)

    async def transition(self, *, incident_id: int, command: Command) -> Transition:
        """Apply a person's command; exactly one of several concurrent equal commands wins.

        Raises InvalidTransition (the move is illegal now) or IncidentNotFound.
        """

        async def work(session: AsyncSession) -> Transition:
            incident = await IncidentRepository(session).get(incident_id=incident_id)
            return await self._transition_in(session, incident, command, self.clock.now())

        return await self._in_write(work)

    async def _transition_in(
        self, session: AsyncSession, incident: Incident, command: Command, now: datetime
    ) -> Transition:
        transition = apply(incident.state, command, now=now)
        ok = await IncidentRepository(session).compare_and_set_state(
            incident_id=incident.id,
            expected_version=incident.version,
            state=transition.after,
            now=now,
        )
        if not ok:
            raise _Retry()
        if Effect.TIMELINE in transition.effects:
            await TimelineRepository(session).add(
                incident_id=incident.id,
                at=now,
                kind=transition.event_kind,
                actor=command.by,
                text=transition.event_kind.capitalize(),
                data={"from": transition.before.status.value, "to": transition.after.status.value},
            )
        if Effect.UPDATE_MESSAGES in transition.effects:
            await self._enqueue_sync(session, incident.id, now)
        if self.escalations is not None:
            if Effect.STOP_ESCALATION in transition.effects:
                await self.escalations.stop(session, incident.id, now)
            if Effect.START_ESCALATION in transition.effects:
                await self.escalations.start(session, incident, now)
        _after_commit(
            session, self.metrics.transitions.labels(status=transition.after.status.value).inc
        )
        return transition

    # ---- shared -------------------------------------------------------------------------

    async def _create(
        self,
        session: AsyncSession,
        *,
        now: datetime,
        title: str,
        description: str,
        severity: Severity,
        service_id: str | None,
        source: str,
        integration: str | None,
        dedup_key: str | None,
        created_by: str | None,
        labels: dict[str, str],
        links: list[dict[str, str]],
        actor: str,
        text: str,
        invite: Sequence[str] = (),
    ) -> Incident:
        service = self.config.service(service_id) if service_id else None
        team_id = service.team if service else None
        incident = await IncidentRepository(session).add(
            title=title[:1000],
            description=description,
            status=Status.TRIGGERED.value,
            severity=severity.value,
            service_id=service_id,
            team_id=team_id,
            source=source,
            integration=integration,
            dedup_key=dedup_key,
            auto_resolve=service.auto_resolve if service else True,
            created_by=created_by,
            alert_count=1 if integration else 0,
            labels=labels,
            links=links,
            triggered_at=now,
            updated_at=now,
        )
        await TimelineRepository(session).add(
            incident_id=incident.id,
            at=now,
            kind="triggered",
            actor=actor,
            text=text,
            data={"severity": severity.value, "service": service_id},
        )
        outbox = OutboxRepository(session)
        # the announcement first: it pages people even when channel creation is rate limited
        await outbox.enqueue(kind=ANNOUNCE, incident_id=incident.id, now=now)
        await outbox.enqueue(
            kind=OPEN_CHANNEL, incident_id=incident.id, now=now, payload={"invite": list(invite)}
        )
        if self.escalations is not None:
            await self.escalations.start(session, incident, now)
        _after_commit(
            session,
            self.metrics.incidents_opened.labels(
                service=service_id or "none", severity=severity.value
            ).inc,
        )
        return incident

    async def _enqueue_sync(self, session: AsyncSession, incident_id: int, now: datetime) -> None:
        await OutboxRepository(session).enqueue(
            kind=SYNC_MESSAGES, incident_id=incident_id, now=now
        )

    # ---- queries ------------------------------------------------------------------------

    async def get(self, *, incident_id: int) -> Incident:
        async with self.db.read() as session:
            return await IncidentRepository(session).get(incident_id=incident_id)

    async def get_by_channel(self, *, channel_id: str) -> Incident | None:
        async with self.db.read() as session:
            return await IncidentRepository(session).get_by_channel(channel_id=channel_id)

    async def list_incidents(
        self, *, filters: IncidentFilter, limit: int = 50, offset: int = 0
    ) -> tuple[list[Incident], int]:
        async with self.db.read() as session:
            return await IncidentRepository(session).list(
                filters=filters, limit=limit, offset=offset
            )

    async def details(
        self, *, incident_id: int
    ) -> tuple[Incident, list[TimelineEvent], list[AlertRecord]]:
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=incident_id)
            events = await TimelineRepository(session).list(incident_id=incident_id)
            alerts = await AlertRepository(session).list(incident_id=incident_id)
        return incident, events, alerts

    async def purge_idempotency_keys(self) -> int:
        async with self.db.write() as session:
            return await IdempotencyRepository(session).purge(now=self.clock.now())


def _dedup_key(integration: str, group_key: str) -> str:
    """`integration:group_key`, hashed when too long for the column (never truncated)."""
    key = f"{integration}:{group_key}"
    if len(key) <= 600:
        return key
    return f"{integration}:sha256:{hashlib.sha256(group_key.encode()).hexdigest()}"


_AFTER_COMMIT = "pulseops_after_commit"


def _after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the transaction commits (metrics count only what really happened)."""
    session.info[_AFTER_COMMIT].append(callback)


class _Retry(Exception):
    """A compare-and-set lost a race; the transaction is retried from a fresh read."""


__all__ = ["Delivery", "IncidentService", "IngestOutcome", "InvalidTransition"]
