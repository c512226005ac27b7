"""Incident statistics for any period: MTTA/MTTR and counts, grouped, plus the noisiest alerts.

The figures are SQL aggregates (`store.stats`); this service picks the queries a question
needs, names the groups for people, and returns one `PeriodStats` that the JSON API,
`/incident stats` and the weekly report all show. See `store.stats` for the exact semantics
(cohort = incidents triggered in the period, observed as of its end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.domain.insight import Figures, NoisyAlert, SlowIncident
from store.session import Database
from store.stats import GROUP_BY, GroupBy, StatsRepository, Window

NO_GROUP = "(none)"
"""How an incident without a service or team is grouped and named."""


@dataclass(frozen=True, slots=True)
class Group:
    """The figures of one service, team or severity."""

    key: str | None
    name: str
    figures: Figures

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, **self.figures.to_json()}


@dataclass(frozen=True, slots=True)
class ServiceCount:
    service_id: str | None
    name: str
    incidents: int


@dataclass(frozen=True, slots=True)
class PeriodStats:
    """Everything known about the incidents triggered in [since, until)."""

    since: datetime
    until: datetime
    team_id: str | None
    service_id: str | None
    group_by: GroupBy | None
    overall: Figures
    groups: tuple[Group, ...]
    per_service: tuple[ServiceCount, ...]
    noisiest: tuple[NoisyAlert, ...]
    noisiest_total: int  # distinct alerts that fired; `noisiest` holds the top ones

    def to_json(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "team": self.team_id,
            "service": self.service_id,
            "group_by": self.group_by,
            "overall": self.overall.to_json(),
            "groups": [g.to_json() for g in self.groups],
            "incidents_per_service": [
                {"service": s.service_id, "name": s.name, "incidents": s.incidents}
                for s in self.per_service
            ],
            "noisiest_alerts": [a.to_json() for a in self.noisiest],
            "alerts_total": self.noisiest_total,
        }


@dataclass(frozen=True, slots=True)
class WeekStats:
    """One week of the chart series; medians in seconds, None when nothing was measured.

    Field for field the same as `bot.render.chart.WeekPoint`: `WeekPoint(*dataclasses.astuple(w))`.
    """

    week_start: date  # local date the week starts on (a Monday with the default schedule)
    incidents: int
    mtta_median_s: float | None
    mttr_median_s: float | None


class StatsService:
    """Answers "how did we do" for a period, a team and/or a service."""

    def __init__(self, *, db: Database, config: PulseOpsConfig, clock: Clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock

    async def period(
        self,
        *,
        since: datetime,
        until: datetime,
        group_by: GroupBy | None = None,
        team_id: str | None = None,
        service_id: str | None = None,
        noisiest: int = 10,
    ) -> PeriodStats:
        """The figures of [since, until), overall and per `group_by`, with the noisiest alerts.

        Raises:
            ValueError: `since` is not before `until`, or `group_by` is not a grouping.
        """
        if since >= until:
            raise ValueError("since must be before until")
        if group_by is not None and group_by not in GROUP_BY:
            raise ValueError(f"unknown grouping {group_by!r}")
        window = Window(since=since, until=until, team_id=team_id, service_id=service_id)
        async with self.db.read() as session:
            repo = StatsRepository(session)
            window = await repo.plan(window)
            overall = (await repo.figures(window=window))[None]
            grouped = await repo.figures(window=window, group_by=group_by) if group_by else {}
            per_service = await repo.per_service(window=window)
            alerts, alerts_total = await repo.noisiest(window=window, limit=noisiest)
        groups = sorted(
            (
                Group(key=key, name=self.group_name(group_by, key), figures=figures)
                for key, figures in grouped.items()
            ),
            key=lambda g: _group_order(group_by, g),
        )
        return PeriodStats(
            since=since,
            until=until,
            team_id=team_id,
            service_id=service_id,
            group_by=group_by,
            overall=overall,
            groups=tuple(groups),
            per_service=tuple(
                ServiceCount(service_id=sid, name=self.group_name("service", sid), incidents=n)
                for sid, n in per_service
            ),
            noisiest=tuple(alerts),
            noisiest_total=alerts_total,
        )

    async def figures(self, *, since: datetime, until: datetime, team_id: str | None) -> Figures:
        """Only the overall figures of [since, until) (the previous period of a report)."""
        async with self.db.read() as session:
            return await StatsRepository(session).overall(
                window=Window(since=since, until=until, team_id=team_id)
            )

    async def slowest(
        self, *, since: datetime, until: datetime, team_id: str | None, limit: int
    ) -> list[SlowIncident]:
        """The period's incidents that took longest to resolve (or are open at its end)."""
        async with self.db.read() as session:
            repo = StatsRepository(session)
            window = await repo.plan(Window(since=since, until=until, team_id=team_id))
            return await repo.slowest(window=window, limit=limit)

    async def series(
        self, *, boundaries: list[tuple[date, datetime]], end: datetime, team_id: str | None
    ) -> list[WeekStats]:
        """Counts and medians of consecutive weeks: `boundaries` gives each week's start
        (local date, instant); the last week ends at `end`. One pass over the span."""
        instants = [at for _, at in boundaries] + [end]
        async with self.db.read() as session:
            figures = await StatsRepository(session).buckets(boundaries=instants, team_id=team_id)
        return [
            WeekStats(
                week_start=day,
                incidents=f.opened,
                mtta_median_s=f.mtta.median,
                mttr_median_s=f.mttr.median,
            )
            for (day, _), f in zip(boundaries, figures, strict=True)
        ]

    def group_name(self, group_by: GroupBy | None, key: str | None) -> str:
        """A group's display name: the configured name of a service or team, else its key."""
        if key is None:
            return NO_GROUP
        if group_by == "service":
            service = self.config.service(key)
            return service.name if service else key
        if group_by == "team":
            team = self.config.team(key)
            return team.name if team else key
        return key


def _group_order(group_by: GroupBy | None, group: Group) -> tuple[Any, ...]:
    if group_by == "severity":
        return (group.key is None, group.key or "")
    return (-group.figures.opened, group.key is None, group.name.lower())


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


__all__ = [
    "NO_GROUP",
    "Group",
    "PeriodStats",
    "ServiceCount",
    "StatsService",
    "WeekStats",
]
