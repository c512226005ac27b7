"""Which open incidents have gone quiet: the newest alert on them is older than a cut-off."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AlertRow, IncidentRow


class QuietIncidents:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, *, service_id: str, before: datetime, limit: int) -> list[int]:
        """Ids of the service's open incidents whose newest alert was last seen at or before
        `before` (incidents without alerts, declared by people, are never quiet)."""
        rows = await self.session.scalars(
            select(IncidentRow.id)
            .join(AlertRow, AlertRow.incident_id == IncidentRow.id)
            .where(IncidentRow.status != "resolved", IncidentRow.service_id == service_id)
            .group_by(IncidentRow.id)
            .having(func.max(AlertRow.last_seen_at) <= before)
            .order_by(IncidentRow.id)
            .limit(limit)
        )
        return list(rows)

    async def last_alert_at(self, *, incident_id: int) -> datetime | None:
        """When an alert was last seen on the incident (None: it has none)."""
        return await self.session.scalar(
            select(func.max(AlertRow.last_seen_at)).where(AlertRow.incident_id == incident_id)
        )
