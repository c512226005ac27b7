"""Configuration: environment `Settings` and the YAML file's models, validated with line numbers."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.config_yaml import Loc, Problems, clean_message, validate_yaml
from bot.domain.incident import Severity
from bot.durations import Duration
from bot.errors import ConfigError

EXAMPLE_CONFIG_PATH = Path(__file__).parent / "examples" / "pulseops.yml"
"""The commented example configuration shipped with the package (also used by the sandbox)."""

INTEGRATION_TYPES = ("alertmanager", "generic", "pagerduty")

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
_CHANNEL_NAME = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}")
_CHANNEL_PREFIX = re.compile(r"[a-z0-9][a-z0-9_-]{0,19}")
_USER_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --------------------------------------------------------------------------- environment


class Settings(BaseSettings):
    """Process settings from the environment (names as in SPEC.md); built by the factory/CLI."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET"
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    database_url: str = Field(
        default="sqlite+aiosqlite:///pulseops.db", validation_alias="PULSEOPS_DATABASE_URL"
    )
    config_path: Path = Field(default=Path("pulseops.yml"), validation_alias="PULSEOPS_CONFIG")
    host: str = Field(default="0.0.0.0", validation_alias="PULSEOPS_HOST")
    port: int = Field(default=3000, ge=0, le=65535, validation_alias="PULSEOPS_PORT")
    log_format: Literal["json", "text"] = Field(
        default="json", validation_alias="PULSEOPS_LOG_FORMAT"
    )
    log_level: str = Field(default="INFO", validation_alias="PULSEOPS_LOG_LEVEL")

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value if value.endswith("/") else value + "/"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def socket_mode(self) -> bool:
        """True when an app-level token is set: connect over Socket Mode instead of HTTP."""
        return _is_set(self.slack_app_token)

    def require_for_serve(self) -> None:
        """Raise ConfigError naming every variable `pulseops serve` needs but lacks."""
        missing: list[str] = []
        if not _is_set(self.slack_bot_token):
            missing.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        if not self.socket_mode and not _is_set(self.slack_signing_secret):
            missing.append(
                "SLACK_SIGNING_SECRET is not set (required in HTTP mode; "
                "set SLACK_APP_TOKEN instead to use Socket Mode)"
            )
        if missing:
            raise ConfigError(missing)


class _MappingSettings(Settings):
    """Settings read only from the mapping given to `load_settings`, never from os.environ."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `environ` (default os.environ); ConfigError names bad variables."""
    try:
        if environ is None:
            return Settings()
        names = {str(f.validation_alias) for f in Settings.model_fields.values()}
        values: dict[str, Any] = {k: v for k, v in environ.items() if k in names}
        return _MappingSettings(**values)
    except ValidationError as exc:
        raise ConfigError(
            [f"{_loc_name(e['loc'])}: {clean_message(e)}" for e in exc.errors()]
        ) from None


def _is_set(secret: SecretStr | None) -> bool:
    return secret is not None and secret.get_secret_value().strip() != ""


# --------------------------------------------------------------------------- YAML models


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str, what: str = "id") -> str:
    if not _ID.fullmatch(value):
        raise ValueError(
            f"invalid {what} {value!r}: use lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return value


def _check_channel(value: str) -> str:
    if not (_CHANNEL_ID.fullmatch(value) or _CHANNEL_NAME.fullmatch(value)):
        raise ValueError(
            f"invalid channel {value!r}: use a channel ID such as C0INCIDENT or '#name' "
            "(lowercase letters, digits, '-' and '_')"
        )
    return value


def _check_user_ids(values: tuple[str, ...]) -> tuple[str, ...]:
    bad = [m for m in values if not _USER_ID.fullmatch(m)]
    if bad:
        raise ValueError(
            f"not Slack user IDs: {', '.join(repr(m) for m in bad)} "
            "(user IDs look like U0ALICE01; find one under a profile's ⋮ > Copy member ID)"
        )
    return values


def _check_user_group(value: str) -> str:
    if not _USER_GROUP_ID.fullmatch(value):
        raise ValueError(
            f"invalid user group {value!r}: use a user group ID such as S0PAYONCAL, not its "
            "@handle (the ID is in the group's URL)"
        )
    return value


def _check_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    return value


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.fullmatch(value):
        raise ValueError(f"invalid environment variable name {value!r}")
    return value


class SlackConfig(_Frozen):
    """Where incidents are announced and how their channels are named."""

    incidents_channel: str
    channel_prefix: str = "inc"
    private_channels: bool = False

    @field_validator("incidents_channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return _check_channel(value)

    @field_validator("channel_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _CHANNEL_PREFIX.fullmatch(value):
            raise ValueError(
                f"invalid channel_prefix {value!r}: up to 20 lowercase letters, digits, "
                "'-' and '_', starting with a letter or digit"
            )
        return value


class TeamConfig(_Frozen):
    """A team: its own channel and its members (Slack user IDs)."""

    id: str
    name: str = Field(min_length=1)
    channel: str | None = None
    members: tuple[str, ...] = ()
    escalation_policy: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return None if value is None else _check_channel(value)

    @field_validator("members")
    @classmethod
    def _members(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_user_ids(value)


class ServiceConfig(_Frozen):
    """A service alerts are routed to; it belongs to one team."""

    id: str
    name: str = Field(min_length=1)
    team: str
    auto_resolve: bool = True
    escalation_policy: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value)


class IntegrationConfig(_Frozen):
    """A webhook source: `POST /webhooks/<name>` with `Authorization: Bearer <token>`."""

    name: str
    type: Literal["alertmanager", "generic", "pagerduty"]
    token: SecretStr | None = None
    token_env: str | None = None
    service: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_id(value, "integration name")

    @field_validator("token")
    @classmethod
    def _non_empty(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret(value)

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return _check_env_name(value)

    @model_validator(mode="after")
    def _one_token(self) -> Self:
        if (self.token is None) == (self.token_env is None):
            raise ValueError("set exactly one of token or token_env")
        return self

    def resolve_token(self, environ: Mapping[str, str]) -> str:
        """Return the bearer token, from `token` or the `token_env` variable; raise ConfigError."""
        if self.token is not None:
            return self.token.get_secret_value()
        value = environ.get(self.token_env or "", "")
        if not value:
            raise ConfigError(
                [f"integration {self.name!r}: environment variable {self.token_env} is not set"]
            )
        return value


def _parse_severity(value: Any) -> Any:
    if isinstance(value, Severity):
        return value
    severity = Severity.parse(value)
    if severity is None:
        raise ValueError(f"unknown severity {value!r}: use SEV1, SEV2, SEV3 or SEV4")
    return severity


class IncidentsConfig(_Frozen):
    """Incident and ingest tuning; every key is optional."""

    default_severity: Severity = Severity.SEV3
    idempotency_ttl: Duration = timedelta(hours=24)
    repeat_note_interval: Duration = timedelta(hours=1)
    max_body_bytes: int = Field(default=1_048_576, gt=0, le=64 * 1_048_576)

    @field_validator("default_severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return _parse_severity(value)


# --------------------------------------------------------------------------- on-call models

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


def _non_empty_list(value: tuple[Any, ...], what: str) -> tuple[Any, ...]:
    if not value:
        raise ValueError(f"must list at least one {what}")
    return value


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
        repeated = sorted({p for p in value if value.count(p) > 1})
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

    id: str
    team: str
    time_zone: str
    rotation: RotationConfig
    user_group: str | None = None
    ics_token: SecretStr | None = None
    ics_token_env: str | None = None
    handoff_channel: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "schedule id")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_time_zone(value)

    @field_validator("user_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else _check_user_group(value)

    @field_validator("ics_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_secret(value)

    @field_validator("ics_token_env")
    @classmethod
    def _token_env(cls, value: str | None) -> str | None:
        return _check_env_name(value)

    @field_validator("handoff_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        return None if value is None else _check_channel(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.ics_token is not None and self.ics_token_env is not None:
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


class EscalationTarget(_Frozen):
    """Whom a level pages: exactly one of a schedule's on-call, a user or a user group."""

    schedule: str | None = None
    user: str | None = None
    user_group: str | None = None

    @field_validator("user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return None if value is None else _check_user_ids((value,))[0]

    @field_validator("user_group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        return None if value is None else _check_user_group(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("schedule", "user", "user_group") if getattr(self, k) is not None]
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

    id: str
    repeat: int = Field(default=0, ge=0, strict=True)
    levels: tuple[EscalationLevel, ...]

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return _check_id(value, "escalation policy id")

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: tuple[EscalationLevel, ...]) -> tuple[EscalationLevel, ...]:
        return _non_empty_list(value, "level")


# --------------------------------------------------------------------------- the whole file


class PulseOpsConfig(_Frozen):
    """The whole YAML configuration, cross-checked (unique ids, references that resolve)."""

    slack: SlackConfig
    teams: tuple[TeamConfig, ...] = ()
    services: tuple[ServiceConfig, ...] = ()
    integrations: tuple[IntegrationConfig, ...] = ()
    incidents: IncidentsConfig = IncidentsConfig()
    schedules: tuple[ScheduleConfig, ...] = ()
    escalation_policies: tuple[EscalationPolicyConfig, ...] = ()

    _teams: dict[str, TeamConfig] = PrivateAttr(default_factory=dict)
    _services: dict[str, ServiceConfig] = PrivateAttr(default_factory=dict)
    _integrations: dict[str, IntegrationConfig] = PrivateAttr(default_factory=dict)
    _schedules: dict[str, ScheduleConfig] = PrivateAttr(default_factory=dict)
    _policies: dict[str, EscalationPolicyConfig] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _cross_check(self, info: ValidationInfo) -> Self:
        environ = info.context.get("environ") if isinstance(info.context, dict) else None
        problems = [
            *_duplicate_problems(self),
            *_reference_problems(self),
            *_environment_problems(self, environ),
        ]
        if problems:
            raise Problems(problems)
        return self

    def model_post_init(self, context: Any) -> None:
        """Index every section by id for the lookup helpers."""
        self._teams = {t.id: t for t in self.teams}
        self._services = {s.id: s for s in self.services}
        self._integrations = {i.name: i for i in self.integrations}
        self._schedules = {s.id: s for s in self.schedules}
        self._policies = {p.id: p for p in self.escalation_policies}

    def team(self, team_id: str) -> TeamConfig | None:
        """The team with this id, or None."""
        return self._teams.get(team_id)

    def service(self, service_id: str) -> ServiceConfig | None:
        """The service with this id, or None."""
        return self._services.get(service_id)

    def integration(self, name: str) -> IntegrationConfig | None:
        """The integration with this name, or None."""
        return self._integrations.get(name)

    def schedule(self, schedule_id: str) -> ScheduleConfig | None:
        """The schedule with this id, or None."""
        return self._schedules.get(schedule_id)

    def escalation_policy(self, policy_id: str) -> EscalationPolicyConfig | None:
        """The escalation policy with this id, or None."""
        return self._policies.get(policy_id)

    def team_for_service(self, service_id: str) -> TeamConfig | None:
        """The team owning this service, or None when the service is unknown."""
        service = self.service(service_id)
        return None if service is None else self.team(service.team)

    def policy_for_service(self, service_id: str) -> EscalationPolicyConfig | None:
        """The service's escalation policy, else its team's, else None (also for unknown ids)."""
        service = self.service(service_id)
        if service is None:
            return None
        team = self.team(service.team)
        policy_id = service.escalation_policy or (team.escalation_policy if team else None)
        return None if policy_id is None else self.escalation_policy(policy_id)

    def schedules_for_team(self, team_id: str) -> tuple[ScheduleConfig, ...]:
        """The team's schedules, in file order."""
        return tuple(s for s in self.schedules if s.team == team_id)

    def handoff_channel_for(self, schedule_id: str) -> str | None:
        """Where handoff messages go: the schedule's handoff_channel, else its team's channel."""
        schedule = self.schedule(schedule_id)
        if schedule is None:
            return None
        if schedule.handoff_channel is not None:
            return schedule.handoff_channel
        team = self.team(schedule.team)
        return None if team is None else team.channel


def _duplicate_problems(config: PulseOpsConfig) -> Iterator[tuple[Loc, str]]:
    for section, key, what in (
        ("teams", "id", "team id"),
        ("services", "id", "service id"),
        ("integrations", "name", "integration name"),
        ("schedules", "id", "schedule id"),
        ("escalation_policies", "id", "escalation policy id"),
    ):
        first: dict[str, int] = {}
        for i, item in enumerate(getattr(config, section)):
            value = getattr(item, key)
            if value in first:
                yield (
                    (section, i, key),
                    f"duplicate {what} {value!r} (first at {section}[{first[value]}])",
                )
            else:
                first[value] = i
    groups: dict[str, int] = {}
    for i, schedule in enumerate(config.schedules):
        if schedule.user_group is None:
            continue
        if schedule.user_group in groups:
            yield (
                ("schedules", i, "user_group"),
                f"user group {schedule.user_group!r} is already kept in sync by "
                f"schedules[{groups[schedule.user_group]}]; two schedules would overwrite "
                "each other's members",
            )
        else:
            groups[schedule.user_group] = i


def _reference_problems(config: PulseOpsConfig) -> Iterator[tuple[Loc, str]]:
    team_ids = [t.id for t in config.teams]
    service_ids = [s.id for s in config.services]
    schedule_ids = [s.id for s in config.schedules]
    policy_ids = [p.id for p in config.escalation_policies]

    def unknown(what: str, value: str, known: list[str]) -> str:
        return f"unknown {what} {value!r} ({_known(known)})"

    for i, team in enumerate(config.teams):
        if team.escalation_policy is not None and team.escalation_policy not in policy_ids:
            problem = unknown("escalation policy", team.escalation_policy, policy_ids)
            yield (("teams", i, "escalation_policy"), problem)
    for i, service in enumerate(config.services):
        if service.team not in team_ids:
            yield (("services", i, "team"), unknown("team", service.team, team_ids))
        if service.escalation_policy is not None and service.escalation_policy not in policy_ids:
            problem = unknown("escalation policy", service.escalation_policy, policy_ids)
            yield (("services", i, "escalation_policy"), problem)
    for i, integration in enumerate(config.integrations):
        if integration.service is not None and integration.service not in service_ids:
            problem = unknown("service", integration.service, service_ids)
            yield (("integrations", i, "service"), problem)
    for i, schedule in enumerate(config.schedules):
        if schedule.team not in team_ids:
            yield (("schedules", i, "team"), unknown("team", schedule.team, team_ids))
    for i, policy in enumerate(config.escalation_policies):
        for j, level in enumerate(policy.levels):
            for k, target in enumerate(level.targets):
                if target.schedule is not None and target.schedule not in schedule_ids:
                    loc = ("escalation_policies", i, "levels", j, "targets", k, "schedule")
                    yield (loc, unknown("schedule", target.schedule, schedule_ids))


def _environment_problems(
    config: PulseOpsConfig, environ: Mapping[str, str] | None
) -> Iterator[tuple[Loc, str]]:
    """Unset `token_env` / `ics_token_env` variables (skipped when no environment is given)."""
    if environ is None:
        return
    for section, key in (("integrations", "token_env"), ("schedules", "ics_token_env")):
        for i, item in enumerate(getattr(config, section)):
            name = getattr(item, key)
            if name and not environ.get(name):
                yield ((section, i, key), f"environment variable {name} is not set")


def _known(ids: list[str]) -> str:
    return f"known: {', '.join(sorted(set(ids)))}" if ids else "none are configured"


# --------------------------------------------------------------------------- loading


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> PulseOpsConfig:
    """Read and validate the YAML file at `path`; raise ConfigError with one line per problem.

    `environ` (default os.environ) is where `token_env` and `ics_token_env` variables must be set.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{source}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{source}: is a directory, not a YAML file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: not UTF-8 text ({exc.reason})"]) from None
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    return parse_config(text, source=source, environ=environ)


def parse_config(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> PulseOpsConfig:
    """Validate YAML text as PulseOps configuration; raise ConfigError with `source:line:` lines."""
    env = os.environ if environ is None else environ
    return validate_yaml(text, PulseOpsConfig, source=source, context={"environ": env})


def config_check(path: Path, environ: Mapping[str, str] | None = None) -> int:
    """Run `pulseops config check FILE`: print a summary and return 0, or the problems and 2."""
    try:
        config = load_config(path, environ=environ)
    except ConfigError as exc:
        for problem in exc.problems:
            sys.stderr.write(problem + "\n")
        return 2
    counts = (
        _plural(len(config.teams), "team"),
        _plural(len(config.services), "service"),
        _plural(len(config.integrations), "integration"),
        _plural(len(config.schedules), "schedule"),
        _plural(len(config.escalation_policies), "escalation policy", "escalation policies"),
    )
    sys.stdout.write(f"OK: {', '.join(counts)}\n")
    return 0


def _plural(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def _loc_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)
