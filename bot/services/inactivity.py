"""Inactivity auto-resolve: a service's `auto_resolve_after` resolves its quiet incidents.

For monitors that never send "resolved": an open incident of such a service whose newest
alert was last seen longer ago than that is resolved by PulseOps itself, through the
incident service's transitions (timeline, message updates, escalation stopped). The sweep
runs on every replica; each resolve re-checks in its transaction and the state's
compare-and-set lets one replica win.
"""

from __future__ import annotations

import logging

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.domain.durations import format_duration
from bot.errors import Conflict
from bot.metrics import Metrics
from bot.services.incidents import IncidentService
from store.inactivity import QuietIncidents
from store.session import Database

log = logging.getLogger(__name__)


class InactivityService:
    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        incidents: IncidentService,
    ) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        self.incidents = incidents
        self.services = [
            (s.id, s.auto_resolve_after) for s in config.services if s.auto_resolve_after
        ]

    async def sweep(self, *, limit: int = 100) -> int:
        """Resolve every quiet incident of the services with `auto_resolve_after`; return how
        many this call resolved."""
        resolved = 0
        for service_id, after in self.services:
            async with self.db.read() as session:
                quiet = await QuietIncidents(session).list(
                    service_id=service_id, before=self.clock.now() - after, limit=limit
                )
            reason = f"auto-resolve after {format_duration(after)} of no alerts"
            for incident_id in quiet:
                try:
                    done = await self.incidents.resolve_if_quiet(
                        incident_id=incident_id, quiet_for=after, reason=reason
                    )
                except Conflict:  # changed too often right now: the next sweep looks again
                    log.info("auto-resolve of INC-%d deferred: it kept changing", incident_id)
                    continue
                if done:
                    resolved += 1
                    self.metrics.auto_resolved.labels(service=service_id).inc()
        return resolved
