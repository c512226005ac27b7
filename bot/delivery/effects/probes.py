"""The probe chart effect: upload a probe's latency chart to a channel, once.

Two kinds of request share it: `/incident probe <id>` (the last 24 hours, to the channel it
was asked in) and an incident a probe opened (the results its detector looked at, shared in
the thread of the incident's channel message once that exists, then shown in that message as
an image block and noted on the incident's timeline).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.effects.base import Effects, Handler, LeaseBusy, file_mark, outcome_unknown
from bot.delivery.kinds import OutboxKind
from bot.render.chart import LatencyPoint, latency_chart
from store.incidents import IncidentRepository, TimelineRepository
from store.outbox import OutboxItem, OutboxRepository
from store.probes import ProbeRepository

MAX_POINTS = 5000


class ProbeChartEffects(Effects):
    """Delivers charts recorded by `ProbeService.request_chart` (`/incident probe <id>`) and
    by `ProbeService.record` when a probe opens an incident."""

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.PROBE_CHART: self._chart}

    async def _chart(self, item: OutboxItem) -> None:
        """Draw the probe's results from `payload.since` (to `payload.until`) and upload them
        to `payload.channel`, or to the thread of the incident's channel message: until that
        exists the row waits (LeaseBusy reschedules it). The upload is saved in the row's
        progress (with the incident's timeline note and the chart put into its message, in
        one transaction), and an upload whose answer was lost (a timeout, a crash before that
        commit) is found by its mark, so a retry never uploads twice. A channel the bot
        cannot post in is noted, not retried."""
        if "uploaded" in item.progress:
            return
        payload = item.payload
        probe_id = payload["probe"]
        channel, thread_ts = payload.get("channel"), None
        if channel is None:
            assert item.incident_id is not None
            async with self.db.read() as session:
                incident = await IncidentRepository(session).get(incident_id=item.incident_id)
            if incident.channel_id is None or incident.message_ts is None:
                raise LeaseBusy(f"INC-{incident.id} has no channel message yet")
            channel, thread_ts = incident.channel_id, incident.message_ts
        since = datetime.fromisoformat(payload["since"])
        until = datetime.fromisoformat(payload["until"]) if payload.get("until") else None
        async with self.db.read() as session:
            samples = await ProbeRepository(session).results(
                probe_id, since=since, until=until, limit=MAX_POINTS
            )
        if until is None:
            title = f"Probe {probe_id}: latency, last 24 hours"
        else:
            title = f"Probe {probe_id}: latency, last {len(samples)} results"
        png = await asyncio.to_thread(
            latency_chart, [LatencyPoint(s.at, s.latency_ms, s.ok) for s in samples], title=title
        )
        uploaded = await self._optional(
            self.gateway.upload_file(
                channel=channel,
                filename=f"pulseops-probe-{probe_id}-{since:%Y%m%d%H%M}.png",
                content=png,
                title=title,
                thread_ts=thread_ts,
                mark=file_mark(item, "chart"),
                look_first=outcome_unknown(item),
            ),
            item.incident_id,
        )
        item.progress["uploaded"] = uploaded
        if item.incident_id is None:
            await self._save_progress(item)
            return
        incident_id = item.incident_id
        text = (
            f"{title}: chart shown in the incident message"
            if uploaded["done"]
            else f"{title}: the chart could not be uploaded ({uploaded['error']})"
        )
        now = self.clock.now()

        async def note(session: AsyncSession) -> None:
            await TimelineRepository(session).add(
                incident_id=incident_id,
                at=now,
                kind="probe_chart",
                actor="pulseops",
                text=text,
                data={"probe": probe_id, "results": len(samples), "file": uploaded.get("result")},
            )
            outbox = OutboxRepository(session)
            await outbox.save_progress(item_id=item.id, progress=item.progress)
            if uploaded["done"]:  # the channel message shows it from its next version
                await IncidentRepository(session).set_chart(
                    incident_id=incident_id, file_id=uploaded["result"], now=now
                )
                await outbox.enqueue(
                    kind=OutboxKind.SYNC_MESSAGES, now=now, incident_id=incident_id
                )

        await self.db.write_grouped(note)
