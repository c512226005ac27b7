"""YAML models of on-call: rotations, schedules and escalation policies, with their checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, available_timezones

from pydantic import AfterValidator, Field, field_validator, model_validator

from bot.config.checks import (
    EnvName,
    IdOf,
    Secret,
    _check_channel,
    _check_user_group,
    _check_user_ids,
    _Frozen,
    _given,
    _non_empty_list,
    _repeated,
    _UserOrGroup,
)
from bot.config.types import Duration
from bot.config.yaml import Loc, Problems
from bot.errors import ConfigError

ROTATION_TYPES = ("daily", "weekly", "biweekly", "custom")
_FIXED_SHIFTS = {"daily": 1, "weekly": 7, "biweekly": 14}  # days of local wall-clock time
_ZONE_HINT = "use an IANA name such as Europe/Berlin, America/New_York or UTC"
_NOT_ZONES = frozenset({"localtime", "posixrules"})  # host-specific files, not IANA names
_LOCAL_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?"
)
_START_EXAMPLE = '"2026-11-02T09:00:00"'


def _check_time_zone(value: str) -> str:
    if value not in _NOT_ZONES:
        try:
            ZoneInfo(value)
            return value
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            pass
    known = available_timezones()
    if not known:
        raise ValueError(
            f"unknown time zone {value!r}: this system has no time zone database "
            "(install the tzdata package)"
        )
    close = [z for z in known if z.lower() == value.strip().lower()]
    hint = f"did you mean {close[0]!r}?" if close else _ZONE_HINT
    raise ValueError(f"unknown time zone {value!r}: {hint}")


TimeZone = Annotated[str, AfterValidator(_check_time_zone)]
"""An IANA time zone name (`Europe/Berlin`)."""


def _parse_local_start(value: Any) -> Any:
    """A naive date-time (text or YAML timestamp): local time in the schedule's time zone."""
    offset = (
        "has a UTC offset; write local time without one (it is read in the schedule's "
        f"time_zone), e.g. {_START_EXAMPLE}"
    )
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"{value.isoformat()!r} {offset}")
        return value
    if isinstance(value, date):
        raise ValueError(f"{value.isoformat()!r} needs a time of day (the handoff time) too")
    match = _LOCAL_DATETIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"invalid date-time {value!r}: write a local date and time such as {_START_EXAMPLE}"
        )
    if match["offset"]:
        raise ValueError(f"{value!r} {offset}")
    try:
        return datetime.fromisoformat(f"{match[1]}T{match[2]}")
    except ValueError:
        raise ValueError(f"invalid date-time {value!r}: no such date or time of day") from None


class RotationConfig(_Frozen):
    """Participants take turns, participants[0] first from `start` (local time in the zone).

    daily, weekly and biweekly shifts last 1, 7 and 14 days of local wall-clock time (so a shift
    spanning a daylight-saving change is an hour shorter or longer); custom shifts last `length`.
    """

    type: Literal["daily", "weekly", "biweekly", "custom"]
    length: Duration | None = None
    start: datetime
    participants: tuple[str, ...]

    _start = field_validator("start", mode="before")(_parse_local_start)

    @field_validator("participants")
    @classmethod
    def _participants(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_user_ids(_non_empty_list(value, "Slack user ID"))
        repeated = _repeated(value)
        if repeated:
            raise ValueError(
                f"{', '.join(repr(p) for p in repeated)} appears more than once "
                "(each participant takes one turn per cycle)"
            )
        return value

    @model_validator(mode="after")
    def _length(self) -> Self:
        if self.type == "custom" and self.length is None:
            message = "required when type is custom: how long one shift lasts, e.g. 12h or 3d"
            raise Problems([(("length",), message)])
        if self.type != "custom" and self.length is not None:
            days = _FIXED_SHIFTS[self.type]
            message = (
                f"only used when type is custom ({self.type} shifts last {days} day"
                f"{'s' if days > 1 else ''}); remove it or set type: custom"
            )
            raise Problems([(("length",), message)])
        return self

    @property
    def shift_length(self) -> timedelta:
        """`length` for custom rotations, else 1, 7 or 14 days (nominal: local calendar days)."""
        if self.length is not None:
            return self.length
        return timedelta(days=_FIXED_SHIFTS[self.type])


class ScheduleConfig(_Frozen):
    """An on-call schedule of one team: a rotation in a time zone, with optional side effects."""

    id: Annotated[str, IdOf("schedule id")]
    team: str
    time_zone: TimeZone
    rotation: RotationConfig
    user_group: str | None = None
    ics_token: Secret | None = None
    ics_token_env: EnvName | None = None
    handoff_channel: str | None = None

    @field_validator("user_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else _check_user_group(value)

    @field_validator("handoff_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return None if value is None else _check_channel(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if len(_given(self, "ics_token", "ics_token_env")) > 1:
            problems.append((("ics_token_env",), "set at most one of ics_token or ics_token_env"))
        start = self.rotation.start
        aware = start.replace(tzinfo=self.zone)
        if aware.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != start:
            problems.append(
                (
                    ("rotation", "start"),
                    f"{start.isoformat()} does not exist in {self.time_zone} (the clocks skip "
                    "it for daylight saving time); pick another time",
                )
            )
        if problems:
            raise Problems(problems)
        return self

    @property
    def zone(self) -> ZoneInfo:
        """`time_zone` as a ZoneInfo."""
        return ZoneInfo(self.time_zone)

    def resolve_ics_token(self, environ: Mapping[str, str]) -> str | None:
        """The ICS feed's token, from `ics_token` or the `ics_token_env` variable.

        None means the feed is disabled (neither key is set); an unset variable raises ConfigError.
        """
        if self.ics_token is not None:
            return self.ics_token.get_secret_value()
        if self.ics_token_env is None:
            return None
        value = environ.get(self.ics_token_env, "")
        if not value:
            raise ConfigError(
                [f"schedule {self.id!r}: environment variable {self.ics_token_env} is not set"]
            )
        return value


class EscalationTarget(_UserOrGroup):
    """Whom a level pages: exactly one of a schedule's on-call, a user or a user group."""

    schedule: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = _given(self, "schedule", "user", "user_group")
        if len(given) != 1:
            got = f" (got {' and '.join(given)})" if given else ""
            raise ValueError(f"set exactly one of schedule, user or user_group{got}")
        return self

    @property
    def kind(self) -> Literal["schedule", "user", "user_group"]:
        """Which of the three keys is set."""
        if self.schedule is not None:
            return "schedule"
        return "user" if self.user is not None else "user_group"


class EscalationLevel(_Frozen):
    """Page `targets`, then wait `delay`; if still unacknowledged, go on to the next level."""

    delay: Duration
    targets: tuple[EscalationTarget, ...]

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: tuple[EscalationTarget, ...]) -> tuple[EscalationTarget, ...]:
        return _non_empty_list(value, "target")


class EscalationPolicyConfig(_Frozen):
    """Levels paged in order; after the last one the whole policy runs `repeat` more times."""

    id: Annotated[str, IdOf("escalation policy id")]
    repeat: int = Field(default=0, ge=0, strict=True)
    levels: tuple[EscalationLevel, ...]

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: tuple[EscalationLevel, ...]) -> tuple[EscalationLevel, ...]:
        return _non_empty_list(value, "level")
