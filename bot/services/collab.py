"""Status updates, their reminders, and follow-ups: each change in one transaction with the
outbox rows it needs; reminder deadlines live in SQL and are claimed like escalations."""

from __future__ import annotations

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.delivery.kinds import OutboxKind
from bot.domain.records import Followup, Incident
from bot.errors import NotFound
from bot.services.incidents import IncidentService
from bot.services.transactions import Retry, in_write
from store.collab import ArchiveRepository, FollowupRepository, UpdateRepository
from store.incidents import IncidentRepository, TimelineRepository
from store.unit_of_work import UnitOfWork

MAX_MESSAGE = 3000  # characters of a Slack message kept on the timeline

UPDATE_STATUSES = ("investigating", "identified", "monitoring")
"""What a status update may say about the work (resolving is the Resolve button's job)."""


def slack_unescape(text: str) -> str:
    """Undo Slack's escaping of `&`, `<` and `>` in message text (rendering escapes once)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _who(author: str | None) -> str:
    if author and author[:1] in "UW" and author.isalnum():
        return f"<@{author}>"
    return author or "someone"


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

    async def set_followup_done(
        self, *, followup_id: int, done: bool, by: str
    ) -> tuple[Followup, bool]:
        """Mark a follow-up done, or open again (on its incident's timeline); (it, whether
        it changed). NotFound when there is no such follow-up."""

        async def work(uow: UnitOfWork) -> tuple[Followup, bool]:
            now = self.clock.now()
            found = await FollowupRepository(uow.session).set_done(
                followup_id=followup_id, done_at=now if done else None
            )
            if found is None:
                raise NotFound(f"There is no follow-up {followup_id}.")
            followup, changed = found
            if changed:
                await TimelineRepository(uow.session).add(
                    incident_id=followup.incident_id,
                    at=now,
                    kind="followup_done" if done else "followup_reopened",
                    actor=by,
                    text=f"Follow-up {'done' if done else 'reopened'}: {followup.text}",
                    data={"followup_id": followup.id},
                )
            return followup, changed

        return await self.incidents.write(work)

    async def add_message(
        self,
        *,
        incident_id: int,
        channel: str,
        ts: str,
        author: str | None,
        text: str,
        link: str | None,
        by: str,
    ) -> bool:
        """Add a Slack message (its author, text and link) to the timeline; False when it is
        there already (a second 📌, the shortcut after a 📌)."""

        async def work(uow: UnitOfWork) -> bool:
            now = self.clock.now()
            timeline = TimelineRepository(uow.session)
            await IncidentRepository(uow.session).get(incident_id=incident_id)
            for event in await timeline.list(incident_id=incident_id):
                if event.kind == "message_added" and event.data.get("ts") == ts:
                    if event.data.get("channel") == channel:
                        return False
            await timeline.add(
                incident_id=incident_id,
                at=now,
                kind="message_added",
                actor=by,
                text=f"Message from {_who(author)}: {slack_unescape(text)[:MAX_MESSAGE]}",
                data={"channel": channel, "ts": ts, "author": author, "link": link},
            )
            return True

        return await self.incidents.write(work)

    async def set_title(self, *, incident_id: int, title: str, by: str) -> str | None:
        """Retitle the incident: every message re-renders, the topic follows and the channel
        is renamed to match (valid, unique names). The old title, or None if unchanged."""

        async def work(uow: UnitOfWork) -> str | None:
            now = self.clock.now()
            incident = await IncidentRepository(uow.session).get(incident_id=incident_id)
            if incident.title == title:
                return None
            ok = await UpdateRepository(uow.session).retitle(
                incident_id=incident_id, expected_version=incident.version, title=title, now=now
            )
            if not ok:
                raise Retry()
            await TimelineRepository(uow.session).add(
                incident_id=incident_id,
                at=now,
                kind="title_changed",
                actor=by,
                text=f"Title changed from {incident.title!r} to {title!r}",
                data={"from": incident.title, "to": title},
            )
            await uow.enqueue(kind=OutboxKind.SYNC_MESSAGES, incident_id=incident_id, now=now)
            await self.incidents.state_line(
                uow, incident_id, now, kind="title_changed", actor=by, new=title, topic=True
            )
            await uow.enqueue(kind=OutboxKind.RENAME_CHANNEL, incident_id=incident_id, now=now)
            return incident.title

        return await self.incidents.write(work)

    async def sweep_archives(self) -> int:
        """Archive the channels of incidents resolved `archive_after` ago (a message first);
        each claimed once across replicas. Returns how many."""
        now = self.clock.now()

        async def work(uow: UnitOfWork) -> int:
            due = await ArchiveRepository(uow.session).claim_due(now=now, limit=50)
            for incident_id in due:
                await uow.enqueue(kind=OutboxKind.ARCHIVE_CHANNEL, incident_id=incident_id, now=now)
            return len(due)

        return await in_write(self.incidents.db, work, on_commit=self.incidents.on_commit)

    async def open_followups(self, *, limit: int = 30) -> tuple[list[Followup], int]:
        async with self.incidents.db.read() as session:
            return await FollowupRepository(session).open(limit=limit)

    async def followups(self, *, incident_id: int) -> list[Followup]:
        async with self.incidents.db.read() as session:
            return await FollowupRepository(session).for_incident(incident_id=incident_id)
