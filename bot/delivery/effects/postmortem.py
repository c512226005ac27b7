"""The postmortem effect: the Markdown draft uploaded to the incident channel on resolve."""

from __future__ import annotations

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.delivery.effects.base import Effects, Handler, LeaseBusy, file_mark, outcome_unknown
from bot.delivery.kinds import OutboxKind
from bot.errors import SlackError
from bot.render import Renderer
from bot.services.postmortem import Postmortems, participants
from bot.slack.gateway import SlackGateway
from store.incidents import IncidentRepository, TimelineRepository
from store.outbox import OutboxItem
from store.session import Database


class PostmortemEffects(Effects):
    """Uploads the postmortem draft recorded on resolve (`OutboxKind.POSTMORTEM`)."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        renderer: Renderer,
        config: PulseOpsConfig,
        clock: Clock,
        postmortems: Postmortems,
    ) -> None:
        super().__init__(db=db, gateway=gateway, renderer=renderer, config=config, clock=clock)
        self.postmortems = postmortems

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.POSTMORTEM: self._upload}

    async def _names(self, users: list[str]) -> dict[str, str]:
        """Display names of the participants (best effort: an id stays an id)."""
        names: dict[str, str] = {}
        for user in users[:50]:
            try:
                answer = await self.gateway.call("users.info", user=user)
            except SlackError:
                continue
            info = answer.get("user") or {}
            name = (info.get("profile") or {}).get("display_name") or info.get("name")
            if name:
                names[user] = str(name)
        return names

    async def _upload(self, item: OutboxItem) -> None:
        """Render the draft as the incident stands now and share it in its channel, once."""
        if item.progress.get("uploaded") or item.incident_id is None:
            return
        async with self.db.read() as session:
            incident = await IncidentRepository(session).get(incident_id=item.incident_id)
            events = await TimelineRepository(session).list(incident_id=incident.id)
        if incident.channel_id is None:
            raise LeaseBusy(f"INC-{incident.id} has no channel yet")
        names = await self._names(participants(incident, events))
        document = await self.postmortems.render(incident_id=incident.id, names=names)
        file_id = await self.gateway.upload_file(
            channel=incident.channel_id,
            filename=f"{incident.number.lower()}-postmortem.md",
            content=document.encode(),
            title=f"{incident.number} postmortem draft",
            initial_comment=str(self.renderer.replies.postmortem_posted(number=incident.number)),
            mark=file_mark(item, "draft"),
            look_first=outcome_unknown(item),
        )
        item.progress["uploaded"] = file_id
        await self._save_progress(item)
