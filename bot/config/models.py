"""YAML models of the core sections: slack, teams, services, integrations and incidents."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from bot.config.checks import (
    _CHANNEL_PREFIX,
    IdOf,
    _check_channel,
    _check_id,
    _check_user_ids,
    _Frozen,
    _NamedSecret,
    _parse_severity,
)
from bot.config.oncall import TimeZone
from bot.config.types import Duration
from bot.domain.incident import Severity
from bot.ingest.parsers import PARSERS
from bot.ingest.slack_webhook import SlackWebhookOptions

INTEGRATION_TYPES = tuple(PARSERS)
"""The integration `type`s the configuration accepts: one per webhook body parser."""


_CRON_HINT = (
    'five fields: minute hour day-of-month month day-of-week, e.g. "0 9 * * 1" (Mondays at 09:00)'
)
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day_number(token: str) -> int:
    """A crontab day of week: 0-7 (0 and 7 are Sunday) or a name (sun, mon, …)."""
    word = token.strip().lower()
    if word.isdigit():
        if int(word) > 7:
            raise ValueError(f"day of week {token!r} is out of range (0-7; 0 and 7 are Sunday)")
        return int(word) % 7
    if word in _DAY_NAMES:
        return _DAY_NAMES.index(word)
    raise ValueError(f"unknown day of week {token!r} (use 0-7 or sun, mon, …)")


def _crontab_days(field: str) -> str:
    """Standard crontab day-of-week field → APScheduler day names.

    APScheduler 3 numbers days from Monday = 0, so its `from_crontab("0 9 * * 1")` would fire
    on Tuesdays; expanding the field to names here keeps crontab's meaning (1 = Monday,
    0 and 7 = Sunday), ranges, lists and steps included.
    """
    days: set[int] = set()
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid step in day of week {item!r}")
            step = int(step_text)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            lo, hi = base.split("-", 1)
            first, last = _day_number(lo), _day_number(hi)
            if hi.strip() == "7":
                last = 7  # "5-7" is Friday to Sunday
            if last < first:
                raise ValueError(f"day-of-week range {base!r} runs backwards")
        else:
            first = _day_number(base)
            last = 6 if slash else first
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def parse_cron(expr: str, time_zone: str = "UTC") -> CronTrigger:
    """A crontab expression (standard day-of-week numbering) as a trigger in `time_zone`.

    Raises:
        ValueError: the expression is not five valid crontab fields.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"invalid cron expression {expr!r}: {_CRON_HINT}")
    try:
        fields[4] = _crontab_days(fields[4])
        return CronTrigger.from_crontab(" ".join(fields), timezone=ZoneInfo(time_zone))
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}; {_CRON_HINT}") from None


def _check_cron(value: str) -> str:
    parse_cron(value)
    return " ".join(value.split())


Cron = Annotated[str, AfterValidator(_check_cron)]
"""A five-field crontab expression (`0 9 * * 1`), spaces normalised."""


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
    escalation_policy_by_severity: dict[Severity, str] = {}  # e.g. {SEV1: payments-critical}
    report_cron: Cron | None = (
        None  # the weekly report's schedule for this team (else reports.cron)
    )
    report_time_zone: TimeZone | None = None  # … and its time zone (else reports.time_zone)

    @field_validator("escalation_policy_by_severity", mode="before")
    @classmethod
    def _by_severity(cls, value: Any) -> Any:
        return _severity_keys(value)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if value == "all":
            raise ValueError("the team id 'all' is reserved (it names the overall weekly report)")
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

    id: Annotated[str, IdOf("id")]
    name: str = Field(min_length=1)
    team: str
    auto_resolve: bool = True
    escalation_policy: str | None = None
    auto_resolve_after: Duration | None = None  # resolve its incidents after this long quiet
    escalation_policy_by_severity: dict[Severity, str] = {}  # e.g. {SEV1: payments-critical}

    @field_validator("escalation_policy_by_severity", mode="before")
    @classmethod
    def _by_severity(cls, value: Any) -> Any:
        return _severity_keys(value)


class IntegrationConfig(_NamedSecret):
    """A webhook source: `POST /webhooks/<name>` with `Authorization: Bearer <token>`."""

    secret_of: ClassVar[str] = "integration"

    name: Annotated[str, IdOf("integration name")]

    type: str  # a key of bot.ingest.parsers.PARSERS: adding a parser is what adds a type
    service: str | None = None
    max_requests_per_second: float | None = Field(default=None, gt=0)  # else incidents.*
    slack_webhook: SlackWebhookOptions | None = None  # type slack-webhook only

    @field_validator("slack_webhook")
    @classmethod
    def _options_fit_the_type(
        cls, value: SlackWebhookOptions | None, info: ValidationInfo
    ) -> SlackWebhookOptions | None:
        kind = info.data.get("type")
        if value is not None and kind is not None and kind != "slack-webhook":
            raise ValueError(f"applies to type slack-webhook only (this is {kind})")
        return value

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        if isinstance(value, str) and value in PARSERS:
            return value
        *others, last = [repr(kind) for kind in PARSERS]
        accepted = f"{', '.join(others)} or {last}" if others else last
        raise ValueError(f"Input should be {accepted} (got {value!r})")


def _severity_keys(value: Any) -> Any:
    """A mapping keyed by severity words (`SEV1`, `critical`…), keyed by Severity."""
    if not isinstance(value, dict):
        return value
    return {_parse_severity(key): item for key, item in value.items()}


class IncidentsConfig(_Frozen):
    """Incident and ingest tuning; every key is optional."""

    default_severity: Severity = Severity.SEV3
    idempotency_ttl: Duration = timedelta(hours=24)
    repeat_note_interval: Duration = timedelta(hours=1)
    max_body_bytes: int = Field(default=1_048_576, gt=0, le=64 * 1_048_576)
    max_alerts_per_delivery: int = Field(default=1000, gt=0, le=100_000)
    # beyond this many new incidents a minute from one integration, new alerts join one
    # "alert storm" incident instead of opening an incident (and a channel) each
    max_new_incidents_per_minute: int = Field(default=120, gt=0)
    # each integration's webhook requests: a token bucket per integration and replica
    max_requests_per_second: float = Field(default=200.0, gt=0)
    request_burst: int = Field(default=400, gt=0)

    @field_validator("default_severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        return _parse_severity(value)


# --------------------------------------------------------------------------- reports


class ReportsConfig(_Frozen):
    """When the weekly report is posted: a crontab expression read in `time_zone`.

    Each team with a channel gets its own report there (a team may set `report_cron` and
    `report_time_zone`); the overall report goes to the incidents channel. A report covers
    the time since the previous scheduled time.
    """

    enabled: bool = True
    cron: Cron = "0 9 * * 1"
    time_zone: TimeZone = "UTC"
