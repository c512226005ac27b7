"""The event stream's vocabulary: event types and the body every event has (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

EventType = Literal[
    "incident.triggered",
    "incident.acknowledged",
    "incident.resolved",
    "incident.escalated",
    "incident.severity_changed",
    "incident.note_added",
    "alert.received",
]
EVENT_TYPES: tuple[EventType, ...] = (
    "incident.triggered",
    "incident.acknowledged",
    "incident.resolved",
    "incident.escalated",
    "incident.severity_changed",
    "incident.note_added",
    "alert.received",
)

INCIDENT_EVENTS: dict[str, EventType] = {
    "triggered": "incident.triggered",
    "acknowledged": "incident.acknowledged",
    "resolved": "incident.resolved",
    "escalated": "incident.escalated",
    "severity_changed": "incident.severity_changed",
}
"""Incident changes (workflow trigger names) and the event each publishes."""


def event_body(
    *,
    event_id: str,
    event_type: EventType,
    time: datetime,
    actor: str,
    incident: dict[str, Any],
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One event as published: `id` (unique; consumers deduplicate on it), `type`, `time`
    (RFC 3339 UTC), `actor`, the incident as the API shows it, and type-specific `data`."""
    return {
        "id": event_id,
        "type": event_type,
        "time": time.isoformat().replace("+00:00", "Z"),
        "actor": actor,
        "incident": incident,
        "data": data or {},
    }
