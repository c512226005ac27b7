"""Status updates, their reminders, and follow-ups: each change in one transaction with the
outbox rows it needs; reminder deadlines live in SQL and are claimed like escalations."""

from __future__ import annotations

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.delivery.kinds import OutboxKind
from bot.domain.records import Followup, Incident
from bot.services.incidents import IncidentService
from bot.services.transactions import Retry, in_write
from store.collab import FollowupRepository, UpdateRepository
from store.incidents import IncidentRepository, TimelineRepository
from store.unit_of_work import UnitOfWork

UPDATE_STATUSES = ("investigating", "identified", "monitoring")
"""What a status update may say about the work (resolving is the Resolve button's job)."""


class CollabService:
    """Posts status updates, reminds leads of missing ones, and keeps follow-ups."""

    def __init__(self, *, incidents: IncidentService, config: PulseOpsConfig, clock: Clock) -> None:
        self.incidents = incidents
        self.config = config
        self.clock = clock

    async def post_update(
        self, *, incident_id: int, status: str, summary: str, by: str
    ) -> Incident:
        """Record a status update: shown on the message, posted in the channel and threaded
        under the announcement; the next reminder is due a reminder interval from now."""
        if status not in UPDATE_STATUSES:
            raise ValueError(status)

        async def work(uow: UnitOfWork) -> Incident:
            now = self.clock.now()
            repo = IncidentRepository(uow.session)
            incident = await repo.get(incident_id=incident_id)
            ok = await UpdateRepository(uow.session).record(
                incident_id=incident_id,
                expected_version=incident.version,
                status=status,
                summary=summary,
                now=now,
                due_at=self.incidents.update_due(incident, since=now),
            )
            if not ok:
                raise Retry()
            await TimelineRepository(uow.session).add(
                incident_id=incident_id,
                at=now,
                kind="status_update",
                actor=by,
                text=f"Update ({status}): {summary}",
                data={"status": status, "summary": summary},
            )
            await uow.enqueue(kind=OutboxKind.SYNC_MESSAGES, incident_id=incident_id, now=now)
            await uow.enqueue(
                kind=OutboxKind.STATUS_UPDATE,
                incident_id=incident_id,
                now=now,
                payload={"status": status, "summary": summary, "actor": by},
            )
            return await repo.get(incident_id=incident_id)

        return await self.incidents.write(work)

    async def sweep_reminders(self) -> int:
        """Remind about every incident whose update is overdue; the next reminder is set in
        the same transaction, so each is sent once across replicas. Returns how many."""
        now = self.clock.now()

        async def work(uow: UnitOfWork) -> int:
            updates = UpdateRepository(uow.session)
            repo = IncidentRepository(uow.session)
            due = await updates.due(now=now, limit=100)
            for incident_id in due:
                incident = await repo.get(incident_id=incident_id)
                await updates.set_due(
                    incident_id=incident_id, due_at=self.incidents.update_due(incident, since=now)
                )
                since = incident.last_update_at or incident.triggered_at
                await TimelineRepository(uow.session).add(
                    incident_id=incident_id,
                    at=now,
                    kind="update_reminder",
                    actor="pulseops",
                    text="Reminded to post a status update",
                    data={"lead": incident.lead},
                )
                await uow.enqueue(
                    kind=OutboxKind.UPDATE_REMINDER,
                    incident_id=incident_id,
                    now=now,
                    payload={"since": since.isoformat()},
                )
            return len(due)

        return await in_write(self.incidents.db, work, on_commit=self.incidents.on_commit)

    async def add_followup(
        self, *, incident_id: int, text: str, owner: str | None, by: str
    ) -> Followup:
        """Note work to do after the incident (on its timeline; listed on resolve)."""

        async def work(uow: UnitOfWork) -> Followup:
            now = self.clock.now()
            await IncidentRepository(uow.session).get(incident_id=incident_id)
            followup = await FollowupRepository(uow.session).add(
                incident_id=incident_id, text=text, owner=owner, by=by, now=now
            )
            await TimelineRepository(uow.session).add(
                incident_id=incident_id,
                at=now,
                kind="followup_added",
                actor=by,
                text=f"Follow-up: {text}",
                data={"followup_id": followup.id, "owner": owner},
            )
            return followup

        return await self.incidents.write(work)

    async def open_followups(self, *, limit: int = 30) -> tuple[list[Followup], int]:
        async with self.incidents.db.read() as session:
            return await FollowupRepository(session).open(limit=limit)

    async def followups(self, *, incident_id: int) -> list[Followup]:
        async with self.incidents.db.read() as session:
            return await FollowupRepository(session).for_incident(incident_id=incident_id)
