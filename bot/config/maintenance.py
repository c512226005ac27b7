"""YAML model of `maintenance_windows`: recurring muting (cron + duration + time zone) for
matchers, and when each window is open."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated, Self

from apscheduler.triggers.cron import CronTrigger
from pydantic import field_validator, model_validator

from bot.config.checks import IdOf, _Frozen
from bot.config.models import Cron, parse_cron
from bot.config.oncall import TimeZone
from bot.config.types import Duration, Matchers
from bot.domain.matchers import Matcher

MAX_OCCURRENCES = 10_000  # cron starts looked at to find the open occurrence (e.g. every minute)


class MaintenanceWindowConfig(_Frozen):
    """A recurring window: from each `cron` start (read in `time_zone`) for `duration`,
    alerts matching every matcher are muted like a silence's."""

    name: Annotated[str, IdOf("maintenance window name")]
    matchers: Matchers
    cron: Cron
    duration: Duration
    time_zone: TimeZone = "UTC"

    @field_validator("matchers")
    @classmethod
    def _selective(cls, value: tuple[Matcher, ...]) -> tuple[Matcher, ...]:
        if not any(not m.matches({}) for m in value):
            raise ValueError(
                "give at least one matcher that an empty label does not match, e.g. "
                "'service=\"payment-api\"' (a window matching everything would mute every alert)"
            )
        return value

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.duration > timedelta(days=31):
            raise ValueError("duration: a maintenance window lasts at most 31 days")
        return self

    @cached_property
    def trigger(self) -> CronTrigger:
        return parse_cron(self.cron, self.time_zone)

    def open_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The occurrence (start, end) open at `now`, the one ending last if several overlap;
        None while the window is closed."""
        found: tuple[datetime, datetime] | None = None
        previous: datetime | None = None
        start = self.trigger.get_next_fire_time(None, now - self.duration)
        for _ in range(MAX_OCCURRENCES):
            if start is None or start > now:
                break
            end = start + self.duration
            if end > now:
                found = (start, end)
            previous = start
            start = self.trigger.get_next_fire_time(previous, previous + timedelta(seconds=1))
        return found
