"""Incident statistics in SQL aggregates: counts, MTTA/MTTR distributions, slowest, noisiest.

Nothing here loads incidents into Python: every figure is an aggregate over the incidents
opened in a window, computed by the database in a few statements (one per metric family).

Semantics, the one definition App Home, `/incident stats`, the weekly report and the API
show (the records are `bot.domain.insight`'s):

- The cohort of a window [since, until) is the incidents *triggered* in it.
- Everything is observed **as of `until`**: an acknowledgement, resolution or page after the
  window's end does not count, so the figures of a past window never change and a report
  re-computed after a restart (or posted late) says what it would have said on time.
- MTTA is triggered → acknowledged over the cohort's acknowledged incidents; MTTR is
  triggered → resolved over its resolved ones. Mean, median and p90, the percentiles by the
  nearest-rank method (the smallest value with at least p% of the values at or below it).
- auto-resolved: resolved by a monitor (`resolved_by` starts with "monitor:"); escalated: a
  page at an escalation level above the first (`pages.level > 0`).

The dialect difference (seconds between two timestamps) is the `elapsed_seconds` construct,
compiled once per backend in `store.dialect`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, distinct, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.insight import Distribution, Figures, NoisyAlert, SlowIncident
from store.dialect import elapsed_seconds, unindexed
from store.models import AlertRow, IncidentRow, PageRow
from store.types import UTCDateTime

GroupBy = Literal["service", "team", "severity", "category"]
GROUP_BY: tuple[GroupBy, ...] = ("service", "team", "severity", "category")

_GROUP_COLUMNS: dict[str, Any] = {
    "service": IncidentRow.service_id,
    "team": IncidentRow.team_id,
    "severity": IncidentRow.severity,
    "category": IncidentRow.category,
}


# --------------------------------------------------------------------------- queries


WIDE = 0.2
"""A window spanning more than this share of the incidents' history is read by a table scan."""


@dataclass(frozen=True, slots=True)
class Window:
    """Incidents triggered in [since, until), optionally of one team and/or service.

    `scan`: read the table sequentially instead of through the `triggered_at` index (set by
    `StatsRepository.plan` for wide windows).
    """

    since: datetime
    until: datetime
    team_id: str | None = None
    service_id: str | None = None
    scan: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        triggered: Any = (
            unindexed(IncidentRow.triggered_at) if self.scan else IncidentRow.triggered_at
        )
        conditions = [triggered >= self.since, triggered < self.until]
        if self.team_id is not None:
            conditions.append(IncidentRow.team_id == self.team_id)
        if self.service_id is not None:
            conditions.append(IncidentRow.service_id == self.service_id)
        return conditions

    def as_of(self) -> ColumnElement[datetime]:
        return literal(self.until, UTCDateTime())


def _before(column: Any, as_of: ColumnElement[datetime]) -> ColumnElement[bool]:
    return and_(column.is_not(None), column < as_of)


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


class StatsRepository:
    """Aggregate queries over one session; the caller owns the transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def plan(self, window: Window) -> Window:
        """`window`, set to scan the table when it spans most of the incidents' history.

        The history's extent comes from the two ends of the `triggered_at` index (instant);
        incidents are assumed spread evenly over it, which is close enough to pick a plan.
        """
        # two scalar subqueries: SQLite answers a lone min() or max() from the index's ends
        first, last = (
            await self.session.execute(
                select(
                    select(func.min(IncidentRow.triggered_at)).scalar_subquery(),
                    select(func.max(IncidentRow.triggered_at)).scalar_subquery(),
                )
            )
        ).one()
        if first is None or last is None or last <= first:
            return window
        overlap = min(window.until, last) - max(window.since, first)
        wide = overlap / (last - first) > WIDE
        return replace(window, scan=wide) if wide != window.scan else window

    async def figures(
        self, *, window: Window, group_by: GroupBy | None = None
    ) -> dict[str | None, Figures]:
        """The window's figures, overall (key None) or per group (service, team, severity or
        category)."""
        group = _GROUP_COLUMNS[group_by] if group_by else None
        return await self._figures(window.conditions(), group, window.as_of())

    async def overall(self, *, window: Window) -> Figures:
        """The figures of all the window's incidents (the window planned first: see `plan`)."""
        return (await self.figures(window=await self.plan(window)))[None]

    async def buckets(
        self, *, boundaries: Sequence[datetime], team_id: str | None = None
    ) -> list[Figures]:
        """Figures of consecutive windows [b0, b1), [b1, b2)…, each as of its own end.

        One pass over the whole span: a CASE puts each incident in its window and gives it
        that window's end as its as-of instant.
        """
        if len(boundaries) < 2:
            return []
        window = await self.plan(Window(since=boundaries[0], until=boundaries[-1], team_id=team_id))
        ends = boundaries[1:]
        bucket = case(
            *((IncidentRow.triggered_at < end, i) for i, end in enumerate(ends[:-1])),
            else_=len(ends) - 1,
        )
        as_of = case(
            *((IncidentRow.triggered_at < end, literal(end, UTCDateTime())) for end in ends[:-1]),
            else_=literal(ends[-1], UTCDateTime()),
        )
        found = await self._figures(window.conditions(), bucket, as_of)
        return [found.get(i, Figures()) for i in range(len(ends))]

    async def _figures(
        self, conditions: list[ColumnElement[bool]], group: Any, as_of: ColumnElement[datetime]
    ) -> dict[Any, Figures]:
        counts = await self._counts(conditions, group, as_of)
        mtta = await self._distribution(conditions, group, as_of, IncidentRow.acknowledged_at)
        mttr = await self._distribution(conditions, group, as_of, IncidentRow.resolved_at)
        return {
            key: replace(
                figures, mtta=mtta.get(key, Distribution()), mttr=mttr.get(key, Distribution())
            )
            for key, figures in counts.items()
        }

    async def _counts(
        self, conditions: list[ColumnElement[bool]], group: Any, as_of: ColumnElement[datetime]
    ) -> dict[Any, Figures]:
        """Every count in one pass over the window's incidents (distributions left empty)."""
        resolved = _before(IncidentRow.resolved_at, as_of)
        escalated = exists().where(
            PageRow.incident_id == IncidentRow.id, PageRow.level > 0, PageRow.paged_at < as_of
        )
        columns = [
            func.count().label("opened"),
            _count_if(_before(IncidentRow.acknowledged_at, as_of)).label("acknowledged"),
            _count_if(resolved).label("resolved"),
            _count_if(and_(resolved, IncidentRow.resolved_by.like("monitor:%"))).label(
                "auto_resolved"
            ),
            _count_if(escalated).label("escalated"),
        ]
        query = select(*columns).where(*conditions)
        if group is not None:
            query = select(group.label("g"), *columns).where(*conditions).group_by(group)
        return {
            row["g"] if group is not None else None: Figures(
                opened=int(row["opened"] or 0),
                acknowledged=int(row["acknowledged"] or 0),
                resolved=int(row["resolved"] or 0),
                auto_resolved=int(row["auto_resolved"] or 0),
                escalated=int(row["escalated"] or 0),
            )
            for row in (await self.session.execute(query)).mappings()
        }

    async def _distribution(
        self,
        conditions: list[ColumnElement[bool]],
        group: Any,
        as_of: ColumnElement[datetime],
        end: Any,
    ) -> dict[Any, Distribution]:
        """Mean, median and p90 of triggered → `end`, per group, in one statement.

        Each duration is ranked within its group (ROW_NUMBER and COUNT over the partition);
        the outer query keeps the rows at the nearest ranks: rank r is the p-th percentile
        when r·100 ≥ p·n > (r−1)·100, i.e. r = ceil(p·n/100), in integer arithmetic.
        """
        seconds = elapsed_seconds(IncidentRow.triggered_at, end).label("s")
        inner_columns: list[Any] = [seconds]
        if group is not None:
            inner_columns.insert(0, group.label("g"))
        durations = (
            select(*inner_columns).where(*conditions, _before(end, as_of)).subquery("durations")
        )
        partition = [durations.c.g] if group is not None else None
        ranked_columns: list[Any] = [
            durations.c.s,
            func.row_number().over(partition_by=partition, order_by=durations.c.s).label("r"),
            func.count().over(partition_by=partition).label("n"),
        ]
        if group is not None:
            ranked_columns.insert(0, durations.c.g)
        ranked = select(*ranked_columns).subquery("ranked")
        r, n, s = ranked.c.r, ranked.c.n, ranked.c.s

        def at_percentile(p: int) -> Any:
            return func.max(case((and_(r * 100 >= n * p, (r - 1) * 100 < n * p), s)))

        columns: list[Any] = [
            func.max(n).label("n"),
            func.avg(s).label("mean"),
            at_percentile(50).label("median"),
            at_percentile(90).label("p90"),
        ]
        if group is not None:
            query = select(ranked.c.g, *columns).group_by(ranked.c.g)
        else:
            query = select(*columns)
        answer: dict[Any, Distribution] = {}
        for row in (await self.session.execute(query)).mappings():
            if not row["n"]:
                continue
            answer[row["g"] if group is not None else None] = Distribution(
                count=int(row["n"]),
                mean=_seconds(row["mean"]),
                median=_seconds(row["median"]),
                p90=_seconds(row["p90"]),
            )
        return answer

    async def per_service(self, *, window: Window) -> list[tuple[str | None, int]]:
        """Incidents opened per service, most first."""
        count = func.count().label("n")
        rows = await self.session.execute(
            select(IncidentRow.service_id, count)
            .where(*window.conditions())
            .group_by(IncidentRow.service_id)
            .order_by(count.desc(), IncidentRow.service_id)
        )
        return [(row[0], int(row[1])) for row in rows]

    async def noisiest(self, *, window: Window, limit: int) -> tuple[list[NoisyAlert], int]:
        """The alerts that fired most on the window's incidents, and how many alerts fired."""
        notifications = func.sum(AlertRow.occurrences).label("notifications")
        incidents = func.count(distinct(AlertRow.incident_id)).label("incidents")
        rows = (
            await self.session.execute(
                select(
                    AlertRow.integration,
                    AlertRow.fingerprint,
                    func.max(AlertRow.title).label("title"),
                    notifications,
                    incidents,
                    func.count().over().label("total"),
                )
                .join(IncidentRow, IncidentRow.id == AlertRow.incident_id)
                .where(*window.conditions())
                .group_by(AlertRow.integration, AlertRow.fingerprint)
                .order_by(notifications.desc(), incidents.desc(), AlertRow.fingerprint)
                .limit(limit)
            )
        ).all()
        total = int(rows[0].total) if rows else 0
        alerts = [
            NoisyAlert(
                integration=row.integration,
                fingerprint=row.fingerprint,
                title=row.title,
                notifications=int(row.notifications),
                incidents=int(row.incidents),
            )
            for row in rows
        ]
        return alerts, total

    async def slowest(self, *, window: Window, limit: int) -> list[SlowIncident]:
        """The window's incidents that took longest to resolve, or are still open at its end
        (counted as open until then), longest first."""
        as_of = window.as_of()
        resolved = _before(IncidentRow.resolved_at, as_of)
        seconds = elapsed_seconds(
            IncidentRow.triggered_at, case((resolved, IncidentRow.resolved_at), else_=as_of)
        ).label("seconds")
        rows = await self.session.execute(
            select(
                IncidentRow.id,
                IncidentRow.title,
                IncidentRow.severity,
                IncidentRow.service_id,
                IncidentRow.team_id,
                IncidentRow.channel_id,
                IncidentRow.channel_name,
                seconds,
                case((resolved, 1), else_=0).label("resolved"),
            )
            .where(*window.conditions())
            .order_by(seconds.desc(), IncidentRow.id)
            .limit(limit)
        )
        return [
            SlowIncident(
                id=row.id,
                title=row.title,
                severity=row.severity,
                service_id=row.service_id,
                team_id=row.team_id,
                channel_id=row.channel_id,
                channel_name=row.channel_name,
                seconds=_seconds(row.seconds) or 0.0,
                resolved=bool(row.resolved),
            )
            for row in rows
        ]


def _seconds(value: Any) -> float | None:
    """A duration from the database as seconds rounded to the millisecond (None stays None)."""
    return None if value is None else round(float(value), 3)


__all__ = ["GROUP_BY", "GroupBy", "StatsRepository", "Window"]
