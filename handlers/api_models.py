"""The `/api/v1` bodies as pydantic models: handlers validate with them, and the OpenAPI
document is generated from them (so the two cannot drift)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from bot.domain import Severity
from bot.domain.matchers import MatcherError, parse_matcher
from bot.domain.silences import MAX_COMMENT, MAX_MATCHERS

SLACK_USER = r"^[UW][A-Z0-9]{2,20}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeclareBody(_Body):
    """`POST /api/v1/incidents`: declare an incident."""

    title: str = Field(min_length=1, max_length=250, pattern=r"\S")
    severity: Severity
    service: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=10_000)
    dedup_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="An open incident with this key is answered (200) instead of a new one.",
    )


class PatchBody(_Body):
    """`PATCH /api/v1/incidents/{id}`: change the status and/or the severity."""

    status: Literal["acknowledged", "resolved"] | None = None
    severity: Severity | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.status is None and self.severity is None:
            raise ValueError("give status and/or severity")
        return self


class NoteBody(_Body):
    """`POST /api/v1/incidents/{id}/notes`: a note for the timeline and the channel."""

    text: str = Field(min_length=1, max_length=3000, pattern=r"\S")


class OverrideBody(_Body):
    """`POST /api/v1/overrides`: put `user` on call for `schedule` over [start, end)."""

    schedule: str = Field(min_length=1, max_length=100)
    user: str = Field(pattern=SLACK_USER, description="A Slack user ID, e.g. U0ALICE01")
    start: AwareDatetime | None = Field(default=None, description="Default: now")
    end: AwareDatetime


def _matcher(text: str) -> str:
    try:
        return str(parse_matcher(text))
    except MatcherError as exc:
        raise ValueError(str(exc)) from None


MatcherText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description='An Alertmanager matcher: name="value", !=, =~ "regex" or !~',
        examples=['service="payment-api"'],
    ),
    AfterValidator(_matcher),
]


class SilenceBody(_Body):
    """`POST /api/v1/silences`: mute alerts matching every matcher until `ends_at`."""

    matchers: list[MatcherText] = Field(min_length=1, max_length=MAX_MATCHERS)
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now")
    ends_at: AwareDatetime
    comment: str = Field(min_length=1, max_length=MAX_COMMENT, pattern=r"\S")


# ---- answers (documented in the OpenAPI document) ----------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlackRefs(_Out):
    channel_id: str | None
    channel_name: str | None
    message_ts: str | None
    announcement_channel: str | None
    announcement_ts: str | None


class StatusUpdateOut(_Out):
    status: Literal["investigating", "identified", "monitoring"]
    summary: str
    at: datetime


class IncidentOut(_Out):
    id: int
    number: str
    title: str
    description: str
    status: Literal["triggered", "acknowledged", "resolved"]
    severity: Severity
    service: str | None
    team: str | None
    category: str | None
    source: str
    integration: str | None
    alert_count: int
    labels: dict[str, str]
    links: list[dict[str, str]]
    created_by: str | None
    lead: str | None
    comms: str | None
    update: StatusUpdateOut | None
    triggered_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    updated_at: datetime
    slack: SlackRefs


class ListedIncident(IncidentOut):
    description_truncated: bool


class IncidentList(_Out):
    incidents: list[ListedIncident]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class TimelineEventOut(_Out):
    id: int
    at: datetime
    kind: str
    actor: str
    text: str
    data: dict[str, Any]


class AlertOut(_Out):
    fingerprint: str
    integration: str
    status: str
    title: str
    labels: dict[str, str]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None


class IncidentDetail(IncidentOut):
    timeline: list[TimelineEventOut]
    alerts: list[AlertOut]


class NoteOut(_Out):
    incident_id: int
    kind: Literal["note"]
    actor: str
    text: str
    at: datetime


class EscalateOut(_Out):
    incident_id: int
    message: str


class ShiftOut(_Out):
    user: str
    start: datetime
    end: datetime
    override_id: int | None


class ScheduleOnCall(_Out):
    schedule: str
    current: ShiftOut
    next: ShiftOut | None


class TeamOnCallOut(_Out):
    team: str
    name: str
    schedules: list[ScheduleOnCall]


class OnCallOut(_Out):
    teams: list[TeamOnCallOut]


class OverrideOut(_Out):
    id: int
    schedule: str
    user: str
    start: datetime
    end: datetime
    created_at: datetime
    created_by: str


class OverrideList(_Out):
    overrides: list[OverrideOut]


class SilenceOut(_Out):
    id: int
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    created_at: datetime
    status: Literal["pending", "active", "expired"]
    expired_at: datetime | None
    expired_by: str | None
    held_alerts: int | None = None


class SilenceList(_Out):
    silences: list[SilenceOut]


class SuppressedAlertOut(_Out):
    integration: str
    fingerprint: str
    title: str
    labels: dict[str, str]
    reason: Literal["muted", "dropped"]
    by: str
    silence_id: int | None
    window: str | None
    status: Literal["firing", "resolved"]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    held_until: datetime | None
    released_at: datetime | None
    released_incident_id: int | None


class SuppressedAlertList(_Out):
    alerts: list[SuppressedAlertOut]


class StatsOut(BaseModel):
    """Figures for a period (see `GET /api/v1/stats`)."""

    model_config = ConfigDict(extra="allow")


class ProbeOut(_Out):
    """A probe's configuration summary and state (`GET /api/v1/probes`)."""

    id: str
    kind: Literal["http", "tcp"]
    target: str = Field(description="The request (method and URL) or tcp host:port")
    service: str
    interval_seconds: float
    status: Literal["unknown", "up", "down"] = Field(
        description="unknown: not run yet; down: failures_to_trigger failures in a row"
    )
    last_run_at: datetime | None
    last_ok: bool | None
    last_latency_ms: float | None
    last_error: str | None
    cert_days: int | None = Field(description="HTTPS: days until the certificate expires")
    next_run_at: datetime | None
    anomalies: list[Literal["latency", "error_rate", "cert"]]
    uptime_24h: float | None = Field(description="Share of successful checks (0..1)")
    uptime_7d: float | None
    slo_objective: float | None = Field(description="Percent of checks that should succeed")
    budget_left: float | None = Field(
        description="Share of the error budget not yet spent over the SLO window"
    )
    burning: bool = Field(description="A burn-rate alert is open")


class ProbeList(_Out):
    probes: list[ProbeOut]


class SloOut(_Out):
    """An SLO over an alert source and its error budget (`GET /api/v1/slos`)."""

    id: str
    integration: str | None = Field(description="The source's integration, if it names one")
    matchers: list[str] = Field(description="Matchers over the alerts' labels (all must match)")
    service: str | None
    objective: float = Field(description="Percent of the window without an alert firing")
    window_seconds: float
    evaluated_at: datetime | None = Field(description="When its bad time was last added up")
    bad_seconds: float = Field(description="Seconds with an alert firing in the SLO window")
    availability: float | None = Field(description="Share of the SLO window without one (0..1)")
    budget_left: float | None = Field(
        description="Share of the error budget not yet spent over the SLO window (negative: "
        "overspent)"
    )
    burn_rates: dict[str, float] = Field(description="Burn rate per window: 5m, 30m, 1h, 6h")
    burning: bool = Field(description="A burn-rate alert is open")


class SloList(_Out):
    slos: list[SloOut]


class ProbeResultOut(_Out):
    at: datetime
    ok: bool
    latency_ms: float
    status_code: int | None
    error: str | None
    cert_days: int | None


class ProbeResults(_Out):
    """`GET /api/v1/probes/{id}/results`: raw results since `since`, oldest first."""

    probe: str
    since: datetime
    results: list[ProbeResultOut]
    truncated: bool = Field(description="More results exist: ask again from the last `at`")


class ErrorOut(_Out):
    error: str
    request_id: str
    fields: dict[str, str] | None = None
    error_id: str | None = None
