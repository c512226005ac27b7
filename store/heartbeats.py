"""Heartbeats' pings and deadlines: recorded by pings, claimed by the missed-heartbeat sweep."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import HeartbeatRow

UP = "up"
MISSED = "missed"


@dataclass(frozen=True, slots=True)
class HeartbeatState:
    name: str
    status: str  # up | missed
    last_ping_at: datetime
    due_at: datetime
    missed_at: datetime | None
    pings: int


def _state(row: HeartbeatRow) -> HeartbeatState:
    return HeartbeatState(
        name=row.name,
        status=row.status,
        last_ping_at=row.last_ping_at,
        due_at=row.due_at,
        missed_at=row.missed_at,
        pings=row.pings,
    )


class HeartbeatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, name: str) -> HeartbeatState | None:
        row = await self.session.get(HeartbeatRow, name, populate_existing=True)
        return None if row is None else _state(row)

    async def record_ping(self, *, name: str, now: datetime, due_at: datetime) -> str | None:
        """Record a ping (the heartbeat is up until `due_at`); return the status it had before
        (None: its first ping). Two first pings at once: one insert loses on the primary key
        and its transaction is retried."""
        row = await self.session.scalar(
            select(HeartbeatRow)
            .where(HeartbeatRow.name == name)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if row is None:
            self.session.add(
                HeartbeatRow(
                    name=name, status=UP, last_ping_at=now, due_at=due_at, missed_at=None, pings=1
                )
            )
            await self.session.flush()
            return None
        before = row.status
        row.status, row.last_ping_at, row.due_at, row.pings = UP, now, due_at, row.pings + 1
        await self.session.flush()
        return before

    async def claim_due(
        self, *, names: Collection[str], now: datetime, limit: int
    ) -> list[HeartbeatState]:
        """Up heartbeats among `names` whose deadline has passed, locked (other replicas skip
        them); the caller marks each missed in the same transaction."""
        if not names:
            return []
        rows = await self.session.scalars(
            select(HeartbeatRow)
            .where(
                HeartbeatRow.status == UP,
                HeartbeatRow.due_at <= now,
                HeartbeatRow.name.in_(list(names)),
            )
            .order_by(HeartbeatRow.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return [_state(r) for r in rows]

    async def mark_missed(self, *, name: str, now: datetime) -> bool:
        """Up → missed; False when another transaction got there first."""
        result = await self.session.execute(
            update(HeartbeatRow)
            .where(HeartbeatRow.name == name, HeartbeatRow.status == UP)
            .values(status=MISSED, missed_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]
