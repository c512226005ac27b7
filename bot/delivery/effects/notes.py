"""The note effect: post a timeline note in the incident's channel, once."""

from __future__ import annotations

from bot.delivery.effects.base import Effects, Handler, LeaseBusy
from bot.delivery.kinds import OutboxKind
from store.incidents import IncidentRepository
from store.outbox import OutboxItem


class NoteEffects(Effects):
    """Delivers notes recorded by `IncidentChanges.add_note` (the API's `POST …/notes`)."""

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.NOTE: self._note}

    async def _note(self, item: OutboxItem) -> None:
        """Post `payload.text` by `payload.actor` in the incident channel.

        The channel is opened by another outbox row: until it exists the row waits (LeaseBusy
        reschedules it). The post is saved in the row's progress the moment it succeeds, so a
        retry never posts twice.
        """
        if item.progress.get("posted") or item.incident_id is None:
            return
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=item.incident_id)
        if incident.channel_id is None:
            raise LeaseBusy(f"INC-{incident.id} has no channel yet")
        text = self.renderer.replies.note(actor=item.payload["actor"], text=item.payload["text"])
        channel, ts = await self.gateway.post_message(incident.channel_id, text=str(text))
        item.progress["posted"] = {"channel": channel, "ts": ts}
        await self._save_progress(item)
