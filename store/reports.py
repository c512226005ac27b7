"""The ledger of scheduled reports: one row per (scope, period start), recorded exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import OutboxRow, ReportRow
from store.session import insert_or_ignore


@dataclass(frozen=True, slots=True)
class StoredReport:
    scope: str
    period_start: datetime
    period_end: datetime
    recorded_at: datetime
    announced: bool


class ReportRepository:
    """The ledger of scheduled reports: one row per (scope, period start), never two."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, scope: str, period_start: datetime) -> StoredReport | None:
        row = await self.session.scalar(
            select(ReportRow)
            .where(ReportRow.scope == scope, ReportRow.period_start == period_start)
            .execution_options(populate_existing=True)
        )
        if row is None:
            return None
        return StoredReport(
            scope=row.scope,
            period_start=row.period_start,
            period_end=row.period_end,
            recorded_at=row.recorded_at,
            announced=row.announced,
        )

    async def last_end(self, *, scope: str) -> datetime | None:
        """The end of the latest period recorded for `scope` (None: never seen)."""
        value: datetime | None = await self.session.scalar(
            select(func.max(ReportRow.period_end)).where(ReportRow.scope == scope)
        )
        return value

    async def record(
        self,
        *,
        scope: str,
        period_start: datetime,
        period_end: datetime,
        now: datetime,
        announced: bool,
    ) -> bool:
        """Record a period's report; False when it was recorded before (exactly once)."""
        key = await insert_or_ignore(
            self.session,
            ReportRow,
            {
                "scope": scope,
                "period_start": period_start,
                "period_end": period_end,
                "recorded_at": now,
                "announced": announced,
            },
        )
        return key is not None

    async def announce(self, *, scope: str, period_start: datetime) -> bool:
        """Mark a silently recorded report as announced; False when it already was."""
        result = await self.session.execute(
            update(ReportRow)
            .where(
                ReportRow.scope == scope,
                ReportRow.period_start == period_start,
                ReportRow.announced.is_(False),
            )
            .values(announced=True)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    async def delivery(
        self, *, kind: str, scope: str, period_start: datetime
    ) -> tuple[str, str | None] | None:
        """(status, last error) of the newest outbox row delivering this report, or None."""
        rows = await self.session.execute(
            select(OutboxRow.payload, OutboxRow.status, OutboxRow.last_error)
            .where(OutboxRow.kind == kind)
            .order_by(OutboxRow.id.desc())
            .limit(100)
        )
        start = period_start.isoformat()
        for payload, status, error in rows:
            if payload.get("scope") == scope and payload.get("period_start") == start:
                return str(status), error
        return None


__all__ = ["ReportRepository", "StoredReport"]
