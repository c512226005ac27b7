"""Changing an incident's severity: compare-and-set, raising its version (messages re-render)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import Severity
from store.models import IncidentRow


class SeverityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def raise_to(
        self, *, incident_id: int, severity: Severity, now: datetime
    ) -> Severity | None:
        """Raise the severity to `severity` if that is more severe; return the one it had.

        None when it was already as severe or more (severity never falls by itself).
        """
        before = await self.session.scalar(
            select(IncidentRow.severity).where(IncidentRow.id == incident_id)
        )
        if before is None or Severity(before).rank <= severity.rank:
            return None
        result = await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.severity == before)
            .values(severity=severity.value, version=IncidentRow.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return Severity(before) if result.rowcount == 1 else None  # type: ignore[attr-defined]

    async def compare_and_set(
        self, *, incident_id: int, expected_version: int, severity: Severity, now: datetime
    ) -> bool:
        """Set the severity only if the stored version is still `expected_version`."""
        result = await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.version == expected_version)
            .values(severity=severity.value, version=expected_version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]
