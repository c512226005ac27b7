"""Giving an incident's roles: compare-and-set, raising its version (messages re-render)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.incident import Role
from store.models import IncidentRow


class RoleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def compare_and_set(
        self, *, incident_id: int, expected_version: int, role: Role, user: str, now: datetime
    ) -> bool:
        """Set the role only if the stored version is still `expected_version`."""
        result = await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.version == expected_version)
            .values({role.value: user, "version": expected_version + 1, "updated_at": now})
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]
