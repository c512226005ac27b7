"""SLOs over alert sources: each SLO's evaluation deadline, burn level and bad periods.

An evaluation is claimed by moving the SLO's `next_eval_at` ahead with a conditional UPDATE on
the value just read (the row locked with SKIP LOCKED on PostgreSQL), so on several replicas
each evaluation happens once. The bad time of a source comes from the stored alert history
(when each alert started firing and when it, or its incident, resolved); it is kept as merged
periods per SLO, so a window's bad seconds are one SQL sum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.dialect import elapsed_seconds
from store.models import AlertRow, IncidentRow, SloBadPeriodRow, SloStateRow
from store.session import insert_or_ignore


@dataclass(frozen=True, slots=True)
class Firing:
    """One stored alert's firing time, as far as it overlaps the time asked about."""

    start: datetime
    end: datetime
    labels: Mapping[str, Any]


class SloRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ensure(self, first_evals: Mapping[str, datetime]) -> None:
        """Create the rows of SLOs that have none yet, first due at the given instants."""
        known = set(
            await self.session.scalars(
                select(SloStateRow.id).where(SloStateRow.id.in_(list(first_evals)))
            )
        )
        for slo_id, at in first_evals.items():
            if slo_id not in known:
                await insert_or_ignore(
                    self.session,
                    SloStateRow,
                    {"id": slo_id, "next_eval_at": at, "evaluated_at": None, "burn_level": 0},
                )

    async def claim(self, slo_id: str, *, now: datetime, every: timedelta) -> SloStateRow | None:
        """The SLO's row, locked, when its evaluation is due (its deadline moved `every`
        ahead); None when it is not due or another replica holds it."""
        row = await self.session.scalar(
            select(SloStateRow)
            .where(SloStateRow.id == slo_id, SloStateRow.next_eval_at <= now)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if row is None:
            return None
        claimed = await self.session.execute(
            update(SloStateRow)
            .where(SloStateRow.id == slo_id, SloStateRow.next_eval_at == row.next_eval_at)
            .values(next_eval_at=now + every)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        await self.session.refresh(row)
        return row

    async def states(self, ids: Sequence[str]) -> dict[str, SloStateRow]:
        rows = await self.session.scalars(select(SloStateRow).where(SloStateRow.id.in_(ids)))
        return {r.id: r for r in rows}

    async def firing(
        self,
        *,
        since: datetime,
        now: datetime,
        integration: str | None,
        exclude: Sequence[str],
    ) -> list[Firing]:
        """The alerts (of `integration`, if given; never of `exclude`) that fired at some time
        in [since, now): each from when it first fired until it, or its incident, resolved."""
        ended = func.coalesce(AlertRow.resolved_at, IncidentRow.resolved_at)
        query = (
            select(AlertRow.first_seen_at, ended, AlertRow.labels)
            .join(IncidentRow, IncidentRow.id == AlertRow.incident_id)
            .where(
                AlertRow.first_seen_at < now,
                or_(ended.is_(None), ended > since),
                AlertRow.integration.not_in(list(exclude)),
            )
        )
        if integration is not None:
            query = query.where(AlertRow.integration == integration)
        rows = await self.session.execute(query)
        return [
            Firing(start=max(start, since), end=min(end or now, now), labels=labels or {})
            for start, end, labels in rows
        ]

    async def add_periods(self, slo_id: str, periods: Sequence[tuple[datetime, datetime]]) -> None:
        """Store bad periods (sorted, disjoint, all after the stored ones); one that starts
        where the last stored one ends extends it."""
        if not periods:
            return
        last = await self.session.scalar(
            select(SloBadPeriodRow)
            .where(SloBadPeriodRow.slo_id == slo_id)
            .order_by(SloBadPeriodRow.end.desc())
            .limit(1)
        )
        first, *rest = periods
        if last is not None and first[0] <= last.end:
            last.end = max(last.end, first[1])
        else:
            rest = [first, *rest]
        for start, end in rest:
            self.session.add(SloBadPeriodRow(slo_id=slo_id, start=start, end=end))
        await self.session.flush()

    async def bad_seconds(
        self, slo_id: str, *, now: datetime, windows: Sequence[timedelta]
    ) -> dict[timedelta, float]:
        """Seconds of bad time in each window ending `now` (one query)."""
        found = await self.bad_seconds_in(slo_id, [(now - w, now) for w in windows])
        return dict(zip(windows, found, strict=True))

    async def bad_seconds_in(
        self, slo_id: str, ranges: Sequence[tuple[datetime, datetime]]
    ) -> list[float]:
        """Seconds of stored bad time within each [start, end) of `ranges` (one query)."""
        if not ranges:
            return []
        columns = []
        for lo, hi in ranges:
            start = case((SloBadPeriodRow.start > lo, SloBadPeriodRow.start), else_=lo)
            end = case((SloBadPeriodRow.end < hi, SloBadPeriodRow.end), else_=hi)
            inside = and_(SloBadPeriodRow.end > lo, SloBadPeriodRow.start < hi)
            columns.append(func.sum(case((inside, elapsed_seconds(start, end)), else_=0.0)))
        row = (
            await self.session.execute(
                select(*columns).where(
                    SloBadPeriodRow.slo_id == slo_id,
                    SloBadPeriodRow.end > min(lo for lo, _ in ranges),
                    SloBadPeriodRow.start < max(hi for _, hi in ranges),
                )
            )
        ).one()
        return [max(float(row[i] or 0.0), 0.0) for i in range(len(ranges))]

    async def burn_alerts(
        self, *, since: datetime, until: datetime, fingerprints: Mapping[str, Sequence[str]]
    ) -> dict[str, int]:
        """How many burn alerts first fired in [since, until), by fingerprint: `fingerprints`
        maps an integration (`slos`, `probes`) to the fingerprints asked about. A burn that
        opens an incident is a new alert; a more urgent rule repeating it is not counted."""
        wanted = [
            and_(AlertRow.integration == integration, AlertRow.fingerprint.in_(list(prints)))
            for integration, prints in fingerprints.items()
            if prints
        ]
        if not wanted:
            return {}
        rows = await self.session.execute(
            select(AlertRow.fingerprint, func.count())
            .where(AlertRow.first_seen_at >= since, AlertRow.first_seen_at < until, or_(*wanted))
            .group_by(AlertRow.fingerprint)
        )
        return {str(fingerprint): int(count) for fingerprint, count in rows}

    async def forget(self, slo_id: str, *, before: datetime) -> None:
        """Drop bad periods that ended before `before` (outside every window)."""
        await self.session.execute(
            delete(SloBadPeriodRow).where(
                SloBadPeriodRow.slo_id == slo_id, SloBadPeriodRow.end < before
            )
        )


def union(spans: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The union of time spans as sorted, disjoint spans (empty spans left out)."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlap(spans: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> float:
    """Seconds of the disjoint `spans` that fall within [start, end) (0 when it is empty)."""
    if end <= start:
        return 0.0
    return sum(
        (min(e, end) - max(s, start)).total_seconds() for s, e in spans if e > start and s < end
    )


__all__ = ["Firing", "SloRepository", "overlap", "union"]
