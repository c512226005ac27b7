"""Incident service: alerts in, state changes out, each with its timeline and outbox rows.

Every change runs in one write transaction (a `UnitOfWork`): the incident, its timeline and
the Slack effects it needs (outbox rows) commit together, then the outbox worker is woken.
People's commands come in through `declare` and `transition`; the alert pipeline's decisions
through `apply`, in the delivery's transaction (see `bot.services.ingest`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.clock import Clock
from bot.config import IntegrationConfig, PulseOpsConfig
from bot.config.directory import directory_of
from bot.delivery.kinds import OutboxKind
from bot.domain import Acknowledge, Command, Resolve, Severity, apply
from bot.domain.alerts import AlertStatus
from bot.domain.incident import Effect, InvalidTransition, Role, Status, Transition
from bot.domain.records import AlertRecord, Incident, NewIncident, TimelineEvent
from bot.domain.routing import route
from bot.ingest.decisions import (
    AcknowledgeIncident,
    Decision,
    Dropped,
    GroupInto,
    Ignore,
    IngestOutcome,
    Muted,
    Open,
    Outcome,
    Raise,
    Repeat,
    ResolveAlert,
)
from bot.ingest.stages import dedup_key
from bot.metrics import Metrics
from bot.services.escalation import EscalationService
from bot.services.transactions import Retry, in_write
from bot.services.workflows import WorkflowService
from store.collab import ArchiveRepository, UpdateRepository
from store.inactivity import QuietIncidents
from store.incidents import AlertRepository, IncidentFilter, IncidentRepository, TimelineRepository
from store.outbox import IdempotencyRepository
from store.roles import RoleRepository
from store.session import Database
from store.severity import SeverityRepository
from store.silences import SuppressedAlertRepository, record_suppressed
from store.unit_of_work import UnitOfWork

T = TypeVar("T")
SYSTEM_ACTOR = "pulseops"  # the actor of what PulseOps does by itself (auto-resolve)


class IncidentService:
    """Opens incidents, applies alert decisions and people's commands, and answers queries."""

    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        escalations: EscalationService,
        on_commit: Callable[[], None],
        workflows: WorkflowService | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.escalations = escalations
        self.on_commit = on_commit
        self.directory = directory_of(config)
        self.workflows = workflows

    async def write(self, work: Callable[[UnitOfWork], Awaitable[T]], *, tries: int = 5) -> T:
        """Run `work` in a write transaction, retrying races (unique violations, lock timeouts)."""
        return await in_write(self.db, work, on_commit=self.on_commit, tries=tries)

    # ---- people -------------------------------------------------------------------------

    async def declare(
        self,
        *,
        title: str,
        severity: Severity,
        service_id: str | None,
        description: str,
        by: str,
        declared_in: str | None = None,
    ) -> Incident:
        """Open an incident declared by a person (no alert behind it); `declared_in` is the
        channel they declared it from, where they are told the new channel's link."""
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
            declared_in=declared_in,
        )
        return await self.write(lambda uow: self._open(uow, declared, now=self.clock.now()))

    async def open(self, uow: UnitOfWork, new: NewIncident, *, now: datetime) -> Incident:
        """Open `new` in the caller's transaction (the API's declare, with its Idempotency-Key)."""
        return await self._open(uow, new, now=now)

    async def transition(self, *, incident_id: int, command: Command) -> Transition:
        """Apply a person's command; exactly one of several concurrent equal commands wins.

        Raises InvalidTransition (the move is illegal now) or IncidentNotFound.
        """

        async def work(uow: UnitOfWork) -> Transition:
            incident = await IncidentRepository(uow.session).get(incident_id=incident_id)
            return await self._transition(uow, incident, command, self.clock.now())

        return await self.write(work)

    async def move(
        self, uow: UnitOfWork, incident: Incident, command: Command, now: datetime
    ) -> Transition:
        """Apply `command` in the caller's transaction (acknowledging from an SMS, a call or
        an e-mail link, with the link's use recorded in the same transaction)."""
        return await self._transition(uow, incident, command, now)

    async def resolve_if_quiet(
        self, *, incident_id: int, quiet_for: timedelta, reason: str
    ) -> bool:
        """Resolve the incident as the system if no alert has been seen on it for `quiet_for`
        and no missed heartbeat holds it (checked in the transaction); False when it is
        resolved already or not quiet.

        Several replicas may try at once: the state's compare-and-set lets one win; the
        others find it resolved on their retry.
        """

        async def work(uow: UnitOfWork) -> bool:
            now = self.clock.now()
            incident = await IncidentRepository(uow.session).get(incident_id=incident_id)
            quiet = await QuietIncidents(uow.session).is_quiet(
                incident_id=incident_id, before=now - quiet_for
            )
            if not (incident.is_open and quiet):
                return False
            await self._transition(
                uow, incident, Resolve(by=SYSTEM_ACTOR), now, text=f"Resolved: {reason}"
            )
            return True

        return await self.write(work)

    # ---- alert decisions (in the delivery's transaction) ---------------------------------

    async def apply(
        self,
        uow: UnitOfWork,
        integration: IntegrationConfig,
        decision: Decision,
        now: datetime,
    ) -> IngestOutcome:
        """Carry out what the alert pipeline decided for one alert."""
        alert = decision.alert
        actor = f"monitor:{integration.name}"
        outcome = await self._apply(uow, integration, decision, now)
        events = self.workflows.events if self.workflows else None
        if (
            events is not None
            and outcome.incident_id is not None
            and events.wanted("alert.received")
        ):
            incident = await IncidentRepository(uow.session).get(incident_id=outcome.incident_id)
            await events.emit(
                uow,
                "alert.received",
                incident,
                actor=actor,
                now=now,
                data={
                    "integration": integration.name,
                    "fingerprint": alert.fingerprint,
                    "status": alert.status.value,
                    "title": alert.title,
                    "labels": dict(alert.labels),
                    "outcome": outcome.outcome.value,
                },
            )
        return outcome

    async def _apply(
        self,
        uow: UnitOfWork,
        integration: IntegrationConfig,
        decision: Decision,
        now: datetime,
    ) -> IngestOutcome:
        alert = decision.alert
        actor = f"monitor:{integration.name}"
        match decision:
            case Open(new=new):
                incident = await self._open(uow, new, now=now)
                await AlertRepository(uow.session).add_first(
                    incident_id=incident.id, integration=integration.name, alert=alert, now=now
                )
                return IngestOutcome(alert.fingerprint, Outcome.CREATED, incident.id)
            case GroupInto(incident=incident):
                await self._group_into(uow, integration, decision, now)
                await self._raise(uow, incident.id, decision.raise_severity, actor, now)
                return IngestOutcome(alert.fingerprint, Outcome.GROUPED, incident.id)
            case Repeat():
                await self._repeat(uow, actor, decision, now)
                await self._raise(uow, decision.incident_id, decision.raise_severity, actor, now)
                return IngestOutcome(alert.fingerprint, Outcome.DEDUPLICATED, decision.incident_id)
            case AcknowledgeIncident(incident=incident):
                await self._transition(uow, incident, Acknowledge(by=actor), now)
                return IngestOutcome(alert.fingerprint, Outcome.ACKNOWLEDGED, incident.id)
            case ResolveAlert():
                outcome = await self._resolve_alert(uow, actor, decision, now)
                return IngestOutcome(alert.fingerprint, outcome, decision.incident.id)
            case Ignore(incident_id=incident_id):
                if alert.status is AlertStatus.RESOLVED:  # perhaps one a silence held
                    await SuppressedAlertRepository(uow.session).mark_resolved(
                        integration=integration.name, fingerprint=alert.fingerprint, now=now
                    )
                return IngestOutcome(alert.fingerprint, Outcome.IGNORED, incident_id)
            case Muted(hold=hold):
                await record_suppressed(
                    uow.session,
                    integration=integration.name,
                    dedup_key=dedup_key(integration.name, alert.group_key),
                    alert=alert,
                    reason="muted",
                    by=decision.by,
                    now=now,
                    hold=hold,
                )
                if hold is not None:
                    muted = self.metrics.alerts_muted.labels(kind=hold.kind, name=hold.name)
                    uow.after_commit(muted.inc)
                return IngestOutcome(alert.fingerprint, Outcome.MUTED)
            case Dropped():
                await record_suppressed(
                    uow.session,
                    integration=integration.name,
                    dedup_key=dedup_key(integration.name, alert.group_key),
                    alert=alert,
                    reason="dropped",
                    by=decision.by,
                    now=now,
                )
                return IngestOutcome(alert.fingerprint, Outcome.DROPPED)

    async def _group_into(
        self, uow: UnitOfWork, integration: IntegrationConfig, joined: GroupInto, now: datetime
    ) -> None:
        incident, alert = joined.incident, joined.alert
        await AlertRepository(uow.session).add_first(
            incident_id=incident.id, integration=integration.name, alert=alert, now=now
        )
        by = (
            f" (grouped into {incident.number} by {joined.grouped_by})" if joined.grouped_by else ""
        )
        await TimelineRepository(uow.session).add(
            incident_id=incident.id,
            at=now,
            kind="alert_added",
            actor=f"monitor:{integration.name}",
            text=f"Alert joined the incident: {alert.title}{by}",
            data={"fingerprint": alert.fingerprint, "grouped_by": joined.grouped_by},
        )
        await IncidentRepository(uow.session).count_alerts(incident_id=incident.id, now=now)
        await self._enqueue_sync(uow, incident.id, now)

    async def _repeat(self, uow: UnitOfWork, actor: str, repeat: Repeat, now: datetime) -> None:
        """Count a repeat (with the batch's others); note it on the timeline now and then.

        A repeat re-renders nothing, so an alert storm is no storm of message edits.
        """
        alerts = AlertRepository(uow.session)
        occurrences = repeat.occurrences
        if not repeat.counted:
            occurrences = await alerts.refire(
                alert_id=repeat.alert_id, now=now, severity=repeat.alert.severity
            )
        uow.count_repeat(repeat.incident_id)
        if not (repeat.refired or self._note_due(repeat.last_note_at, now)):
            return
        await alerts.set_last_note(alert_id=repeat.alert_id, at=now)
        title = repeat.alert.title
        await TimelineRepository(uow.session).add(
            incident_id=repeat.incident_id,
            at=now,
            kind="alert_refired" if repeat.refired else "alert_repeated",
            actor=actor,
            text=(
                f"Alert fired again: {title}"
                if repeat.refired
                else f"Alert repeated ({occurrences} notifications so far): {title}"
            ),
            data={"fingerprint": repeat.alert.fingerprint, "occurrences": occurrences},
        )

    async def _raise(
        self, uow: UnitOfWork, incident_id: int, raised: Raise | None, actor: str, now: datetime
    ) -> None:
        """Raise the incident's severity for a more severe alert; it never falls by itself."""
        if raised is None:
            return
        await self.change_severity(
            uow, incident_id=incident_id, severity=raised.to, by=actor, now=now, why=raised.why
        )

    def _note_due(self, last_note_at: datetime | None, now: datetime) -> bool:
        """At most one "alert repeated" timeline note per alert per repeat_note_interval."""
        interval = self.config.incidents.repeat_note_interval
        return last_note_at is None or now - last_note_at >= interval

    async def _resolve_alert(
        self, uow: UnitOfWork, actor: str, resolved: ResolveAlert, now: datetime
    ) -> Outcome:
        alerts = AlertRepository(uow.session)
        incident = resolved.incident
        if not resolved.already_resolved:
            await alerts.mark_resolved(alert_id=resolved.alert_id, now=now)
            await TimelineRepository(uow.session).add(
                incident_id=incident.id,
                at=now,
                kind="alert_resolved",
                actor=actor,
                text=f"Monitor reports resolved: {resolved.alert.title}",
                data={"fingerprint": resolved.alert.fingerprint},
            )
        if not incident.auto_resolve or await alerts.count_firing(incident_id=incident.id) > 0:
            return Outcome.ALERT_RESOLVED
        fresh = await IncidentRepository(uow.session).get(incident_id=incident.id)
        await self._transition(uow, fresh, Resolve(by=actor), now)
        return Outcome.RESOLVED

    # ---- shared by people and alerts ----------------------------------------------------

    async def _transition(
        self,
        uow: UnitOfWork,
        incident: Incident,
        command: Command,
        now: datetime,
        *,
        text: str | None = None,
    ) -> Transition:
        """Apply `command` to `incident` in the caller's transaction (`text`: the timeline's
        wording, else the new status).

        Raises InvalidTransition; a lost compare-and-set raises `Retry` (`in_write` retries).
        """
        transition = apply(incident.state, command, now=now)
        ok = await IncidentRepository(uow.session).compare_and_set_state(
            incident_id=incident.id,
            expected_version=incident.version,
            state=transition.after,
            now=now,
        )
        if not ok:
            raise Retry()
        if Effect.TIMELINE in transition.effects:
            await TimelineRepository(uow.session).add(
                incident_id=incident.id,
                at=now,
                kind=transition.event_kind,
                actor=command.by,
                text=text or transition.event_kind.capitalize(),
                data={"from": transition.before.status.value, "to": transition.after.status.value},
            )
        if Effect.UPDATE_MESSAGES in transition.effects:
            await self._enqueue_sync(uow, incident.id, now)
            await self.state_line(
                uow, incident.id, now, kind=transition.event_kind, actor=command.by, topic=True
            )
        if transition.after.status is Status.RESOLVED:
            await uow.enqueue(kind=OutboxKind.POSTMORTEM, incident_id=incident.id, now=now)
        if (
            transition.before.status is Status.RESOLVED
            or transition.after.status is Status.RESOLVED
        ):
            archive_after = self.config.collaboration.archive_after
            resolved = transition.after.status is Status.RESOLVED
            await ArchiveRepository(uow.session).set_at(
                incident_id=incident.id,
                at=now + archive_after if resolved and archive_after else None,
            )
        if transition.after.status is not Status.ACKNOWLEDGED:  # resolved: none; reopened: anew
            await self._reschedule_updates(
                uow, incident.id, since=now if transition.after.status is Status.TRIGGERED else None
            )
        if Effect.STOP_ESCALATION in transition.effects:
            await self.escalations.stop(uow, incident.id, now)
        if Effect.START_ESCALATION in transition.effects:
            await self.escalations.start(uow, incident, now)
        uow.after_commit(self.metrics.transitions.labels(status=transition.after.status.value).inc)
        self._observe_response_time(uow, incident, transition, now)
        if self.workflows is not None:
            after = replace(
                incident, status=transition.after.status, version=transition.after.version
            )
            await self.workflows.fire(uow, after, transition.event_kind, by=command.by, now=now)
        return transition

    def _observe_response_time(
        self, uow: UnitOfWork, incident: Incident, transition: Transition, now: datetime
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
        uow.after_commit(lambda: observe(latency))

    async def _open(self, uow: UnitOfWork, new: NewIncident, *, now: datetime) -> Incident:
        """Open an incident in the caller's transaction: timeline, outbox rows, escalation."""
        ownership = route(self.directory, service_id=new.service_id)
        incident = await IncidentRepository(uow.session).add(
            new, ownership=ownership, now=now, alert_count=1 if new.integration else 0
        )
        timeline = TimelineRepository(uow.session)
        await timeline.add(
            incident_id=incident.id,
            at=now,
            kind="triggered",
            actor=new.actor,
            text=new.text,
            data={"severity": new.severity.value, "service": new.service_id},
        )
        if new.routed:
            await timeline.add(
                incident_id=incident.id,
                at=now,
                kind="routed",
                actor=new.actor,
                text="Routed: " + "; ".join(new.routed),
                data={"decisions": list(new.routed), "category": new.category},
            )
        # the announcement first: it pages people even when channel creation is rate limited
        await uow.enqueue(kind=OutboxKind.ANNOUNCE, incident_id=incident.id, now=now)
        await uow.enqueue(
            kind=OutboxKind.OPEN_CHANNEL,
            incident_id=incident.id,
            now=now,
            payload={
                "invite": list(new.invite),
                **(
                    {"tell": {"user": new.created_by, "channel": new.declared_in}}
                    if new.created_by and new.source == "slack"
                    else {}
                ),
            },
        )
        await self.escalations.start(uow, incident, now)
        due = self.update_due(incident)
        if due is not None:  # SEV1/SEV2 by default: reminded when no update comes
            await UpdateRepository(uow.session).set_due(incident_id=incident.id, due_at=due)
        if self.workflows is not None:
            await self.workflows.fire(uow, incident, "triggered", by=new.actor, now=now)
        uow.after_commit(
            self.metrics.incidents_opened.labels(
                service=new.service_id or "none", severity=new.severity.value
            ).inc
        )
        return incident

    async def change_severity(
        self,
        uow: UnitOfWork,
        *,
        incident_id: int,
        severity: Severity,
        by: str,
        now: datetime,
        why: str | None = None,
    ) -> Severity | None:
        """Set the incident's severity in the caller's transaction: the one way severity
        changes, for people (the API's PATCH, Slack's select, `/incident severity`) and for
        alerts (a more severe alert joining: `why` says which, and severity only rises then).

        On the timeline with `by` and the old value; every copy of the message re-renders, a
        line is threaded under the channel's message, the update reminder follows the new
        severity, and a rise may escalate by another policy (`EscalationService.severity_raised`).
        Returns the severity it had, or None when nothing changed. A lost race raises `Retry`.
        """
        repo = SeverityRepository(uow.session)
        if why is not None:  # an alert: only ever up, whatever another alert did meanwhile
            before = await repo.raise_to(incident_id=incident_id, severity=severity, now=now)
            if before is None:
                return None
            text = f"Severity raised from {before.value} to {severity.value}: {why}"
        else:
            incident = await IncidentRepository(uow.session).get(incident_id=incident_id)
            if incident.severity is severity:
                return None
            ok = await repo.compare_and_set(
                incident_id=incident_id,
                expected_version=incident.version,
                severity=severity,
                now=now,
            )
            if not ok:
                raise Retry()
            before = incident.severity
            text = f"Severity changed from {before.value} to {severity.value}"
        await TimelineRepository(uow.session).add(
            incident_id=incident_id,
            at=now,
            kind="severity_changed",
            actor=by,
            text=text,
            data={"from": before.value, "to": severity.value, **({"why": why} if why else {})},
        )
        await self._enqueue_sync(uow, incident_id, now)
        await self.state_line(
            uow,
            incident_id,
            now,
            kind="severity_changed",
            actor=by,
            old=before.value,
            new=severity.value,
        )
        await self._reschedule_updates(uow, incident_id)
        fresh = await IncidentRepository(uow.session).get(incident_id=incident_id)
        if severity.rank < before.rank:
            await self.escalations.severity_raised(uow, fresh, before, now)
        if self.workflows is not None:
            await self.workflows.fire(
                uow,
                fresh,
                "severity_changed",
                by=by,
                now=now,
                data={"from": before.value, "to": severity.value},
            )
        return before

    async def assign_role(
        self, uow: UnitOfWork, *, incident_id: int, role: Role, user: str, by: str, now: datetime
    ) -> bool:
        """Make `user` the incident's `role` in the caller's transaction; False when they
        already are. The lead is invited to the channel and told by DM (outbox)."""
        incident = await IncidentRepository(uow.session).get(incident_id=incident_id)
        before = getattr(incident, role.value)
        if before == user:
            return False
        ok = await RoleRepository(uow.session).compare_and_set(
            incident_id=incident_id,
            expected_version=incident.version,
            role=role,
            user=user,
            now=now,
        )
        if not ok:
            raise Retry()
        await TimelineRepository(uow.session).add(
            incident_id=incident_id,
            at=now,
            kind="role_assigned",
            actor=by,
            text=f"{role.label} is now <@{user}>",
            data={"role": role.value, "user": user, "from": before},
        )
        await self._enqueue_sync(uow, incident_id, now)
        await self.state_line(
            uow, incident_id, now, kind="role_assigned", actor=by, role=role.value, user=user
        )
        await uow.enqueue(
            kind=OutboxKind.ROLE,
            incident_id=incident_id,
            now=now,
            payload={"role": role.value, "user": user, "by": by},
        )
        return True

    def update_due(self, incident: Incident, *, since: datetime | None = None) -> datetime | None:
        """When `incident` is next reminded to post a status update: a reminder interval of
        its severity after `since` (default: its last update, else when it triggered); None
        when resolved or its severity has no reminders."""
        delay = self.config.collaboration.reminder_after(incident.severity)
        if delay is None or incident.status is Status.RESOLVED:
            return None
        return (since or incident.last_update_at or incident.triggered_at) + delay

    async def _reschedule_updates(
        self, uow: UnitOfWork, incident_id: int, *, since: datetime | None = None
    ) -> None:
        incident = await IncidentRepository(uow.session).get(incident_id=incident_id)
        await UpdateRepository(uow.session).set_due(
            incident_id=incident_id, due_at=self.update_due(incident, since=since)
        )

    async def state_line(
        self,
        uow: UnitOfWork,
        incident_id: int,
        now: datetime,
        *,
        kind: str,
        actor: str,
        **data: Any,
    ) -> None:
        """Have the outbox thread a short line about a change under the channel's message
        (`topic`: the change moves the status, so the channel topic follows)."""
        await uow.enqueue(
            kind=OutboxKind.STATE_LINE,
            incident_id=incident_id,
            now=now,
            payload={"kind": kind, "actor": actor, **data},
        )

    async def _enqueue_sync(self, uow: UnitOfWork, incident_id: int, now: datetime) -> None:
        """Have the outbox bring the incident's Slack messages up to its current state."""
        await uow.enqueue(kind=OutboxKind.SYNC_MESSAGES, incident_id=incident_id, now=now)

    # ---- queries ------------------------------------------------------------------------

    async def get(self, *, incident_id: int) -> Incident:
        async with self.db.read() as session:
            return await IncidentRepository(session).get(incident_id=incident_id)

    async def open_with_dedup_key(self, incident: Incident) -> Incident | None:
        """Another open incident holding `incident`'s dedup key (a reopen would clash)."""
        if incident.dedup_key is None:
            return None
        async with self.db.read() as session:
            found = await IncidentRepository(session).get_open_by_dedup_key(
                dedup_key=incident.dedup_key
            )
        return found if found is not None and found.id != incident.id else None

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


__all__ = ["IncidentService", "InvalidTransition"]
