"""On-call rotation arithmetic: who is on call at an instant, as pure functions of the instant.

Rules (every function here follows them; nothing reads a clock or touches I/O):

- Daily, weekly and biweekly shifts last 1, 7 and 14 days of *local wall-clock* time: shift k
  (participants[k % n]) starts when the clock in `time_zone` reaches `start + k * period`, so a
  Monday 09:00 handoff stays at 09:00 local across DST changes while its UTC instant moves.
- "Reaches" is the one rule for clock changes: a handoff time that falls in a spring-forward gap
  happens at the instant the clock jumps past it (02:30 on a 02:00→03:00 day is 03:00 local); one
  that occurs twice in a fall-back overlap happens the first time (fold=0). Should a zone skip a
  whole shift (Pacific/Apia skipped 2011-12-30), that shift has zero length and nobody holds it.
- Custom shifts last a fixed elapsed `length`, starting at the UTC instant of the local `start`.
- The rotation extends backwards before `start` (k < 0, participant index k mod n), so exactly
  one person is on call at every instant.
- An override puts its `user` on call over [start, end). Where overrides overlap the newest
  `created_at` wins; ties go to the higher id (an unsaved override, id None, ranks lowest), then
  the later start.
- The effective timeline is made of stretches: an override stretch is the maximal interval over
  which one override wins (rotation handoffs beneath it are invisible); a rotation stretch is the
  part of one rotation shift that no override covers. Stretches are never merged, so the same
  person can hold two adjacent stretches when the source differs (an override, then their own
  shift) or when a rotation lists them twice in a row (each rotation shift stays its own stretch,
  which keeps a one-person rotation's shifts finite).
- All returned instants are aware UTC datetimes; every instant passed in must be aware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class RotationType(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    CUSTOM = "custom"


# Wall-clock period of each calendar rotation type; custom rotations carry their own length.
WALL_CLOCK_PERIOD: dict[RotationType, timedelta] = {
    RotationType.DAILY: timedelta(days=1),
    RotationType.WEEKLY: timedelta(days=7),
    RotationType.BIWEEKLY: timedelta(days=14),
}


@dataclass(frozen=True, slots=True)
class Rotation:
    """A schedule's rotation; `start` is naive local time of participants[0]'s first shift."""

    participants: tuple[str, ...]
    type: RotationType
    start: datetime
    time_zone: str
    length: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Override:
    """`user` is on call instead of the rotation over [start, end) (aware UTC)."""

    user: str
    start: datetime
    end: datetime
    created_at: datetime
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Shift:
    """One stretch of on-call time over [start, end); `override` is set when one supplied it."""

    user: str
    start: datetime
    end: datetime
    override: Override | None = None


class Handoff(NamedTuple):
    """A rotation handoff: at `at`, `outgoing` hands over to `incoming`."""

    at: datetime
    outgoing: str
    incoming: str


def validate_rotation(rotation: Rotation) -> None:
    """Raise ValueError naming the field when `rotation` cannot be evaluated."""
    if not rotation.participants:
        raise ValueError("rotation.participants: at least one participant is required")
    for user in rotation.participants:
        if not isinstance(user, str) or not user:
            raise ValueError(f"rotation.participants: {user!r} is not a user id")
    try:
        kind = RotationType(rotation.type)
    except ValueError:
        allowed = ", ".join(t.value for t in RotationType)
        raise ValueError(f"rotation.type: {rotation.type!r} is not one of {allowed}") from None
    if not isinstance(rotation.start, datetime):
        raise ValueError("rotation.start: a local date and time is required")
    if rotation.start.tzinfo is not None:
        raise ValueError(
            "rotation.start: give a local wall-clock time without an offset; "
            "the zone comes from time_zone"
        )
    _zone_of(rotation.time_zone)
    if kind is RotationType.CUSTOM:
        if rotation.length is None:
            raise ValueError("rotation.length: a custom rotation needs a length such as 12h")
        if rotation.length <= timedelta(0):
            raise ValueError(f"rotation.length: must be positive, got {rotation.length}")
    elif rotation.length is not None:
        raise ValueError(f"rotation.length: only custom rotations take a length, not {kind}")


def validate_override(override: Override) -> None:
    """Raise ValueError naming the field when `override` is not a usable interval."""
    if not override.user:
        raise ValueError("override.user: a user id is required")
    for name in ("start", "end", "created_at"):
        value: datetime = getattr(override, name)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"override.{name}: must be timezone-aware")
    if override.end <= override.start:
        raise ValueError("override.end: must be after override.start")


def shift_at(rotation: Rotation, instant: datetime) -> Shift:
    """Return the rotation's own shift containing `instant`, ignoring overrides."""
    validate_rotation(rotation)
    clock = _Clock(rotation)
    return clock.shift(clock.index(_utc(instant, "instant")))


def on_call_at(rotation: Rotation, overrides: Iterable[Override], instant: datetime) -> Shift:
    """Return the effective stretch containing `instant`: the winning override's, else rotation's.

    The stretch is maximal: it starts and ends where the on-call user or the winning override
    changes, and a rotation stretch never spans a rotation handoff.
    """
    validate_rotation(rotation)
    return _stretch_at(_Clock(rotation), _usable(overrides), _utc(instant, "instant"))


def shifts_between(
    rotation: Rotation, overrides: Iterable[Override], start: datetime, end: datetime
) -> list[Shift]:
    """Return the effective timeline over [start, end): consecutive stretches, clipped to it."""
    validate_rotation(rotation)
    lo, hi = _utc(start, "start"), _utc(end, "end")
    if hi < lo:
        raise ValueError("end: must not be before start")
    clock = _Clock(rotation)
    # Overrides outside the window only move stretch edges that get clipped anyway.
    relevant = tuple(o for o in _usable(overrides) if o.start < hi and o.end > lo)
    timeline: list[Shift] = []
    cursor = lo
    while cursor < hi:
        stretch = _stretch_at(clock, relevant, cursor)
        timeline.append(
            Shift(
                user=stretch.user,
                start=max(stretch.start, lo),
                end=min(stretch.end, hi),
                override=stretch.override,
            )
        )
        cursor = stretch.end
    return timeline


def next_handoff(
    rotation: Rotation, overrides: Iterable[Override], instant: datetime
) -> Shift | None:
    """Return the first effective stretch after `instant`'s whose user differs; None if none ever.

    None means the current person stays on call for good: a rotation with one distinct
    participant and no later override for anyone else.
    """
    validate_rotation(rotation)
    clock = _Clock(rotation)
    now = _utc(instant, "instant")
    active = tuple(o for o in _usable(overrides) if o.end > now)
    current = _stretch_at(clock, active, now)
    solo = len(set(rotation.participants)) == 1
    # Between two override edges a rotation with >= 2 people changes hands within n shifts, so
    # this many stretches always reach a change when one exists.
    budget = (2 * len(active) + 2) * (len(rotation.participants) + 1)
    cursor: datetime | None = current.end
    for _ in range(budget):
        if cursor is None:
            return None
        stretch = _stretch_at(clock, active, cursor)
        if stretch.user != current.user:
            return stretch
        cursor = stretch.end
        if solo and stretch.override is None:
            # A one-person rotation only changes hands when an override begins.
            cursor = min((o.start for o in active if o.start >= cursor), default=None)
    return None


def handoffs_between(rotation: Rotation, start: datetime, end: datetime) -> list[Handoff]:
    """Return the rotation's handoffs at instants in (start, end], oldest first.

    Consecutive windows (a, b] and (b, c] together yield exactly the handoffs of (a, c], so a job
    that remembers the last window end announces each handoff once. A handoff between two shifts
    of the same person is not a handoff; overrides are not handoffs either.
    """
    validate_rotation(rotation)
    lo, hi = _utc(start, "start"), _utc(end, "end")
    if hi <= lo:
        return []
    clock = _Clock(rotation)
    k = clock.index(lo)
    outgoing = clock.user(k)
    handoffs: list[Handoff] = []
    k += 1
    at = clock.boundary(k)
    while at <= hi:
        following = clock.boundary(k + 1)
        if following > at:  # a zero-length shift is skipped, not handed to and back
            incoming = clock.user(k)
            if incoming != outgoing:
                handoffs.append(Handoff(at=at, outgoing=outgoing, incoming=incoming))
            outgoing = incoming
        k += 1
        at = following
    return handoffs


class _Clock:
    """Shift boundaries of one validated rotation: shift k covers [boundary(k), boundary(k+1))."""

    __slots__ = ("_rotation", "_zone", "_period", "_origin")

    def __init__(self, rotation: Rotation) -> None:
        self._rotation = rotation
        self._zone = _zone_of(rotation.time_zone)
        kind = RotationType(rotation.type)
        # validate_rotation guarantees exactly one of the two: a custom length or a known period.
        self._period: timedelta = rotation.length or WALL_CLOCK_PERIOD[kind]
        # Custom rotations count elapsed time from the UTC instant of their first handoff.
        self._origin: datetime | None = None
        if kind is RotationType.CUSTOM:
            self._origin = local_to_utc(rotation.start, self._zone)

    def user(self, k: int) -> str:
        return self._rotation.participants[k % len(self._rotation.participants)]

    def boundary(self, k: int) -> datetime:
        if self._origin is not None:
            return self._origin + k * self._period
        return local_to_utc(self._rotation.start + k * self._period, self._zone)

    def index(self, instant: datetime) -> int:
        """The largest k whose shift has started at `instant`, found arithmetically."""
        if self._origin is not None:
            return (instant - self._origin) // self._period
        local = instant.astimezone(self._zone).replace(tzinfo=None)
        k = (local - self._rotation.start) // self._period
        # The wall-clock estimate is off by at most one around a clock change.
        while self.boundary(k) > instant:
            k -= 1
        while self.boundary(k + 1) <= instant:
            k += 1
        return k

    def shift(self, k: int) -> Shift:
        return Shift(user=self.user(k), start=self.boundary(k), end=self.boundary(k + 1))


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """Return the UTC instant at which the clock in `zone` reaches naive `local`.

    In a fall-back overlap that is the first occurrence (fold=0); in a spring-forward gap it is
    the instant the clock jumps past `local`.
    """
    local = local.replace(tzinfo=None, fold=0)
    instant = local.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local:
        return instant
    return _gap_end(local, zone)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _gap_end(local: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant of the spring-forward gap that swallows `local`."""
    before = local.replace(tzinfo=zone, fold=0).utcoffset()
    after = local.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None
    # Read with the offset after the jump, `local` is too early; with the one before, too late.
    # Zone transitions fall on whole seconds, so bisect over epoch seconds.
    lo = (local - after).replace(tzinfo=UTC)
    hi = (local - before).replace(tzinfo=UTC)
    low = (lo - _EPOCH) // _SECOND
    high = -((_EPOCH - hi) // _SECOND)
    while high - low > 1:
        mid = (low + high) // 2
        if (_EPOCH + mid * _SECOND).astimezone(zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return _EPOCH + high * _SECOND


def _zone_of(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError("rotation.time_zone: an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"rotation.time_zone: unknown IANA time zone {name!r}") from None


def _utc(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name}: must be timezone-aware")
    return instant.astimezone(UTC)


def _usable(overrides: Iterable[Override]) -> tuple[Override, ...]:
    usable: list[Override] = []
    for o in overrides:
        _utc(o.start, "override.start")
        _utc(o.end, "override.end")
        # An empty or inverted override covers nothing, so it can neither win nor cut a stretch.
        if o.start < o.end:
            usable.append(o)
    return tuple(usable)


def _priority(o: Override) -> tuple[datetime, bool, int, datetime, datetime, str]:
    """Sort key for overlapping overrides: the largest wins. End and user only break exact ties."""
    return (o.created_at, o.id is not None, o.id or 0, o.start, o.end, o.user)


def _stretch_at(clock: _Clock, overrides: tuple[Override, ...], instant: datetime) -> Shift:
    active = [o for o in overrides if o.start <= instant < o.end]
    if active:
        winner = max(active, key=_priority)
        rank = _priority(winner)
        # Only overrides that outrank the winner can cut its stretch; none is active now.
        above = [o for o in overrides if _priority(o) > rank]
        start = max([winner.start, *(o.end for o in above if o.end <= instant)])
        end = min([winner.end, *(o.start for o in above if o.start > instant)])
        return Shift(
            user=winner.user, start=start.astimezone(UTC), end=end.astimezone(UTC), override=winner
        )
    shift = clock.shift(clock.index(instant))
    # No override is active now: each one lies wholly before or wholly after `instant`.
    start = max([shift.start, *(o.end for o in overrides if o.end <= instant)])
    end = min([shift.end, *(o.start for o in overrides if o.start > instant)])
    return Shift(user=shift.user, start=start.astimezone(UTC), end=end.astimezone(UTC))
