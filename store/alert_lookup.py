"""An integration's newest alert by its dedup key, with its incident's status (the drop-in
Opsgenie API's `GET /v2/alerts/{identifier}`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.records import AlertRecord
from store.incidents import to_alert
from store.models import AlertRow, IncidentRow


async def newest_alert(
    session: AsyncSession, *, integration: str, fingerprint: str
) -> tuple[AlertRecord, str] | None:
    """(the alert, its incident's status) of the newest alert `integration` sent with this
    `fingerprint`, or None."""
    found = (
        await session.execute(
            select(AlertRow, IncidentRow.status)
            .join(IncidentRow, IncidentRow.id == AlertRow.incident_id)
            .where(AlertRow.integration == integration, AlertRow.fingerprint == fingerprint)
            .order_by(AlertRow.id.desc())
            .limit(1)
        )
    ).first()
    if found is None:
        return None
    row, status = found
    return to_alert(row), str(status)
