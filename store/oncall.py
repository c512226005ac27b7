"""Repositories for on-call state: overrides, escalations, pages, DM channels and handoffs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.oncall import StoredOverride
from bot.errors import NotFound
from store.models import (
    DmChannelRow,
    EscalationRow,
    HandoffRow,
    OverrideRow,
    PageRow,
    ScheduleStateRow,
)
from store.session import insert_or_ignore


def _override(row: OverrideRow) -> StoredOverride:
    return StoredOverride(
        id=row.id,
        schedule_id=row.schedule_id,
        user=row.user,
        start=row.start,
        end=row.end,
        created_at=row.created_at,
        created_by=row.created_by,
    )


class OverrideRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        schedule_id: str,
        user: str,
        start: datetime,
        end: datetime,
        now: datetime,
        created_by: str,
    ) -> StoredOverride:
        row = OverrideRow(
            schedule_id=schedule_id,
            user=user,
            start=start,
            end=end,
            created_at=now,
            created_by=created_by,
        )
        self.session.add(row)
        await self.session.flush()
        return _override(row)

    async def active_or_future(
        self, *, now: datetime, schedule_id: str | None = None
    ) -> list[StoredOverride]:
        """Overrides not yet over, soonest first."""
        query = select(OverrideRow).where(OverrideRow.end > now)
        if schedule_id:
            query = query.where(OverrideRow.schedule_id == schedule_id)
        rows = await self.session.scalars(query.order_by(OverrideRow.start, OverrideRow.id))
        return [_override(r) for r in rows]

    async def overlapping(
        self, *, schedule_id: str, start: datetime, end: datetime
    ) -> list[StoredOverride]:
        rows = await self.session.scalars(
            select(OverrideRow).where(
                OverrideRow.schedule_id == schedule_id,
                OverrideRow.start < end,
                OverrideRow.end > start,
            )
        )
        return [_override(r) for r in rows]

    async def remove(self, *, override_id: int) -> StoredOverride:
        row = await self.session.get(OverrideRow, override_id)
        if row is None:
            raise NotFound(f"no override #{override_id}; `/oncall overrides` lists them")
        stored = _override(row)
        await self.session.execute(delete(OverrideRow).where(OverrideRow.id == override_id))
        return stored


@dataclass(frozen=True, slots=True)
class EscalationState:
    incident_id: int
    policy_id: str
    level: int
    cycle: int
    status: str
    next_at: datetime | None


class EscalationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, *, incident_id: int, policy_id: str, now: datetime) -> None:
        self.session.add(
            EscalationRow(
                incident_id=incident_id,
                policy_id=policy_id,
                level=0,
                cycle=0,
                status="active",
                next_at=None,
                version=0,
                updated_at=now,
            )
        )
        await self.session.flush()

    async def get(self, *, incident_id: int, lock: bool = False) -> EscalationState | None:
        query = select(EscalationRow).where(EscalationRow.incident_id == incident_id)
        if lock:
            query = query.with_for_update()
        row = await self.session.scalar(query.execution_options(populate_existing=True))
        return _escalation(row) if row else None

    async def oldest_due(self, *, now: datetime) -> datetime | None:
        """The earliest deadline of an active escalation that has passed (None: none has)."""
        return await self.session.scalar(
            select(func.min(EscalationRow.next_at)).where(
                EscalationRow.status == "active", EscalationRow.next_at <= now
            )
        )

    async def due(self, *, now: datetime, limit: int) -> list[EscalationState]:
        """Active escalations whose deadline has passed, locked (other replicas skip them)."""
        rows = await self.session.scalars(
            select(EscalationRow)
            .where(EscalationRow.status == "active", EscalationRow.next_at <= now)
            .order_by(EscalationRow.next_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return [_escalation(r) for r in rows]

    async def advance(
        self,
        *,
        incident_id: int,
        level: int,
        cycle: int,
        status: str,
        next_at: datetime | None,
        now: datetime,
        expect: tuple[int, int] | None = None,
    ) -> bool:
        """Move to (level, cycle); with `expect`, only from that (level, cycle)."""
        query = update(EscalationRow).where(EscalationRow.incident_id == incident_id)
        if expect is not None:
            query = query.where(EscalationRow.level == expect[0], EscalationRow.cycle == expect[1])
        result = await self.session.execute(
            query.values(
                level=level,
                cycle=cycle,
                status=status,
                next_at=next_at,
                version=EscalationRow.version + 1,
                updated_at=now,
            ).execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def switch_policy(self, *, incident_id: int, policy_id: str, now: datetime) -> None:
        """Escalate by another policy from now on (its first level is paged next)."""
        await self.session.execute(
            update(EscalationRow)
            .where(EscalationRow.incident_id == incident_id)
            .values(policy_id=policy_id, version=EscalationRow.version + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    async def stop(self, *, incident_id: int, now: datetime) -> bool:
        result = await self.session.execute(
            update(EscalationRow)
            .where(EscalationRow.incident_id == incident_id, EscalationRow.status == "active")
            .values(
                status="stopped", next_at=None, version=EscalationRow.version + 1, updated_at=now
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def _escalation(row: EscalationRow) -> EscalationState:
    return EscalationState(
        incident_id=row.incident_id,
        policy_id=row.policy_id,
        level=row.level,
        cycle=row.cycle,
        status=row.status,
        next_at=row.next_at,
    )


@dataclass(frozen=True, slots=True)
class Page:
    id: int
    incident_id: int
    cycle: int
    level: int
    step: int
    target: str
    kind: str
    via: str
    paged_at: datetime
    scheduled_at: datetime
    dm_channel: str | None
    dm_ts: str | None
    dm_version: int


def _page(row: PageRow) -> Page:
    return Page(
        id=row.id,
        incident_id=row.incident_id,
        cycle=row.cycle,
        level=row.level,
        step=row.step,
        target=row.target,
        kind=row.kind,
        via=row.via,
        paged_at=row.paged_at,
        scheduled_at=row.scheduled_at,
        dm_channel=row.dm_channel,
        dm_ts=row.dm_ts,
        dm_version=row.dm_version,
    )


class PageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        incident_id: int,
        cycle: int,
        level: int,
        step: int,
        target: str,
        kind: str,
        via: str,
        paged_at: datetime,
        scheduled_at: datetime,
        dm_version: int = 0,
    ) -> int | None:
        """Record a page; None when this step already paged this target (exactly once)."""
        page_id = await insert_or_ignore(
            self.session,
            PageRow,
            {
                "incident_id": incident_id,
                "cycle": cycle,
                "level": level,
                "step": step,
                "target": target,
                "kind": kind,
                "via": via,
                "paged_at": paged_at,
                "scheduled_at": scheduled_at,
                "dm_version": dm_version,
            },
        )
        return int(page_id) if page_id is not None else None

    async def get(self, *, page_id: int) -> Page:
        row = await self.session.get(PageRow, page_id, populate_existing=True)
        if row is None:
            raise NotFound(f"no page {page_id}")
        return _page(row)

    async def for_incident(self, *, incident_id: int) -> list[Page]:
        rows = await self.session.scalars(
            select(PageRow).where(PageRow.incident_id == incident_id).order_by(PageRow.id)
        )
        return [_page(r) for r in rows]

    async def last_step(self, *, incident_id: int, cycle: int, level: int) -> int:
        rows = await self.session.scalars(
            select(PageRow.step).where(
                PageRow.incident_id == incident_id, PageRow.cycle == cycle, PageRow.level == level
            )
        )
        return max(rows.all(), default=-1)

    async def set_dm(self, *, page_id: int, channel: str, ts: str, version: int) -> None:
        await self.session.execute(
            update(PageRow)
            .where(PageRow.id == page_id)
            .values(dm_channel=channel, dm_ts=ts, dm_version=version)
            .execution_options(synchronize_session=False)
        )

    async def mark_dm_rendered(self, *, page_id: int, version: int) -> None:
        await self.session.execute(
            update(PageRow)
            .where(PageRow.id == page_id, PageRow.dm_version <= version)
            .values(dm_version=version)
            .execution_options(synchronize_session=False)
        )

    async def waiting_for_dm(self, *, target: str, since: datetime, limit: int) -> list[Page]:
        """The person's pages since `since` whose DM is not sent yet, oldest first."""
        rows = await self.session.scalars(
            select(PageRow)
            .where(
                PageRow.target == target,
                PageRow.dm_ts.is_(None),
                PageRow.kind == "user",
                PageRow.paged_at >= since,
            )
            .order_by(PageRow.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return [_page(r) for r in rows]

    async def sharing_dm(self, *, target: str, channel: str, ts: str) -> list[Page]:
        """Every page one DM shows (several when it is a bundle), oldest first."""
        rows = await self.session.scalars(
            select(PageRow)
            .where(PageRow.target == target, PageRow.dm_ts == ts, PageRow.dm_channel == channel)
            .order_by(PageRow.id)
            .execution_options(populate_existing=True)
        )
        return [_page(r) for r in rows]


@dataclass(frozen=True, slots=True)
class DmChannel:
    """A person's DM channel with the bot; `channel_id` is None until it is first opened.

    `abandoned`: when the lease just taken had ended, if it was left to expire instead of
    released (its holder died mid-turn): DMs posted under it may not be recorded."""

    user: str
    channel_id: str | None
    abandoned: datetime | None = None


class DmChannelRepository:
    """Each person's DM channel, remembered, and the lease of whoever is sending to it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, user: str) -> DmChannel | None:
        row = await self.session.get(DmChannelRow, user, populate_existing=True)
        return DmChannel(user=row.user_id, channel_id=row.channel_id) if row else None

    async def take_lease(self, *, user: str, now: datetime, until: datetime) -> DmChannel | None:
        """Take the person's send lease until `until`; None while someone else holds it."""
        await insert_or_ignore(self.session, DmChannelRow, {"user_id": user})
        before = await self.session.scalar(
            select(DmChannelRow.lease_until).where(DmChannelRow.user_id == user).with_for_update()
        )
        result = await self.session.execute(
            update(DmChannelRow)
            .where(
                DmChannelRow.user_id == user,
                or_(DmChannelRow.lease_until.is_(None), DmChannelRow.lease_until < now),
            )
            .values(lease_until=until)
            .returning(DmChannelRow.channel_id)
            .execution_options(synchronize_session=False)
        )
        row = result.first()
        if row is None:
            return None
        return DmChannel(user=user, channel_id=row[0], abandoned=before)

    async def release_lease(self, *, user: str) -> None:
        await self.session.execute(
            update(DmChannelRow)
            .where(DmChannelRow.user_id == user)
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )

    async def abandon_lease(self, *, user: str, now: datetime) -> None:
        """End the lease as expired rather than released: the next holder looks for what
        this one may have posted (`DmChannel.abandoned`)."""
        await self.session.execute(
            update(DmChannelRow)
            .where(DmChannelRow.user_id == user)
            .values(lease_until=now)
            .execution_options(synchronize_session=False)
        )

    async def remember(self, *, user: str, channel_id: str, now: datetime) -> None:
        """Record the channel conversations.open gave for the person."""
        await self.session.execute(
            update(DmChannelRow)
            .where(DmChannelRow.user_id == user)
            .values(channel_id=channel_id, opened_at=now)
            .execution_options(synchronize_session=False)
        )

    async def forget(self, *, user: str, channel_id: str) -> None:
        """Slack no longer knows `channel_id`: the next page opens the DM again."""
        await self.session.execute(
            update(DmChannelRow)
            .where(DmChannelRow.user_id == user, DmChannelRow.channel_id == channel_id)
            .values(channel_id=None, opened_at=None)
            .execution_options(synchronize_session=False)
        )


class HandoffRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def checked_until_all(self) -> dict[str, datetime]:
        """How far each schedule's handoffs are recorded (schedules never swept are absent);
        a plain read, no lock."""
        rows = await self.session.execute(
            select(ScheduleStateRow.schedule_id, ScheduleStateRow.handoffs_checked_until)
        )
        return {schedule_id: until for schedule_id, until in rows}

    async def checked_until(self, *, schedule_id: str, now: datetime) -> datetime:
        """How far this schedule's handoffs are recorded (first sight: now), row locked."""
        await insert_or_ignore(
            self.session,
            ScheduleStateRow,
            {"schedule_id": schedule_id, "handoffs_checked_until": now},
        )
        row = await self.session.scalar(
            select(ScheduleStateRow)
            .where(ScheduleStateRow.schedule_id == schedule_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None
        return row.handoffs_checked_until

    async def set_checked_until(self, *, schedule_id: str, until: datetime) -> None:
        await self.session.execute(
            update(ScheduleStateRow)
            .where(ScheduleStateRow.schedule_id == schedule_id)
            .values(handoffs_checked_until=until)
            .execution_options(synchronize_session=False)
        )

    async def record(
        self, *, schedule_id: str, at: datetime, outgoing: str, incoming: str, now: datetime
    ) -> bool:
        """Record a handoff; False when it was recorded before (exactly once)."""
        key = await insert_or_ignore(
            self.session,
            HandoffRow,
            {
                "schedule_id": schedule_id,
                "at": at,
                "outgoing": outgoing,
                "incoming": incoming,
                "recorded_at": now,
            },
        )
        return key is not None
