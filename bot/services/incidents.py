"""Incident service: alerts in, state changes out, each with its timeline and outbox rows.

Every public method runs one write transaction: the incident, its timeline and the Slack
effects it needs (outbox rows) commit together, then the outbox worker is woken. Applying
alerts is delegated to `bot.services.alerts`; the `*_in` methods and `enqueue_sync` run in a
caller's transaction (alert ingest uses them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import IntegrationConfig, PulseOpsConfig
from bot.delivery.kinds import OutboxKind
from bot.domain import Alert, Command, Severity, apply
from bot.domain.incident import Effect, InvalidTransition, Status, Transition
from bot.domain.records import AlertRecord, Incident, NewIncident, TimelineEvent
from bot.errors import UserError
from bot.metrics import Metrics
from bot.services.alerts import AlertIngest, Delivery, IngestOutcome, IngestRequest
from bot.services.escalation import EscalationService
from bot.services.transactions import Retry, after_commit, in_write
from store.incidents import AlertRepository, IncidentFilter, IncidentRepository, TimelineRepository
from store.outbox import IdempotencyRepository, OutboxRepository
from store.session import Database

T = TypeVar("T")


class IncidentService:
    """Opens incidents, applies alerts and commands to them, and answers queries."""

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
        self._alerts = AlertIngest(incidents=self, config=config, metrics=metrics)

    # ---- transactions -------------------------------------------------------------------

    async def _in_write(self, work: Callable[[AsyncSession], Awaitable[T]], *, tries: int = 5) -> T:
        """Run `work` in a write transaction, retrying races (unique violations, lock timeouts)."""
        return await in_write(self.db, work, on_commit=self.on_commit, tries=tries)

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
            return await self._alerts.apply(session, requests, now=self.clock.now())

        return await self._in_write(work)

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
            declared = NewIncident(
                title=title,
                description=description,
                severity=severity,
                service_id=service_id,
                source="slack",
                created_by=by,
                actor=by,
                text=f"Declared: {title}",
                invite=(by,),
            )
            return await self.create_in(session, declared, now=self.clock.now())

        return await self._in_write(work)

    async def transition(self, *, incident_id: int, command: Command) -> Transition:
        """Apply a person's command; exactly one of several concurrent equal commands wins.

        Raises InvalidTransition (the move is illegal now) or IncidentNotFound.
        """

        async def work(session: AsyncSession) -> Transition:
            incident = await IncidentRepository(session).get(incident_id=incident_id)
            return await self.transition_in(session, incident, command, self.clock.now())

        return await self._in_write(work)

    # ---- in the caller's transaction (shared with alert ingest) ------------------------

    async def transition_in(
        self, session: AsyncSession, incident: Incident, command: Command, now: datetime
    ) -> Transition:
        """Apply `command` to `incident` in the caller's transaction.

        Raises InvalidTransition; a lost compare-and-set raises `Retry` (`in_write` retries).
        """
        transition = apply(incident.state, command, now=now)
        ok = await IncidentRepository(session).compare_and_set_state(
            incident_id=incident.id,
            expected_version=incident.version,
            state=transition.after,
            now=now,
        )
        if not ok:
            raise Retry()
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
            await self.enqueue_sync(session, incident.id, now)
        if self.escalations is not None:
            if Effect.STOP_ESCALATION in transition.effects:
                await self.escalations.stop(session, incident.id, now)
            if Effect.START_ESCALATION in transition.effects:
                await self.escalations.start(session, incident, now)
        after_commit(
            session, self.metrics.transitions.labels(status=transition.after.status.value).inc
        )
        self._observe_response_time(session, incident, transition, now)
        return transition

    def _observe_response_time(
        self, session: AsyncSession, incident: Incident, transition: Transition, now: datetime
    ) -> None:
        """Time to acknowledge / resolve, counted from the trigger once the move commits."""
        latency = max((now - incident.triggered_at).total_seconds(), 0.0)
        status = transition.after.status
        if status is Status.ACKNOWLEDGED:
            histogram = self.metrics.acknowledge_latency
        elif status is Status.RESOLVED:
            histogram = self.metrics.resolve_latency
        else:
            return
        observe = histogram.labels(severity=incident.severity.value).observe
        after_commit(session, lambda: observe(latency))

    async def create_in(
        self, session: AsyncSession, new: NewIncident, *, now: datetime
    ) -> Incident:
        """Open an incident in the caller's transaction: timeline, outbox rows, escalation."""
        service = self.config.service(new.service_id) if new.service_id else None
        team_id = service.team if service else None
        incident = await IncidentRepository(session).add(
            title=new.title[:1000],
            description=new.description,
            status=Status.TRIGGERED.value,
            severity=new.severity.value,
            service_id=new.service_id,
            team_id=team_id,
            source=new.source,
            integration=new.integration,
            dedup_key=new.dedup_key,
            auto_resolve=service.auto_resolve if service else True,
            created_by=new.created_by,
            alert_count=1 if new.integration else 0,
            labels=new.labels,
            links=new.links,
            triggered_at=now,
            updated_at=now,
        )
        await TimelineRepository(session).add(
            incident_id=incident.id,
            at=now,
            kind="triggered",
            actor=new.actor,
            text=new.text,
            data={"severity": new.severity.value, "service": new.service_id},
        )
        outbox = OutboxRepository(session)
        # the announcement first: it pages people even when channel creation is rate limited
        await outbox.enqueue(kind=OutboxKind.ANNOUNCE, incident_id=incident.id, now=now)
        await outbox.enqueue(
            kind=OutboxKind.OPEN_CHANNEL,
            incident_id=incident.id,
            now=now,
            payload={"invite": list(new.invite)},
        )
        if self.escalations is not None:
            await self.escalations.start(session, incident, now)
        after_commit(
            session,
            self.metrics.incidents_opened.labels(
                service=new.service_id or "none", severity=new.severity.value
            ).inc,
        )
        return incident

    async def enqueue_sync(self, session: AsyncSession, incident_id: int, now: datetime) -> None:
        """Have the outbox bring the incident's Slack messages up to its current state."""
        await OutboxRepository(session).enqueue(
            kind=OutboxKind.SYNC_MESSAGES, incident_id=incident_id, now=now
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


__all__ = [
    "Delivery",
    "IncidentService",
    "IngestOutcome",
    "IngestRequest",
    "InvalidTransition",
]
