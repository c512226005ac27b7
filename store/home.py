"""Reads for the App Home dashboard that no other repository answers: who was paged for what."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import PageRow


class HomeRepository:
    """Dashboard queries over one session; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def paged_users(self, *, incident_ids: Sequence[int]) -> dict[int, frozenset[str]]:
        """The users paged (directly or via a schedule) for each of these incidents.

        Incidents nobody was paged for are left out; user groups are not users.
        """
        if not incident_ids:
            return {}
        result = await self.session.execute(
            select(PageRow.incident_id, PageRow.target).where(
                PageRow.incident_id.in_(incident_ids), PageRow.kind == "user"
            )
        )
        found: dict[int, set[str]] = {}
        for incident_id, target in result.all():
            found.setdefault(int(incident_id), set()).add(str(target))
        return {k: frozenset(v) for k, v in found.items()}


__all__ = ["HomeRepository"]
