"""The handoff effect: announce a rotation handoff and point the schedule's user group."""

from __future__ import annotations

from datetime import datetime

from bot.delivery.effects.base import Effects, Handler, outcome_unknown, post_mark
from bot.delivery.kinds import OutboxKind
from bot.domain.incident import Status
from bot.domain.rotation import handoffs_between
from bot.errors import SlackFatal
from bot.render import MAX_HANDOFF_INCIDENTS
from bot.services.oncall import OnCallLookup, rotation_of
from store.incidents import IncidentFilter, IncidentRepository
from store.outbox import OutboxItem


class HandoffEffects(Effects):
    """Delivers rotation handoffs: the channel message, the DM and the user group."""

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.HANDOFF: self._handoff}

    async def _handoff(self, item: OutboxItem) -> None:
        """Announce a rotation handoff: a message in the schedule's handoff channel, a DM to
        the incoming person, and the schedule's user group pointed at them.

        The post and the DM are not idempotent, so each is saved in the row's progress the
        moment it succeeds; a retry (429, outage, restart) skips what is on record, and one
        that may have been made without being recorded is looked for by its mark first. A fatal
        error on the DM or the user group (`paid_teams_only` on a free workspace, an unknown
        group) is noted in progress and does not fail the effect; a fatal error on the channel
        post fails it, after the DM and the user group have been tried.
        """
        progress = item.progress
        payload = item.payload
        schedule = self.config.schedule(str(payload["schedule_id"]))
        if schedule is None:  # removed from the configuration since the handoff was recorded
            progress["skipped"] = "the schedule is no longer configured"
            return
        at = datetime.fromisoformat(str(payload["at"]))
        outgoing, incoming = str(payload["outgoing"]), str(payload["incoming"])
        now = self.clock.now()
        async with self.db.read() as session:
            incidents, total = await IncidentRepository(session).list(
                filters=IncidentFilter(
                    status=(Status.TRIGGERED, Status.ACKNOWLEDGED), team_id=schedule.team
                ),
                limit=MAX_HANDOFF_INCIDENTS,
            )
            oncall = await OnCallLookup(self.config).at(
                session, schedule_id=schedule.id, instant=max(now, at)
            )
        if "posted" not in progress:
            channel = self.config.handoff_channel_for(schedule.id)
            if channel is None:
                progress["posted"] = {"done": False, "skipped": "no handoff channel configured"}
            else:
                message = self.renderer.handoff_message(
                    schedule_id=schedule.id,
                    team_id=schedule.team,
                    outgoing=outgoing,
                    incoming=incoming,
                    at=at,
                    late=bool(payload.get("late")),
                    missed=int(payload.get("missed", 0)),
                    incidents=incidents,
                    total=total,
                    next_shift=oncall.next,
                )
                progress["posted"] = await self._optional(
                    self.gateway.post_message(
                        channel,
                        text=message.text,
                        blocks=message.blocks,
                        mark=post_mark(item, "handoff"),
                        look_first=outcome_unknown(item),
                    ),
                    None,
                )
            await self._save_progress(item)
        if "dm" not in progress:
            posted = progress["posted"].get("result")
            text = self.renderer.handoff_dm(
                schedule_id=schedule.id,
                team_id=schedule.team,
                outgoing=outgoing,
                total=total,
                channel_id=str(posted[0]) if posted else None,
                next_shift=oncall.next,
            )

            async def direct_message() -> tuple[str, str]:
                return await self.gateway.post_message(
                    await self.gateway.open_dm(incoming),
                    text=text,
                    mark=post_mark(item, "handoff_dm"),
                    look_first=outcome_unknown(item),
                )

            progress["dm"] = await self._optional(direct_message(), None)
            await self._save_progress(item)
        if schedule.user_group and "user_group" not in progress:
            newer = handoffs_between(rotation_of(schedule), at, now)
            if newer:  # delivered after the next handoff: that one's effect sets the group
                progress["user_group"] = {
                    "done": False,
                    "skipped": f"superseded by the handoff at {newer[-1].at.isoformat()}",
                }
            else:
                progress["user_group"] = await self._optional(
                    self.gateway.set_usergroup_members(schedule.user_group, [incoming]), None
                )
        error = progress["posted"].get("error")
        if error:  # the DM and the user group were tried; the row fails with the reason
            await self._save_progress(item)
            raise SlackFatal("chat.postMessage", f"handoff message not posted: {error}")
