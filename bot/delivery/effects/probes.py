"""The probe chart effect: upload a probe's latency chart to a channel, once.

Two kinds of request share it: `/incident probe <id>` (the last 24 hours, to the channel it
was asked in) and an incident a probe opened (the results its detector looked at, to the
incident's channel once that exists, noted on the incident's timeline).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.effects.base import Effects, Handler, LeaseBusy
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
        to `payload.channel`, or to the incident's channel: until that exists the row waits
        (LeaseBusy reschedules it). The upload is saved in the row's progress (with the
        incident's timeline note, in one transaction), so a retry never uploads twice. A
        channel the bot cannot post in is noted, not retried."""
        if "uploaded" in item.progress:
            return
        payload = item.payload
        probe_id = payload["probe"]
        channel = payload.get("channel")
        if channel is None:
            assert item.incident_id is not None
            async with self.db.read() as session:
                incident = await IncidentRepository(session).get(incident_id=item.incident_id)
            if incident.channel_id is None:
                raise LeaseBusy(f"INC-{incident.id} has no channel yet")
            channel = incident.channel_id
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
            ),
            item.incident_id,
        )
        item.progress["uploaded"] = uploaded
        if item.incident_id is None:
            await self._save_progress(item)
            return
        incident_id = item.incident_id
        text = (
            f"{title}: chart uploaded to the incident channel"
            if uploaded["done"]
            else f"{title}: the chart could not be uploaded ({uploaded['error']})"
        )

        async def note(session: AsyncSession) -> None:
            await TimelineRepository(session).add(
                incident_id=incident_id,
                at=self.clock.now(),
                kind="probe_chart",
                actor="pulseops",
                text=text,
                data={"probe": probe_id, "results": len(samples), "file": uploaded.get("result")},
            )
            await OutboxRepository(session).save_progress(item_id=item.id, progress=item.progress)

        await self.db.write_grouped(note)
