"""Read models the store returns and the renderers show: plain frozen values, no ORM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.incident import IncidentState, Severity, Status


@dataclass(frozen=True, slots=True)
class NewIncident:
    """An incident about to be opened: what it is about, where it came from, who opened it."""

    title: str
    severity: Severity
    service_id: str | None
    source: str  # "slack", or the monitor's format ("alertmanager", "generic", …)
    actor: str  # who or what opened it, for the first timeline entry
    text: str  # the first timeline entry
    description: str = ""
    integration: str | None = None
    dedup_key: str | None = None
    created_by: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    links: list[dict[str, str]] = field(default_factory=list)
    invite: tuple[str, ...] = ()  # people to invite to its channel besides the team
    declared_in: str | None = None  # the channel a person declared it from (told the link there)
    category: str | None = None
    routed: tuple[str, ...] = ()  # what routing decided and why, for the timeline


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    title: str
    description: str
    status: Status
    severity: Severity
    service_id: str | None
    team_id: str | None
    source: str
    integration: str | None
    dedup_key: str | None
    auto_resolve: bool
    created_by: str | None
    version: int
    alert_count: int
    labels: dict[str, str]
    links: list[dict[str, str]]
    triggered_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    updated_at: datetime
    channel_id: str | None = None
    channel_name: str | None = None
    message_ts: str | None = None
    message_version: int = 0
    announcement_channel: str | None = None
    announcement_ts: str | None = None
    announcement_version: int = 0
    category: str | None = None
    lead: str | None = None  # the incident lead's Slack user id
    comms: str | None = None  # the communications lead's Slack user id
    update_status: str | None = None  # the latest status update: investigating | identified | …
    update_summary: str | None = None
    last_update_at: datetime | None = None
    chart_file_id: str | None = None  # a chart shown in the channel's incident message

    @property
    def number(self) -> str:
        return f"INC-{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status is not Status.RESOLVED

    @property
    def state(self) -> IncidentState:
        return IncidentState(
            status=self.status,
            version=self.version,
            acknowledged_by=self.acknowledged_by,
            acknowledged_at=self.acknowledged_at,
            resolved_by=self.resolved_by,
            resolved_at=self.resolved_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "title": self.title,
            "description": self.description,
            "status": self.status.value,
            "severity": self.severity.value,
            "service": self.service_id,
            "team": self.team_id,
            "category": self.category,
            "source": self.source,
            "integration": self.integration,
            "alert_count": self.alert_count,
            "labels": self.labels,
            "links": self.links,
            "created_by": self.created_by,
            "lead": self.lead,
            "comms": self.comms,
            "update": (
                {
                    "status": self.update_status,
                    "summary": self.update_summary,
                    "at": _iso(self.last_update_at),
                }
                if self.last_update_at
                else None
            ),
            "triggered_at": _iso(self.triggered_at),
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": _iso(self.resolved_at),
            "resolved_by": self.resolved_by,
            "updated_at": _iso(self.updated_at),
            "slack": {
                "channel_id": self.channel_id,
                "channel_name": self.channel_name,
                "message_ts": self.message_ts,
                "announcement_channel": self.announcement_channel,
                "announcement_ts": self.announcement_ts,
            },
        }


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    id: int
    incident_id: int
    at: datetime
    kind: str
    actor: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": _iso(self.at),
            "kind": self.kind,
            "actor": self.actor,
            "text": self.text,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    incident_id: int
    integration: str
    fingerprint: str
    status: str
    title: str
    labels: dict[str, str]
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    last_note_at: datetime | None = None  # the last "alert repeated" timeline note
    severity: str | None = None  # the severity the monitor last sent for it

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "integration": self.integration,
            "status": self.status,
            "title": self.title,
            "labels": self.labels,
            "occurrences": self.occurrences,
            "first_seen_at": _iso(self.first_seen_at),
            "last_seen_at": _iso(self.last_seen_at),
            "resolved_at": _iso(self.resolved_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True, slots=True)
class Followup:
    """Work to do after an incident."""

    id: int
    incident_id: int
    text: str
    owner: str | None
    created_by: str
    created_at: datetime
    done_at: datetime | None = None
