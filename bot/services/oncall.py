"""On-call: who is on call (rotation + overrides from the database), overrides, calendar feeds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import PulseOpsConfig, ScheduleConfig, TeamConfig
from bot.domain.oncall import NewOverride, OnCall, StoredOverride, TeamOnCall
from bot.domain.rotation import (
    Rotation,
    RotationType,
    Shift,
    local_to_utc,
    next_handoff,
    on_call_at,
    shifts_between,
)
from bot.errors import NotFound, UserError
from store.oncall import OverrideRepository
from store.session import Database

log = logging.getLogger(__name__)

MAX_OVERRIDE = timedelta(days=366)
"""The longest override `/oncall override` accepts; longer cover is a rotation change."""

FEED_PAST = timedelta(days=1)
FEED_AHEAD = timedelta(weeks=8)
FEED_MAX_EVENTS = 1000
"""A calendar feed covers [now - FEED_PAST, now + FEED_AHEAD), at most this many shifts."""

# Overrides that ended this long before a window can no longer move its first shift's start
# (longer than the longest calendar rotation shift, 14 days).
_LOOKBACK = timedelta(days=31)


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
class OverrideEnd:
    """When an override ends: after `duration`, at local date-time `until`, the next `at`, or
    at the aware `instant`.

    `until` is naive local time and `at` a local time of day, both read in the schedule's zone.
    """

    duration: timedelta | None = None
    until: datetime | None = None
    at: time | None = None
    instant: datetime | None = None

    def resolve(self, *, now: datetime, zone: ZoneInfo) -> datetime:
        """The end instant (aware UTC) for an override starting at `now`."""
        if self.instant is not None:
            return self.instant.astimezone(UTC)
        if self.duration is not None:
            return now + self.duration
        if self.until is not None:
            return local_to_utc(self.until, zone)
        if self.at is None:
            raise ValueError("OverrideEnd needs one of duration, until or at")
        today = now.astimezone(zone).replace(tzinfo=None)
        candidate = datetime.combine(today.date(), self.at)
        end = local_to_utc(candidate, zone)
        if end <= now:  # "until 18:00" at 19:00 means tomorrow's 18:00
            end = local_to_utc(candidate + timedelta(days=1), zone)
        return end


@dataclass(frozen=True, slots=True)
class Feed:
    """A schedule's effective shifts around now, for its calendar feed."""

    schedule: ScheduleConfig
    team: TeamConfig | None
    now: datetime
    shifts: tuple[Shift, ...]
    created_by: dict[int, str]


class OnCallLookup:
    """Reads overrides in the caller's session and answers "who is on call"."""

    def __init__(self, config: PulseOpsConfig) -> None:
        self.config = config
        self._rotations = {s.id: rotation_of(s) for s in config.schedules}

    def schedule(self, schedule_id: str) -> ScheduleConfig:
        schedule = self.config.schedule(schedule_id)
        if schedule is None:
            known = ", ".join(f"`{s.id}`" for s in self.config.schedules) or "none configured"
            raise NotFound(f"no schedule `{schedule_id}` (known: {known})")
        return schedule

    def rotation(self, schedule_id: str) -> Rotation:
        return self._rotations[self.schedule(schedule_id).id]

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


class OnCallService:
    """`/oncall` and the calendar feeds: who is on call, and overrides (add, list, remove)."""

    def __init__(self, *, db: Database, config: PulseOpsConfig, clock: Clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.lookup = OnCallLookup(config)

    # ---- who is on call -----------------------------------------------------------------

    def selectable_ids(self) -> list[str]:
        """Ids `/oncall <id>` accepts: teams that have schedules, then schedules."""
        teams = [t.id for t in self.config.teams if self.config.schedules_for_team(t.id)]
        return [*teams, *(s.id for s in self.config.schedules)]

    async def who(self, *, selector: str | None = None) -> list[TeamOnCall]:
        """Who is on call now for every team with schedules, or for one team or schedule.

        Raises:
            NotFound: `selector` names neither a team with schedules nor a schedule.
        """
        selected: list[tuple[TeamConfig, tuple[ScheduleConfig, ...]]] = []
        if selector is None:
            for team in self.config.teams:
                schedules = self.config.schedules_for_team(team.id)
                if schedules:
                    selected.append((team, schedules))
        else:
            named = self.config.team(selector)
            schedule = self.config.schedule(selector)
            if named is not None and self.config.schedules_for_team(named.id):
                selected.append((named, self.config.schedules_for_team(named.id)))
            elif schedule is not None:
                owner = self.config.team(schedule.team)
                assert owner is not None  # the configuration checks schedule.team
                selected.append((owner, (schedule,)))
            else:
                known = ", ".join(f"`{i}`" for i in self.selectable_ids()) or "none configured"
                what = (
                    "has no on-call schedules" if named is not None else "is not a team or schedule"
                )
                raise NotFound(f"`{selector}` {what} (valid: {known})")
        now = self.clock.now()
        answer: list[TeamOnCall] = []
        async with self.db.read() as session:
            for team, schedules in selected:
                found = [
                    await self.lookup.at(session, schedule_id=s.id, instant=now) for s in schedules
                ]
                answer.append(TeamOnCall(team=team, schedules=tuple(found)))
        return answer

    # ---- overrides ----------------------------------------------------------------------

    def schedule_for_override(
        self,
        *,
        explicit: str | None,
        user: str,
        channel_id: str,
        channel_name: str = "",
    ) -> ScheduleConfig:
        """Which schedule an override goes to when the command names none.

        The explicit id (a schedule, or a team with one schedule); else the only schedule of the
        team whose channel this is; else the only schedule of a team `user` belongs to (as a
        member or a participant). Raises UserError listing the choices otherwise.
        """
        if explicit is not None:
            schedule = self.config.schedule(explicit)
            if schedule is not None:
                return schedule
            team = self.config.team(explicit)
            if team is not None:
                return self._only(self.config.schedules_for_team(team.id), f"team `{team.id}`")
            raise NotFound(f"no schedule `{explicit}` (known: {self._ids(self.config.schedules)})")
        channel_teams = [
            t
            for t in self.config.teams
            if t.channel is not None
            and (t.channel == channel_id or (channel_name and t.channel == f"#{channel_name}"))
        ]
        in_channel = tuple(s for t in channel_teams for s in self.config.schedules_for_team(t.id))
        if in_channel:
            return self._only(in_channel, "this channel's team")
        user_teams = {s.team for s in self.config.schedules if user in s.rotation.participants} | {
            t.id for t in self.config.teams if user in t.members
        }
        theirs = tuple(s for s in self.config.schedules if s.team in user_teams)
        if theirs:
            return self._only(theirs, "that person's team")
        return self._only(self.config.schedules, "this workspace")

    def _only(self, schedules: tuple[ScheduleConfig, ...], where: str) -> ScheduleConfig:
        if len(schedules) == 1:
            return schedules[0]
        if not schedules:
            raise UserError("No on-call schedules are configured.")
        raise UserError(
            f"Which schedule? {where.capitalize()} has {len(schedules)}: "
            f"{self._ids(schedules)}. Add its id at the end of the command."
        )

    @staticmethod
    def _ids(schedules: tuple[ScheduleConfig, ...]) -> str:
        return ", ".join(f"`{s.id}`" for s in schedules) or "none configured"

    async def add_override(
        self,
        *,
        schedule_id: str,
        user: str,
        end: OverrideEnd,
        by: str,
        start: datetime | None = None,
    ) -> NewOverride:
        """Put `user` on call for the schedule from `start` (default now) until `end`; newest
        override wins.

        Raises:
            NotFound: unknown schedule.
            UserError: the start is in the past, the end is not after the start, or more than
                MAX_OVERRIDE after it.
        """
        schedule = self.lookup.schedule(schedule_id)
        current = self.clock.now()
        now = current if start is None else start.astimezone(UTC)
        if now < current - timedelta(minutes=1):
            raise UserError(
                "The override would start in the past: give a start from now on.",
                fields={"start": "in the past"},
            )
        if now - current > MAX_OVERRIDE:
            raise UserError(
                f"An override starts at most {MAX_OVERRIDE.days} days ahead.",
                fields={"start": "too far ahead"},
            )
        until = end.resolve(now=now, zone=schedule.zone)
        if until <= now:
            raise UserError(
                "The override would end before it starts: give a time in the future.",
                fields={"end": "not after the start"},
            )
        if until - now > MAX_OVERRIDE:
            raise UserError(
                f"An override lasts at most {MAX_OVERRIDE.days} days; for longer cover change "
                "the rotation in the configuration.",
                fields={"end": "too long after the start"},
            )
        async with self.db.write() as session:
            repo = OverrideRepository(session)
            older = await repo.overlapping(schedule_id=schedule.id, start=now, end=until)
            stored = await repo.add(
                schedule_id=schedule.id,
                user=user,
                start=now,
                end=until,
                now=current,
                created_by=by,
            )
        log.info(
            "override created",
            extra={
                "override_id": stored.id,
                "schedule_id": schedule.id,
                "user": user,
                "start": now.isoformat(),
                "end": until.isoformat(),
                "created_by": by,
            },
        )
        return NewOverride(
            override=stored, schedule=schedule, overlaps=tuple(sorted(o.id for o in older))
        )

    async def overrides(self, *, schedule_id: str | None = None) -> list[StoredOverride]:
        """Overrides not yet over, soonest first (NotFound for an unknown schedule)."""
        if schedule_id is not None:
            self.lookup.schedule(schedule_id)
        async with self.db.read() as session:
            return await OverrideRepository(session).active_or_future(
                now=self.clock.now(), schedule_id=schedule_id
            )

    async def remove_override(self, *, override_id: int, by: str) -> StoredOverride:
        """Delete an override (NotFound when there is no such id)."""
        async with self.db.write() as session:
            removed = await OverrideRepository(session).remove(override_id=override_id)
        log.info(
            "override removed",
            extra={
                "override_id": removed.id,
                "schedule_id": removed.schedule_id,
                "user": removed.user,
                "start": removed.start.isoformat(),
                "end": removed.end.isoformat(),
                "removed_by": by,
            },
        )
        return removed

    # ---- calendar feed ------------------------------------------------------------------

    async def feed(self, *, schedule_id: str) -> Feed:
        """Whole effective shifts overlapping [now - FEED_PAST, now + FEED_AHEAD).

        Shifts are not clipped to the window, so a shift keeps its start (and its calendar
        UID) as the window moves. Very short custom rotations are cut at FEED_MAX_EVENTS.
        """
        schedule = self.lookup.schedule(schedule_id)
        rotation = self.lookup.rotation(schedule_id)
        now = self.clock.now()
        lo = now - FEED_PAST
        hi = min(now + FEED_AHEAD, lo + FEED_MAX_EVENTS * schedule.rotation.shift_length)
        async with self.db.read() as session:
            stored = await OverrideRepository(session).overlapping(
                schedule_id=schedule_id, start=lo - _LOOKBACK, end=hi + FEED_AHEAD
            )
        overrides = [o.as_domain() for o in stored]
        first = on_call_at(rotation, overrides, lo)
        last = on_call_at(rotation, overrides, hi)
        end = last.end if last.start < hi else hi
        shifts = shifts_between(rotation, overrides, first.start, end)[:FEED_MAX_EVENTS]
        return Feed(
            schedule=schedule,
            team=self.config.team(schedule.team),
            now=now,
            shifts=tuple(shifts),
            created_by={o.id: o.created_by for o in stored},
        )
