"""Delivery bookkeeping: the Slack outbox queue and webhook idempotency keys.

Keyword-only queries over one session; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import IdempotencyRow, OutboxRow


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A claimed row. `interrupted`: an earlier delivery of it never finished (its worker died
    or lost the lease), so Slack may have done work that is not on record."""

    id: int
    incident_id: int | None
    kind: str
    payload: dict[str, Any]
    progress: dict[str, Any]
    attempts: int
    created_at: datetime
    interrupted: bool = False


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(
        self,
        *,
        kind: str,
        now: datetime,
        incident_id: int | None = None,
        payload: dict[str, Any] | None = None,
        due_at: datetime | None = None,
    ) -> None:
        """Add a row, delivered from `due_at` (default: now)."""
        self.session.add(
            OutboxRow(
                incident_id=incident_id,
                kind=kind,
                payload=payload or {},
                progress={},
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=due_at or now,
            )
        )

    async def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        worker: str,
        limit: int,
        first_kinds: Sequence[str] = (),
    ) -> list[OutboxItem]:
        """Claim up to `limit` due rows for `worker`, kinds in `first_kinds` first (in that
        order); others skip them until the lease ends.

        A finished delivery clears its claim; a row whose claim is still set when it is
        claimed again was left by a delivery that never finished (`OutboxItem.interrupted`).
        """
        claimable = and_(
            OutboxRow.status == "pending",
            OutboxRow.next_attempt_at <= now,
            or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now),
        )
        order: list[Any] = [OutboxRow.next_attempt_at, OutboxRow.id]
        if first_kinds:  # those kinds first, in the order given
            rank = {kind: n for n, kind in enumerate(first_kinds)}
            order.insert(0, case(rank, value=OutboxRow.kind, else_=len(rank)))
        due = (
            select(OutboxRow.id, OutboxRow.claimed_until.is_not(None))
            .where(claimable)
            .order_by(*order)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        interrupted = {row_id: bool(left) for row_id, left in (await self.session.execute(due))}
        ids = list(interrupted)
        if not ids:
            return []
        result = await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids), claimable)
            .values(claimed_until=lease_until, claimed_by=worker, attempts=OutboxRow.attempts + 1)
            .returning(
                OutboxRow.id,
                OutboxRow.incident_id,
                OutboxRow.kind,
                OutboxRow.payload,
                OutboxRow.progress,
                OutboxRow.attempts,
                OutboxRow.created_at,
            )
            .execution_options(synchronize_session=False)
        )
        items = [
            OutboxItem(
                id=r.id,
                incident_id=r.incident_id,
                kind=r.kind,
                payload=r.payload,
                progress=r.progress,
                attempts=r.attempts,
                created_at=r.created_at,
                interrupted=interrupted[r.id],
            )
            for r in result.all()
        ]
        return sorted(items, key=lambda i: i.id)

    async def renew(self, *, item_ids: Sequence[int], worker: str, until: datetime) -> int:
        """Extend `worker`'s claims on these rows to `until`; return how many it still held.

        Rows it completed, rescheduled or lost to another worker meanwhile are left alone.
        """
        if not item_ids:
            return 0
        result = await self.session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id.in_(list(item_ids)),
                OutboxRow.claimed_by == worker,
                OutboxRow.claimed_until.is_not(None),
                OutboxRow.status == "pending",
            )
            .values(claimed_until=until)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def claimers(self, *, now: datetime) -> list[str]:
        """The workers holding unexpired claims on undelivered rows."""
        rows = await self.session.scalars(
            select(OutboxRow.claimed_by)
            .where(
                OutboxRow.status == "pending",
                OutboxRow.claimed_until >= now,
                OutboxRow.claimed_by.is_not(None),
            )
            .distinct()
        )
        return [str(worker) for worker in rows.all()]

    async def release(self, *, workers: Sequence[str], now: datetime) -> int:
        """Make the rows these (dead) workers claimed claimable now; return how many.

        The claim is expired rather than cleared, so the next claim sees the delivery was
        interrupted.
        """
        if not workers:
            return 0
        result = await self.session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.claimed_by.in_(list(workers)),
                OutboxRow.claimed_until.is_not(None),
                OutboxRow.status == "pending",
            )
            .values(claimed_until=now - timedelta(microseconds=1))
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def complete(self, *, item_id: int, now: datetime, progress: dict[str, Any]) -> None:
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == item_id)
            .values(
                status="done", done_at=now, claimed_until=None, last_error=None, progress=progress
            )
            .execution_options(synchronize_session=False)
        )

    async def save_progress(self, *, item_id: int, progress: dict[str, Any]) -> None:
        """Record a claimed row's progress without completing or releasing it."""
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == item_id)
            .values(progress=dict(progress))
            .execution_options(synchronize_session=False)
        )

    async def retry_later(
        self, *, item_id: int, at: datetime, error: str, progress: dict[str, Any]
    ) -> None:
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == item_id)
            .values(
                next_attempt_at=at, claimed_until=None, last_error=error[:2000], progress=progress
            )
            .execution_options(synchronize_session=False)
        )

    async def fail(self, *, item_id: int, now: datetime, error: str) -> None:
        await self.session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == item_id)
            .values(status="dead", done_at=now, claimed_until=None, last_error=error[:2000])
            .execution_options(synchronize_session=False)
        )

    async def undelivered_before(self, *, incident_id: int, row_id: int) -> int:
        """How many of the incident's rows recorded before `row_id` are still undelivered
        (claimed by any worker, or waiting for a retry)."""
        count = await self.session.scalar(
            select(func.count()).where(
                OutboxRow.incident_id == incident_id,
                OutboxRow.id < row_id,
                OutboxRow.status == "pending",
            )
        )
        return int(count or 0)

    async def depth(self) -> tuple[int, datetime | None]:
        """Number of undelivered rows and the creation time of the oldest."""
        row = (
            await self.session.execute(
                select(func.count(), func.min(OutboxRow.created_at)).where(
                    OutboxRow.status == "pending"
                )
            )
        ).one()
        return int(row[0]), row[1]

    async def oldest_due(self, *, now: datetime) -> datetime | None:
        """When the longest-waiting row due for delivery became due (None: nothing is due)."""
        return await self.session.scalar(
            select(func.min(OutboxRow.next_attempt_at)).where(
                OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now
            )
        )


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What a delivery with an Idempotency-Key was answered, to replay for the same body."""

    body_sha256: str
    status: int
    body: dict[str, Any]


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, integration: str, key: str, now: datetime) -> StoredAnswer | None:
        """The answer recorded for an unexpired Idempotency-Key, or None."""
        row = await self.session.scalar(
            select(IdempotencyRow).where(
                IdempotencyRow.integration == integration,
                IdempotencyRow.key == key,
                IdempotencyRow.expires_at > now,
            )
        )
        if row is None:
            return None
        return StoredAnswer(
            body_sha256=row.body_sha256, status=row.status_code, body=dict(row.response)
        )

    async def put(
        self,
        *,
        integration: str,
        key: str,
        body_sha256: str,
        status_code: int,
        response: dict[str, Any],
        now: datetime,
        expires_at: datetime,
    ) -> None:
        # an expired row with the same key is replaced
        await self.session.execute(
            delete(IdempotencyRow).where(
                IdempotencyRow.integration == integration,
                IdempotencyRow.key == key,
                IdempotencyRow.expires_at <= now,
            )
        )
        self.session.add(
            IdempotencyRow(
                integration=integration,
                key=key,
                body_sha256=body_sha256,
                status_code=status_code,
                response=response,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await self.session.flush()

    async def purge(self, *, now: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyRow).where(IdempotencyRow.expires_at <= now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
