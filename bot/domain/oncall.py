"""On-call values shared by the store, the services and the renderer: overrides, who is on call.

Configured teams and schedules appear through the two small protocols below (what these values
read of them), so the domain stays free of the configuration's pydantic models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.rotation import Override, Shift


class TeamRef(Protocol):
    """A configured team as on-call answers name it."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


class ScheduleRef(Protocol):
    """A configured schedule as on-call answers name it."""

    @property
    def id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class StoredOverride:
    """An override as stored: the rotation's `Override` plus who set it."""

    id: int
    schedule_id: str
    user: str
    start: datetime
    end: datetime
    created_at: datetime
    created_by: str

    def as_domain(self) -> Override:
        return Override(
            user=self.user, start=self.start, end=self.end, created_at=self.created_at, id=self.id
        )


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who is on call for a schedule at an instant, until when, and who is next."""

    schedule: ScheduleRef
    current: Shift
    next: Shift | None


@dataclass(frozen=True, slots=True)
class TeamOnCall:
    """One team's schedules and who is on call for each."""

    team: TeamRef
    schedules: tuple[OnCall, ...]


@dataclass(frozen=True, slots=True)
class NewOverride:
    """An override just stored, with the older ones it overlaps (it wins over them)."""

    override: StoredOverride
    schedule: ScheduleRef
    overlaps: tuple[int, ...]
