"""Collaboration effects: short state-change lines under the incident message, the topic,
and a newly given role (the person invited; the lead told by DM)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.delivery.effects.base import (
    Effects,
    Handler,
    LeaseBusy,
    Postpone,
    outcome_unknown,
    post_mark,
)
from bot.delivery.kinds import OutboxKind
from bot.domain.naming import channel_name_candidates
from bot.domain.records import Followup, Incident
from bot.errors import SlackFatal
from store.collab import FollowupRepository
from store.incidents import IncidentRepository
from store.outbox import OutboxItem, OutboxRepository

log = logging.getLogger(__name__)

# a row waiting for its incident's channel stops waiting after this (its creation failed)
GIVE_UP_WITHOUT_CHANNEL = timedelta(days=1)
# seconds an archive waits, again and again, while the incident's earlier effects (the resolve's
# line, the postmortem draft: perhaps on another replica) are still to be delivered
ARCHIVE_WAIT = 2.0


class CollabEffects(Effects):
    """Delivers `STATE_LINE` and `ROLE` rows (see `IncidentService.state_line`/`assign_role`)."""

    def handlers(self) -> dict[str, Handler]:
        return {
            OutboxKind.STATE_LINE: self._state_line,
            OutboxKind.ROLE: self._role,
            OutboxKind.STATUS_UPDATE: self._status_update,
            OutboxKind.UPDATE_REMINDER: self._reminder,
            OutboxKind.RENAME_CHANNEL: self._rename,
            OutboxKind.ARCHIVE_CHANNEL: self._archive,
        }

    async def _ready(self, item: OutboxItem) -> Incident:
        """The incident, once its channel and pinned message exist (else the row waits)."""
        assert item.incident_id is not None
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=item.incident_id)
        if incident.channel_id is None or incident.message_ts is None:
            if self.clock.now() - incident.triggered_at > GIVE_UP_WITHOUT_CHANNEL:
                raise SlackFatal(item.kind, "the incident never got its channel")
            raise LeaseBusy(f"INC-{incident.id} has no channel message yet")
        return incident

    async def _state_line(self, item: OutboxItem) -> None:
        """Thread the line under the channel's message (once); a status change also sets the
        topic to the incident's state as it is now (the newest state wins)."""
        incident = await self._ready(item)
        assert incident.channel_id is not None
        if not item.progress.get("posted"):
            followups: list[Followup] = []
            if item.payload.get("kind") == "resolved":  # the follow-ups are listed on resolve
                async with self.db.read() as session:
                    followups = await FollowupRepository(session).for_incident(
                        incident_id=incident.id
                    )
            text = self.renderer.replies.state_line(**item.payload, followups=followups)
            _, ts = await self.gateway.post_message(
                incident.channel_id,
                text=str(text),
                thread_ts=incident.message_ts,
                mark=post_mark(item, "line"),
                look_first=outcome_unknown(item),
            )
            item.progress["posted"] = ts
            await self._save_progress(item)
        if item.payload.get("topic") and not item.progress.get("topic"):
            item.progress["topic"] = await self._optional(
                self.gateway.set_topic(incident.channel_id, self.renderer.topic(incident)),
                incident.id,
            )

    async def _role(self, item: OutboxItem) -> None:
        """Invite the person given a role to the channel; tell a new lead by DM."""
        incident = await self._ready(item)
        assert incident.channel_id is not None
        user = str(item.payload["user"])
        if not item.progress.get("invited"):
            item.progress["invited"] = await self._optional(
                self.gateway.invite(incident.channel_id, [user]), incident.id
            )
        if item.payload["role"] == "lead" and not item.progress.get("told"):
            text = self.renderer.replies.lead_dm(
                number=incident.number,
                title=incident.title,
                channel_id=incident.channel_id,
                by=str(item.payload["by"]),
            )
            dm = await self.gateway.open_dm(user)
            await self.gateway.post_message(
                dm, text=str(text), mark=post_mark(item, "lead"), look_first=outcome_unknown(item)
            )
            item.progress["told"] = True
            await self._save_progress(item)

    async def _status_update(self, item: OutboxItem) -> None:
        """Post the update in the incident channel and thread it under the announcement."""
        incident = await self._ready(item)
        assert incident.channel_id is not None
        text = str(
            self.renderer.replies.status_update(
                number=incident.number,
                status=str(item.payload["status"]),
                summary=str(item.payload["summary"]),
                actor=str(item.payload["actor"]),
            )
        )
        if not item.progress.get("posted"):
            _, ts = await self.gateway.post_message(
                incident.channel_id,
                text=text,
                mark=post_mark(item, "update"),
                look_first=outcome_unknown(item),
            )
            item.progress["posted"] = ts
            await self._save_progress(item)
        if incident.announcement_ts and incident.announcement_channel:
            if not item.progress.get("threaded"):
                await self.gateway.post_message(
                    incident.announcement_channel,
                    text=text,
                    thread_ts=incident.announcement_ts,
                    mark=post_mark(item, "update-thread"),
                    look_first=outcome_unknown(item),
                )
                item.progress["threaded"] = True
                await self._save_progress(item)

    async def _reminder(self, item: OutboxItem) -> None:
        """Remind the lead by DM to post a status update; without a lead, the channel."""
        incident = await self._ready(item)
        assert incident.channel_id is not None
        if item.progress.get("posted"):
            return
        text = str(
            self.renderer.replies.update_reminder(
                number=incident.number,
                title=incident.title,
                severity=incident.severity.value,
                since=datetime.fromisoformat(str(item.payload["since"])),
                lead=incident.lead,
                channel_id=incident.channel_id,
            )
        )
        where = await self.gateway.open_dm(incident.lead) if incident.lead else incident.channel_id
        _, ts = await self.gateway.post_message(
            where, text=text, mark=post_mark(item, "reminder"), look_first=outcome_unknown(item)
        )
        item.progress["posted"] = ts
        await self._save_progress(item)

    async def _rename(self, item: OutboxItem) -> None:
        """Rename the channel after the incident's current title: the first free candidate
        name (archived channels keep theirs), a bounded number of tries."""
        incident = await self._ready(item)
        assert incident.channel_id is not None
        names = list(
            channel_name_candidates(self.config.slack.channel_prefix, incident.id, incident.title)
        )
        if incident.channel_name in names:
            return  # already named after this title
        for name in names:
            try:
                await self.gateway.rename_channel(incident.channel_id, name)
            except SlackFatal as exc:
                if exc.error == "name_taken":
                    continue
                raise
            await self._record_name(incident.id, incident.channel_id, name)
            return
        log.warning("every candidate channel name is taken", extra={"incident_id": incident.id})

    async def _record_name(self, incident_id: int, channel_id: str, name: str) -> None:
        await self.db.write_grouped(
            lambda session: IncidentRepository(session).set_channel(
                incident_id=incident_id, channel_id=channel_id, channel_name=name
            )
        )

    async def _archive(self, item: OutboxItem) -> None:
        """Say why in the channel, then archive it (an archived channel keeps its name).

        Not before the incident's earlier rows are delivered: another replica may still be
        posting the resolve's line or the postmortem draft, which an archived channel refuses.
        """
        assert item.incident_id is not None
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=item.incident_id)
        if incident.channel_id is None or incident.is_open:
            return  # reopened since, or it never had a channel
        async with self.db.read() as session:
            earlier = await OutboxRepository(session).undelivered_before(
                incident_id=incident.id, row_id=item.id
            )
        if earlier:  # another replica may still be posting the resolve, the postmortem, …
            raise Postpone(ARCHIVE_WAIT, f"INC-{incident.id}: {earlier} effect(s) to deliver first")
        if not item.progress.get("told"):
            text = self.renderer.replies.archiving(
                number=incident.number, resolved_at=incident.resolved_at
            )
            item.progress["told"] = await self._optional(
                self.gateway.post_message(
                    incident.channel_id,
                    text=str(text),
                    mark=post_mark(item, "archiving"),
                    look_first=outcome_unknown(item),
                ),
                incident.id,
            )
            await self._save_progress(item)
        item.progress["archived"] = await self._optional(
            self.gateway.archive_channel(incident.channel_id), incident.id
        )
