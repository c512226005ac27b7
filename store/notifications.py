"""Notifications beyond Slack: planned with a page, claimed for sending, finished, cancelled.

Keyword-only queries over one session; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import NotFound
from store.models import NotificationRow, OutboxRow

OPEN = ("pending", "sending")


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    incident_id: int
    page_id: int
    user: str
    method_id: str
    method_type: str
    destination: str
    status: str
    due_at: datetime
    sent_at: datetime | None
    provider_id: str | None
    link_used_at: datetime | None


def _of(row: NotificationRow) -> Notification:
    return Notification(
        id=row.id,
        incident_id=row.incident_id,
        page_id=row.page_id,
        user=row.user,
        method_id=row.method_id,
        method_type=row.method_type,
        destination=row.destination,
        status=row.status,
        due_at=row.due_at,
        sent_at=row.sent_at,
        provider_id=row.provider_id,
        link_used_at=row.link_used_at,
    )


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        incident_id: int,
        page_id: int,
        user: str,
        method_id: str,
        method_type: str,
        destination: str,
        due_at: datetime,
        now: datetime,
    ) -> int:
        row = NotificationRow(
            incident_id=incident_id,
            page_id=page_id,
            user=user,
            method_id=method_id,
            method_type=method_type,
            destination=destination,
            status="pending",
            due_at=due_at,
            created_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id

    async def get(self, *, notification_id: int) -> Notification:
        row = await self.session.get(NotificationRow, notification_id)
        if row is None:
            raise NotFound(f"no notification {notification_id}")
        return _of(row)

    async def lock_person(self, *, user: str, method_type: str) -> None:
        """Serialise, until the transaction ends, the throttle checks of one person and
        method type across replicas (PostgreSQL; SQLite has one writer at a time)."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"pulseops-notify:{user}:{method_type}"},
            )

    async def start_sending(self, *, notification_id: int, now: datetime) -> Notification | None:
        """pending → sending, counted as sent from now on (a redelivery finds it `sending`);
        None when it is finished or cancelled meanwhile."""
        await self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id, NotificationRow.status == "pending")
            .values(status="sending", sent_at=now)
            .execution_options(synchronize_session=False)
        )
        row = await self.session.get(NotificationRow, notification_id, populate_existing=True)
        if row is None or row.status != "sending":
            return None
        return _of(row)

    async def finish(
        self,
        *,
        notification_id: int,
        status: str,
        now: datetime,
        provider_id: str | None = None,
        error: str | None = None,
    ) -> None:
        values: dict[str, object] = {"status": status, "finished_at": now, "error": error}
        if status in ("failed", "cancelled", "throttled"):
            values["sent_at"] = None  # it rang nobody: not counted by the throttle
        if provider_id is not None:
            values["provider_id"] = provider_id
        await self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def mark_summarised(self, *, notification_ids: list[int]) -> None:
        """Throttled notifications that a later one summarised (not summarised again)."""
        if not notification_ids:
            return
        await self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id.in_(notification_ids))
            .values(status="summarised")
            .execution_options(synchronize_session=False)
        )

    async def back_to_pending(self, *, notification_id: int, error: str) -> None:
        """A failed try that will be retried: it can still be cancelled meanwhile."""
        await self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id, NotificationRow.status == "sending")
            .values(status="pending", sent_at=None, error=error[:2000])
            .execution_options(synchronize_session=False)
        )

    async def cancel_open(self, *, incident_id: int, now: datetime) -> list[Notification]:
        """Cancel the incident's notifications not yet sent; return them. Their outbox rows
        are completed too (one in flight finds its notification cancelled)."""
        rows = (
            await self.session.scalars(
                select(NotificationRow)
                .where(
                    NotificationRow.incident_id == incident_id,
                    NotificationRow.status == "pending",
                )
                .order_by(NotificationRow.id)
            )
        ).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        await self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id.in_(ids), NotificationRow.status == "pending")
            .values(status="cancelled", finished_at=now)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.incident_id == incident_id,
                OutboxRow.kind == "notify",
                OutboxRow.status == "pending",
                OutboxRow.claimed_until.is_(None),
            )
            .values(status="done", done_at=now, last_error="cancelled")
            .execution_options(synchronize_session=False)
        )
        return [_of(r) for r in rows]

    async def sent_since(self, *, user: str, method_type: str, since: datetime) -> int:
        """How many notifications of this type the person was sent since `since`."""
        count = await self.session.scalar(
            select(func.count()).where(
                NotificationRow.user == user,
                NotificationRow.method_type == method_type,
                NotificationRow.sent_at >= since,
            )
        )
        return int(count or 0)

    async def throttled_since(
        self, *, user: str, method_type: str, since: datetime
    ) -> list[Notification]:
        rows = await self.session.scalars(
            select(NotificationRow)
            .where(
                NotificationRow.user == user,
                NotificationRow.method_type == method_type,
                NotificationRow.status == "throttled",
                NotificationRow.finished_at >= since,
            )
            .order_by(NotificationRow.id)
        )
        return [_of(r) for r in rows.all()]

    async def latest_to(self, *, method_type: str, destination: str) -> Notification | None:
        """The last notification of this type sent to this number or address."""
        row = await self.session.scalar(
            select(NotificationRow)
            .where(
                NotificationRow.method_type == method_type,
                NotificationRow.destination == destination,
                NotificationRow.sent_at.is_not(None),
            )
            .order_by(NotificationRow.sent_at.desc(), NotificationRow.id.desc())
            .limit(1)
        )
        return None if row is None else _of(row)

    async def use_link(self, *, notification_id: int, now: datetime) -> bool:
        """Mark the e-mail's acknowledge link used; False when it was used before."""
        result = await self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id, NotificationRow.link_used_at.is_(None))
            .values(link_used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def by_provider_id(self, *, provider_id: str) -> Notification | None:
        row = await self.session.scalar(
            select(NotificationRow).where(NotificationRow.provider_id == provider_id)
        )
        return None if row is None else _of(row)

    async def others_sending(self, *, notification: Notification) -> int:
        """How many other notifications of the same type to the same destination are being
        sent now (taken, not finished): a provider's log cannot tell their messages apart."""
        count = await self.session.scalar(
            select(func.count()).where(
                NotificationRow.method_type == notification.method_type,
                NotificationRow.destination == notification.destination,
                NotificationRow.status == "sending",
                NotificationRow.id != notification.id,
            )
        )
        return int(count or 0)

    async def list(self, *, incident_id: int) -> list[Notification]:
        rows = await self.session.scalars(
            select(NotificationRow)
            .where(NotificationRow.incident_id == incident_id)
            .order_by(NotificationRow.id)
        )
        return [_of(r) for r in rows.all()]
