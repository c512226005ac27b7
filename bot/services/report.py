"""The weekly report: when each one is due, exactly-once recording, and what it contains.

Each team with a channel gets a report there, and the overall report ("all") goes to the
incidents channel, on a crontab schedule in a time zone (`reports:` in the configuration, a
team's `report_cron` / `report_time_zone`). A report covers the period between the two
latest scheduled times: [previous fire, latest fire).

Deadlines live in SQL: `sweep()` (every few seconds, on every replica) finds each scope's
latest completed period and records it in `reports`, whose primary key (scope, period
start) makes that exactly once; the same transaction enqueues one "report" outbox effect,
which computes the figures (as of the period's end, so a retry or a late delivery says what
an on-time one would have) and posts the message.

A report missed while PulseOps was down is posted when it comes back, marked late; when
several were missed only the latest is posted, saying how many were skipped. A scope seen
for the first time long after its latest scheduled time records that period silently: a new
deployment does not open with a report about the week before it existed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import PulseOpsConfig, ScheduleConfig
from bot.config.models import parse_cron
from bot.delivery.kinds import OutboxKind
from bot.domain.burn import SloPeriod
from bot.domain.insight import Figures, SlowIncident
from bot.domain.rotation import Override, local_to_utc, shifts_between
from bot.errors import NotFound, UserError
from bot.services.oncall import rotation_of
from bot.services.report_schedule import (
    Period,
    ReportScope,
    fires_between,
    latest_fire,
    next_fire,
    period_at,
)
from bot.services.slos import SloService
from bot.services.stats import PeriodStats, StatsService, WeekStats
from store.oncall import OverrideRepository
from store.outbox import OutboxRepository
from store.probes import ProbeRepository
from store.reports import ReportRepository
from store.session import Database

log = logging.getLogger(__name__)

ALL = "all"  # the scope of the overall report

LATE_AFTER = timedelta(minutes=15)
"""A report recorded more than this after its scheduled time says it is late."""

FIRST_SIGHT_GRACE = timedelta(hours=1)
"""A scope never reported before posts its latest period only if it ended this recently."""

SLOWEST = 5  # incidents listed as slowest; the rest are counted
NOISIEST = 5  # alerts listed as noisiest
_ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")
SERIES_WEEKS = 8  # weeks in the chart series
MAX_SHIFTS = 2000  # beyond this many shifts in a period, on-call lists people without hours


# --------------------------------------------------------------------------- scopes and reports


@dataclass(frozen=True, slots=True)
class PersonOnCall:
    user: str
    seconds: float | None  # time on call within the period; None when not worked out


@dataclass(frozen=True, slots=True)
class ScheduleOnCall:
    """Who was on call for one schedule during the period, in the order they took over."""

    schedule_id: str
    team_name: str
    people: tuple[PersonOnCall, ...]


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    """Everything one report message shows."""

    scope: ReportScope
    period: Period
    stats: PeriodStats  # grouped by service (a team's report) or team (the overall one)
    previous: Figures | None  # the period before, for week-over-week change
    slowest: tuple[SlowIncident, ...]
    oncall: tuple[ScheduleOnCall, ...]
    next_at: datetime | None  # when the next report is due
    late: bool = False
    missed: int = 0  # earlier periods skipped while PulseOps was down
    probes: tuple[tuple[str, float | None], ...] = ()  # (probe id, uptime over the period)
    slos: tuple[SloPeriod, ...] = ()  # each SLO over the period, the budget left at its end


@dataclass(frozen=True, slots=True)
class Posting:
    """What `post()` did: enqueued the report, or found it already posted."""

    scope: ReportScope
    period: Period
    enqueued: bool
    recorded_at: datetime | None = None


class ReportService:
    """Schedules, records and builds the weekly reports."""

    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        stats: StatsService,
        slos: SloService | None = None,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.stats = stats
        self.slos = slos
        self.on_commit = on_commit
        self._scopes = {s.id: s for s in _scopes(config)}
        # scope -> when its next period completes: until then a sweep has nothing to check
        self._next_due: dict[str, datetime] = {}

    # ---- scopes -------------------------------------------------------------------------

    def scopes(self) -> list[ReportScope]:
        """The overall scope, then every team's (with or without a channel)."""
        return list(self._scopes.values())

    def scope(self, team_id: str | None = None) -> ReportScope:
        """A team's scope, or the overall one (None or "all"). NotFound for an unknown team."""
        scope = self._scopes.get(team_id or ALL)
        if scope is None:
            known = ", ".join(f"`{t.id}`" for t in self.config.teams) or "none configured"
            raise NotFound(f"no team `{team_id}` (known: {known})")
        return scope

    def latest_period(self, scope: ReportScope, *, at: datetime | None = None) -> Period | None:
        """The period the latest report of `scope` covers (as of `at`, default now)."""
        return period_at(scope.trigger, at or self.clock.now())

    def period_of_week(self, scope: ReportScope, week: str) -> Period:
        """The period `--week` names: `last` (the latest complete one), `this` (the one in
        progress, so far) or an ISO week `YYYY-Www` (the period starting in that week, in the
        schedule's time zone).

        Raises:
            UserError: not one of those, or a week whose period has not started.
        """
        now = self.clock.now()
        if week == "last":
            period = period_at(scope.trigger, now)
            if period is None:
                raise UserError(f"the report schedule `{scope.cron}` has no completed period yet")
            return period
        if week == "this":
            start = latest_fire(scope.trigger, now)
        else:
            match = _ISO_WEEK.fullmatch(week)
            try:
                monday = date.fromisocalendar(int(match[1]), int(match[2]), 1) if match else None
            except ValueError:
                monday = None
            if monday is None:
                raise UserError(
                    f"--week {week!r}: give this, last or an ISO week such as 2026-W48",
                    fields={"week": "this, last or YYYY-Www"},
                )
            zone = ZoneInfo(scope.time_zone)
            week_start = datetime.combine(monday, datetime.min.time(), zone).astimezone(UTC)
            start = next_fire(scope.trigger, week_start - timedelta(microseconds=1))
            if start is not None and start >= week_start + timedelta(days=7):
                start = None
        end = next_fire(scope.trigger, start) if start is not None else None
        if start is None or end is None or start > now:
            raise UserError(f"no report period of the schedule `{scope.cron}` starts in {week}")
        return Period(start=start, end=end)

    # ---- scheduling ---------------------------------------------------------------------

    async def sweep(self) -> int:
        """Record every report that has come due; return how many were enqueued."""
        if not self.config.reports.enabled:
            return 0
        now = self.clock.now()
        enqueued = 0
        for scope in self.scopes():
            if scope.channel is None:
                continue
            due = self._next_due.get(scope.id)
            if due is not None and now < due:
                continue
            period = period_at(scope.trigger, now)
            if period is None:
                continue
            try:
                if await self._record(scope, period, now=now, on_demand=False):
                    enqueued += 1
            except Exception:  # one scope's failure must not hold back the others
                log.exception("recording a report failed", extra={"scope": scope.id})
                continue
            following = next_fire(scope.trigger, period.end)
            if following is not None:
                self._next_due[scope.id] = following
        if enqueued:
            self.on_commit()
        return enqueued

    async def post(self, *, team_id: str | None = None) -> Posting:
        """Post the latest report of a scope now, unless it has been posted (exactly once).

        Raises:
            NotFound: unknown team, or the schedule has no completed period yet.
        """
        scope = self.scope(team_id)
        now = self.clock.now()
        period = period_at(scope.trigger, now)
        if period is None:
            raise NotFound(f"the report schedule `{scope.cron}` has no completed period yet")
        enqueued = await self._record(scope, period, now=now, on_demand=True)
        if enqueued:
            self.on_commit()
            return Posting(scope=scope, period=period, enqueued=True)
        async with self.db.read() as session:
            stored = await ReportRepository(session).get(scope=scope.id, period_start=period.start)
        return Posting(
            scope=scope,
            period=period,
            enqueued=False,
            recorded_at=stored.recorded_at if stored else None,
        )

    async def _record(
        self, scope: ReportScope, period: Period, *, now: datetime, on_demand: bool
    ) -> bool:
        """Record the period's report and enqueue its message, in one transaction.

        Returns False when it was recorded before (by this or another replica), or when it
        is recorded silently (first sight of the scope, long after the period ended).
        """
        missed = 0
        async with self.db.write() as session:
            repo = ReportRepository(session)
            stored = await repo.get(scope=scope.id, period_start=period.start)
            if stored is not None:
                # posted already, or recorded silently: only a person asking posts the latter
                if stored.announced or not on_demand:
                    return False
                if not await repo.announce(scope=scope.id, period_start=period.start):
                    return False
            else:
                last_end = await repo.last_end(scope=scope.id)
                silent = not on_demand and last_end is None and now - period.end > FIRST_SIGHT_GRACE
                recorded = await repo.record(
                    scope=scope.id,
                    period_start=period.start,
                    period_end=period.end,
                    now=now,
                    announced=not silent,
                )
                if not recorded:
                    return False
                if silent:
                    log.info(
                        "report scope seen for the first time; its past period is not posted",
                        extra={"scope": scope.id, "period_end": period.end.isoformat()},
                    )
                    return False
                if last_end is not None and last_end < period.start:
                    missed = fires_between(scope.trigger, last_end, period.start)
            await OutboxRepository(session).enqueue(
                kind=OutboxKind.REPORT,
                now=now,
                payload={
                    "scope": scope.id,
                    "period_start": period.start.isoformat(),
                    "period_end": period.end.isoformat(),
                    "late": not on_demand and now - period.end > LATE_AFTER,
                    "missed": missed,
                },
            )
        log.info(
            "report recorded",
            extra={
                "scope": scope.id,
                "period_start": period.start.isoformat(),
                "period_end": period.end.isoformat(),
                "late_seconds": round((now - period.end).total_seconds(), 3),
                "missed": missed,
                "on_demand": on_demand,
            },
        )
        return True

    # ---- contents -----------------------------------------------------------------------

    async def build(
        self, *, scope: ReportScope, period: Period, late: bool = False, missed: int = 0
    ) -> WeeklyReport:
        """Compute a report: the period's figures (grouped by service for a team, by team
        overall), the previous period's for comparison, the slowest incidents, on-call."""
        stats = await self.stats.period(
            since=period.start,
            until=period.end,
            team_id=scope.team_id,
            group_by="service" if scope.team else "team",
            noisiest=NOISIEST,
        )
        previous_start = latest_fire(scope.trigger, period.start - timedelta(seconds=1))
        previous = (
            await self.stats.figures(
                since=previous_start, until=period.start, team_id=scope.team_id
            )
            if previous_start is not None
            else None
        )
        slowest = await self.stats.slowest(
            since=period.start, until=period.end, team_id=scope.team_id, limit=SLOWEST
        )
        return WeeklyReport(
            scope=scope,
            period=period,
            stats=stats,
            previous=previous,
            slowest=tuple(slowest),
            oncall=tuple(await self._oncall(scope, period)),
            next_at=next_fire(scope.trigger, period.end),
            late=late,
            missed=missed,
            probes=await self._probe_uptime(scope, period),
            slos=await self._slo_periods(scope, period),
        )

    def _owned(self, scope: ReportScope, service: str | None) -> bool:
        """Whether the report of `scope` covers what `service` owns: the overall one covers
        everything; a team's covers its services."""
        if scope.team is None:
            return True
        owner = self.config.team_for_service(service) if service else None
        return owner is not None and owner.id == scope.team.id

    async def _slo_periods(self, scope: ReportScope, period: Period) -> tuple[SloPeriod, ...]:
        """The scope's SLOs over the period (a team's: those of its services; an SLO without
        a service is in the overall report only), alert sources' first, then probes'."""
        if self.slos is None:
            return ()
        slos = [s for s in self.config.slos if self._owned(scope, s.service)]
        probes = [
            p for p in self.config.probes if p.slo is not None and self._owned(scope, p.service)
        ]
        if not slos and not probes:
            return ()
        found = await self.slos.periods(
            start=period.start, end=period.end, slos=slos, probes=probes
        )
        return tuple(found)

    async def _probe_uptime(
        self, scope: ReportScope, period: Period
    ) -> tuple[tuple[str, float | None], ...]:
        """Uptime over the period of the scope's probes (a team's: those of its services)."""
        probes = [p for p in self.config.probes if self._owned(scope, p.service)]
        if not probes:
            return ()
        async with self.db.read() as session:
            seen = await ProbeRepository(session).uptime(since=period.start, until=period.end)
        return tuple((p.id, seen[p.id].ratio if p.id in seen else None) for p in probes)

    async def _oncall(self, scope: ReportScope, period: Period) -> list[ScheduleOnCall]:
        schedules = (
            self.config.schedules_for_team(scope.team.id) if scope.team else self.config.schedules
        )
        found = []
        async with self.db.read() as session:
            for schedule in schedules:
                overrides = await OverrideRepository(session).overlapping(
                    schedule_id=schedule.id, start=period.start, end=period.end
                )
                found.append(_who_was_on_call(schedule, [o.as_domain() for o in overrides], period))
        return [
            ScheduleOnCall(schedule_id=schedule.id, team_name=self._team_name(schedule), people=p)
            for schedule, p in zip(schedules, found, strict=True)
        ]

    def _team_name(self, schedule: ScheduleConfig) -> str:
        team = self.config.team(schedule.team)
        return team.name if team else schedule.team

    async def weekly_series(
        self, *, team_id: str | None = None, end: datetime | None = None, weeks: int = SERIES_WEEKS
    ) -> list[WeekStats]:
        """The chart's series: the `weeks` weeks before `end` (default: the end of the latest
        report period), oldest first, each with its incident count and MTTA / MTTR medians.

        Weeks are 7 local days in the scope's report time zone, ending at `end`, so with the
        default schedule each starts on a Monday at 09:00. This is the integration point for
        `bot.render.chart.weekly_chart`.
        """
        scope = self.scope(team_id)
        if end is None:
            period = self.latest_period(scope)
            end = period.end if period else self.clock.now()
        zone = ZoneInfo(scope.time_zone)
        local_end = end.astimezone(zone).replace(tzinfo=None)
        boundaries = []
        for k in range(weeks, 0, -1):
            local = local_end - timedelta(days=7 * k)
            boundaries.append((local.date(), local_to_utc(local, zone)))
        return await self.stats.series(boundaries=boundaries, end=end, team_id=scope.team_id)


def _scopes(config: PulseOpsConfig) -> list[ReportScope]:
    scopes = []
    for team in (None, *config.teams):
        cron, zone = config.report_schedule(team.id if team else None)
        scopes.append(
            ReportScope(
                id=team.id if team else ALL,
                team=team,
                channel=team.channel if team else config.slack.incidents_channel,
                cron=cron,
                time_zone=zone,
                trigger=parse_cron(cron, zone),
            )
        )
    return scopes


def _who_was_on_call(
    schedule: ScheduleConfig, overrides: list[Override], period: Period
) -> tuple[PersonOnCall, ...]:
    """Each person's time on call for the schedule within the period, overrides included."""
    rotation = rotation_of(schedule)
    shift = schedule.rotation.shift_length
    if (period.end - period.start) / shift > MAX_SHIFTS:  # a seconds-long test rotation
        return tuple(PersonOnCall(user=u, seconds=None) for u in schedule.rotation.participants)
    totals: dict[str, float] = {}
    for stretch in shifts_between(rotation, overrides, period.start, period.end):
        totals[stretch.user] = (
            totals.get(stretch.user, 0.0) + (stretch.end - stretch.start).total_seconds()
        )
    return tuple(PersonOnCall(user=u, seconds=s) for u, s in totals.items())


# latest_fire and period_at: re-exported for tests/test_report.py and tests/bench_report.py
__all__ = [
    "ALL",
    "FIRST_SIGHT_GRACE",
    "LATE_AFTER",
    "PersonOnCall",
    "Posting",
    "ReportService",
    "ScheduleOnCall",
    "WeeklyReport",
    "latest_fire",
    "period_at",
]
