"""Which open incidents have gone quiet: the newest alert on them is older than a cut-off, and
no missed heartbeat is among them (a heartbeat's alert stands until its next ping)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config.heartbeats import HEARTBEAT_INTEGRATION
from store.models import AlertRow, IncidentRow


def _no_missed_heartbeat() -> ColumnElement[bool]:
    """The incident (of the enclosing query) holds no firing heartbeat alert."""
    alert = aliased(AlertRow)  # the outer query reads alerts too: do not correlate with it
    firing_heartbeat = select(alert.id).where(
        alert.incident_id == IncidentRow.id,
        alert.integration == HEARTBEAT_INTEGRATION,
        alert.status == "firing",
    )
    return ~exists(firing_heartbeat.correlate(IncidentRow))


class QuietIncidents:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, *, service_id: str, before: datetime, limit: int) -> list[int]:
        """Ids of the service's open incidents quiet since `before` (see `is_quiet`)."""
        rows = await self.session.scalars(
            select(IncidentRow.id)
            .join(AlertRow, AlertRow.incident_id == IncidentRow.id)
            .where(
                IncidentRow.status != "resolved",
                IncidentRow.service_id == service_id,
                _no_missed_heartbeat(),
            )
            .group_by(IncidentRow.id)
            .having(func.max(AlertRow.last_seen_at) <= before)
            .order_by(IncidentRow.id)
            .limit(limit)
        )
        return list(rows)

    async def is_quiet(self, *, incident_id: int, before: datetime) -> bool:
        """Whether the incident's newest alert was last seen at or before `before` and none of
        its alerts is a missed heartbeat (incidents without alerts, declared by people, are
        never quiet)."""
        newest = await self.session.scalar(
            select(func.max(AlertRow.last_seen_at))
            .join(IncidentRow, IncidentRow.id == AlertRow.incident_id)
            .where(and_(AlertRow.incident_id == incident_id, _no_missed_heartbeat()))
        )
        return newest is not None and newest <= before
