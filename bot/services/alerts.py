"""Alert ingest: webhook deliveries in, incidents opened, grouped, acknowledged or resolved.

`AlertIngest` runs inside the incident service's write transaction and reaches the incident
operations it shares with people (open, transition, sync the messages) through
`IncidentWrites`, which `IncidentService` implements.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import IntegrationConfig, PulseOpsConfig
from bot.domain import Acknowledge, Alert, AlertStatus, Command, Resolve, Severity
from bot.domain.incident import Status, Transition
from bot.domain.records import Incident, NewIncident
from bot.errors import Conflict, UserError
from bot.metrics import Metrics
from bot.services.transactions import after_commit, pending_callbacks
from store.incidents import AlertRepository, IncidentRepository, RepeatRecorded, TimelineRepository
from store.outbox import IdempotencyRepository


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


_REPEATS = "pulseops.repeats"
"""session.info key: incident ids of the repeats recorded in this transaction, not yet counted."""


class IncidentWrites(Protocol):
    """The incident operations alert ingest runs in its transaction (see IncidentService)."""

    async def create_in(
        self, session: AsyncSession, new: NewIncident, *, now: datetime
    ) -> Incident: ...

    async def transition_in(
        self, session: AsyncSession, incident: Incident, command: Command, now: datetime
    ) -> Transition: ...

    async def enqueue_sync(
        self, session: AsyncSession, incident_id: int, now: datetime
    ) -> None: ...


class AlertIngest:
    """Applies webhook deliveries: dedup, grouping, repeat notes and monitor-driven moves."""

    def __init__(
        self, *, incidents: IncidentWrites, config: PulseOpsConfig, metrics: Metrics
    ) -> None:
        self.incidents = incidents
        self.config = config
        self.metrics = metrics

    async def apply(
        self, session: AsyncSession, requests: Sequence[IngestRequest], *, now: datetime
    ) -> list[Delivery | UserError]:
        """Apply `requests` in the caller's transaction, each keyed one in a savepoint."""
        callbacks = pending_callbacks(session)
        repeats: list[int] = session.info.setdefault(_REPEATS, [])
        results: list[Delivery | UserError] = []
        for request in requests:
            if not request.idempotency_key:  # nothing can refuse it: no savepoint needed
                results.append(await self._ingest_delivery(session, request, now))
                continue
            mark, counted = len(callbacks), len(repeats)
            try:
                async with session.begin_nested():
                    results.append(await self._ingest_delivery(session, request, now))
            except UserError as exc:
                del callbacks[mark:]
                del repeats[counted:]
                results.append(exc)
        # one statement for every incident's repeats, however many alerts repeated
        await IncidentRepository(session).count_repeats(Counter(repeats))
        repeats.clear()
        return results

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
            after_commit(
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
                session.info[_REPEATS].append(repeat.incident_id)
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
            await self.incidents.transition_in(session, incident, Acknowledge(by=actor), now)
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
        opened = NewIncident(
            title=alert.title,
            description=alert.description,
            severity=alert.severity or Severity(self.config.incidents.default_severity),
            service_id=service_id,
            source=alert.source or integration.type,
            integration=integration.name,
            dedup_key=dedup_key,
            labels=dict(alert.labels),
            links=[{"url": link.url, "text": link.text} for link in alert.links],
            actor=f"monitor:{integration.name}",
            text=f"Triggered by alert: {alert.title}",
        )
        incident = await self.incidents.create_in(session, opened, now=now)
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
            await incidents.count_alerts(incident_id=incident.id, now=now)
            await self.incidents.enqueue_sync(session, incident.id, now)
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
        # a repeat is counted with the batch's others and re-renders nothing (no update storm)
        session.info[_REPEATS].append(incident.id)
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
        await self.incidents.transition_in(session, fresh, Resolve(by=actor), now)
        return IngestOutcome(alert.fingerprint, "resolved", incident.id)


def _dedup_key(integration: str, group_key: str) -> str:
    """`integration:group_key`, hashed when too long for the column (never truncated)."""
    key = f"{integration}:{group_key}"
    if len(key) <= 600:
        return key
    return f"{integration}:sha256:{hashlib.sha256(group_key.encode()).hexdigest()}"
