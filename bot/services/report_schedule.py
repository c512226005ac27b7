"""Report schedules: each report stream's crontab, and the periods between its fire times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from bot.config import TeamConfig

_MAX_SEARCH = 10_000  # fire times stepped through before giving up (a very dense crontab)


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end), aware UTC."""

    start: datetime
    end: datetime


def next_fire(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first scheduled time strictly after `after` (UTC), or None."""
    fire: datetime | None = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return None if fire is None else fire.astimezone(UTC)


def latest_fire(trigger: CronTrigger, at: datetime) -> datetime | None:
    """The last scheduled time at or before `at` (UTC), or None.

    APScheduler only looks forward, so look back over growing windows until one holds a
    fire time, then step forward to the last one not after `at`.
    """
    for back in (
        timedelta(hours=2),
        timedelta(days=2),
        timedelta(days=9),
        timedelta(days=63),
        timedelta(days=400),
        timedelta(days=3000),
    ):
        fire: datetime | None = trigger.get_next_fire_time(None, at - back)
        if fire is None or fire > at:
            continue
        latest = fire
        for _ in range(_MAX_SEARCH):
            following = next_fire(trigger, latest)
            if following is None or following > at:
                break
            latest = following
        return latest.astimezone(UTC)
    return None


def period_at(trigger: CronTrigger, at: datetime) -> Period | None:
    """The latest period completed at `at`: between the two latest scheduled times."""
    end = latest_fire(trigger, at)
    if end is None:
        return None
    start = latest_fire(trigger, end - timedelta(seconds=1))
    return None if start is None else Period(start=start, end=end)


def fires_between(trigger: CronTrigger, after: datetime, until: datetime) -> int:
    """How many scheduled times fall in (after, until] (capped)."""
    count, cursor = 0, after
    while count < _MAX_SEARCH:
        fire = next_fire(trigger, cursor)
        if fire is None or fire > until:
            break
        count, cursor = count + 1, fire
    return count


@dataclass(frozen=True, slots=True)
class ReportScope:
    """One report stream: a team's (posted in its channel) or the overall one ("all")."""

    id: str
    team: TeamConfig | None
    channel: str | None
    cron: str
    time_zone: str
    trigger: CronTrigger

    @property
    def team_id(self) -> str | None:
        return self.team.id if self.team else None

    @property
    def name(self) -> str:
        return self.team.name if self.team else "All teams"


__all__ = ["Period", "ReportScope", "fires_between", "latest_fire", "next_fire", "period_at"]
