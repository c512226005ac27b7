"""The probe chart effect: upload a probe's latency chart to the channel it was asked in, once."""

from __future__ import annotations

import asyncio
from datetime import datetime

from bot.delivery.effects.base import Effects, Handler
from bot.delivery.kinds import OutboxKind
from bot.render.chart import LatencyPoint, latency_chart
from store.outbox import OutboxItem
from store.probes import ProbeRepository

MAX_POINTS = 5000


class ProbeChartEffects(Effects):
    """Delivers charts recorded by `ProbeService.request_chart` (`/incident probe <id>`)."""

    def handlers(self) -> dict[str, Handler]:
        return {OutboxKind.PROBE_CHART: self._chart}

    async def _chart(self, item: OutboxItem) -> None:
        """Draw the probe's results since `payload.since` and upload them to
        `payload.channel`; the upload is saved in the row's progress, so a retry never
        uploads twice. A channel the bot cannot post in is noted, not retried."""
        if "uploaded" in item.progress:
            return
        probe_id, channel = item.payload["probe"], item.payload["channel"]
        since = datetime.fromisoformat(item.payload["since"])
        async with self.db.read() as session:
            samples = await ProbeRepository(session).results(
                probe_id, since=since, limit=MAX_POINTS
            )
        png = await asyncio.to_thread(
            latency_chart,
            [LatencyPoint(s.at, s.latency_ms, s.ok) for s in samples],
            title=f"Probe {probe_id}: latency, last 24 hours",
        )
        item.progress["uploaded"] = await self._optional(
            self.gateway.upload_file(
                channel=channel,
                filename=f"pulseops-probe-{probe_id}-{since:%Y%m%d%H%M}.png",
                content=png,
                title=f"Probe {probe_id}: latency, last 24 hours",
            ),
            None,
        )
        await self._save_progress(item)
