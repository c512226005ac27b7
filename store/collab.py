"""Status updates (on the incident row, with their reminder deadline) and follow-ups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.records import Followup
from store.models import FollowupRow, IncidentRow


class UpdateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        incident_id: int,
        expected_version: int,
        status: str,
        summary: str,
        now: datetime,
        due_at: datetime | None,
    ) -> bool:
        """Make this the incident's latest update (compare-and-set on its version)."""
        result = await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.version == expected_version)
            .values(
                update_status=status,
                update_summary=summary,
                last_update_at=now,
                update_due_at=due_at,
                version=expected_version + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def retitle(
        self, *, incident_id: int, expected_version: int, title: str, now: datetime
    ) -> bool:
        """Change the title (compare-and-set on the version)."""
        result = await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id, IncidentRow.version == expected_version)
            .values(title=title, version=expected_version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def set_due(self, *, incident_id: int, due_at: datetime | None) -> None:
        """When the next reminder is due (None: never)."""
        await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id)
            .values(update_due_at=due_at)
            .execution_options(synchronize_session=False)
        )

    async def due(self, *, now: datetime, limit: int) -> list[int]:
        """Open incidents whose reminder is due, locked (other replicas skip them)."""
        rows = await self.session.scalars(
            select(IncidentRow.id)
            .where(IncidentRow.update_due_at <= now, IncidentRow.status != "resolved")
            .order_by(IncidentRow.update_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows.all())


class ArchiveRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def set_at(self, *, incident_id: int, at: datetime | None) -> None:
        """When the incident's channel is archived (None: not)."""
        await self.session.execute(
            update(IncidentRow)
            .where(IncidentRow.id == incident_id)
            .values(archive_at=at)
            .execution_options(synchronize_session=False)
        )

    async def claim_due(self, *, now: datetime, limit: int) -> list[int]:
        """Resolved incidents whose channel is due to be archived, taken off the schedule in
        the caller's transaction (locked rows are another replica's)."""
        ids = list(
            (
                await self.session.scalars(
                    select(IncidentRow.id)
                    .where(IncidentRow.archive_at <= now, IncidentRow.status == "resolved")
                    .order_by(IncidentRow.archive_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if ids:
            await self.session.execute(
                update(IncidentRow)
                .where(IncidentRow.id.in_(ids))
                .values(archive_at=None)
                .execution_options(synchronize_session=False)
            )
        return ids


def _followup(row: FollowupRow) -> Followup:
    return Followup(
        id=row.id,
        incident_id=row.incident_id,
        text=row.text,
        owner=row.owner,
        created_by=row.created_by,
        created_at=row.created_at,
        done_at=row.done_at,
    )


class FollowupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, *, incident_id: int, text: str, owner: str | None, by: str, now: datetime
    ) -> Followup:
        row = FollowupRow(
            incident_id=incident_id, text=text, owner=owner, created_by=by, created_at=now
        )
        self.session.add(row)
        await self.session.flush()
        return _followup(row)

    async def set_done(
        self, *, followup_id: int, done_at: datetime | None
    ) -> tuple[Followup, bool] | None:
        """Mark the follow-up done (`done_at`) or open again (None), locked for the change;
        (it, whether it changed), or None when there is no such follow-up."""
        row = await self.session.scalar(
            select(FollowupRow).where(FollowupRow.id == followup_id).with_for_update()
        )
        if row is None:
            return None
        if (row.done_at is None) == (done_at is None):
            return _followup(row), False
        row.done_at = done_at
        await self.session.flush()
        return _followup(row), True

    async def for_incident(self, *, incident_id: int) -> list[Followup]:
        rows = await self.session.scalars(
            select(FollowupRow)
            .where(FollowupRow.incident_id == incident_id)
            .order_by(FollowupRow.id)
        )
        return [_followup(r) for r in rows]

    async def open(self, *, limit: int) -> tuple[list[Followup], int]:
        """Open follow-ups across incidents, oldest first, and how many there are."""
        rows = await self.session.scalars(
            select(FollowupRow)
            .where(FollowupRow.done_at.is_(None))
            .order_by(FollowupRow.id)
            .limit(limit)
        )
        total = await self.session.scalar(
            select(func.count()).select_from(FollowupRow).where(FollowupRow.done_at.is_(None))
        )
        return [_followup(r) for r in rows], int(total or 0)
