"""On-call: who is on call for a schedule now (rotation + overrides from the database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import PulseOpsConfig, ScheduleConfig
from bot.domain.rotation import Rotation, RotationType, Shift, next_handoff, on_call_at
from bot.errors import NotFound
from store.oncall import OverrideRepository


def rotation_of(schedule: ScheduleConfig) -> Rotation:
    """The domain rotation a schedule's configuration describes."""
    rc = schedule.rotation
    return Rotation(
        participants=tuple(rc.participants),
        type=RotationType(rc.type),
        start=rc.start,
        time_zone=schedule.time_zone,
        length=rc.length,
    )


@dataclass(frozen=True, slots=True)
class OnCall:
    """Who is on call for a schedule at an instant, until when, and who is next."""

    schedule: ScheduleConfig
    current: Shift
    next: Shift | None


class OnCallLookup:
    """Reads overrides in the caller's session and answers "who is on call"."""

    def __init__(self, config: PulseOpsConfig) -> None:
        self.config = config
        self._rotations = {s.id: rotation_of(s) for s in config.schedules}

    def schedule(self, schedule_id: str) -> ScheduleConfig:
        schedule = self.config.schedule(schedule_id)
        if schedule is None:
            known = ", ".join(s.id for s in self.config.schedules) or "none configured"
            raise NotFound(f"no schedule `{schedule_id}` (known: {known})")
        return schedule

    async def at(self, session: AsyncSession, *, schedule_id: str, instant: datetime) -> OnCall:
        schedule = self.schedule(schedule_id)
        overrides = await OverrideRepository(session).overlapping(
            schedule_id=schedule_id,
            start=instant - timedelta(days=1),
            end=instant + timedelta(days=120),
        )
        domain = [o.as_domain() for o in overrides]
        rotation = self._rotations[schedule_id]
        return OnCall(
            schedule=schedule,
            current=on_call_at(rotation, domain, instant),
            next=next_handoff(rotation, domain, instant),
        )
