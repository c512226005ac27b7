"""The one normalised alert every source format is parsed into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.domain.incident import Severity


class AlertStatus(StrEnum):
    """What the monitor says about one alert."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"  # PagerDuty Events v2 `acknowledge`
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Link:
    """A link shown on the incident (runbook, dashboard, generator URL)."""

    url: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert from one monitor, whatever its wire format.

    `fingerprint` identifies the alert within its integration; `group_key` identifies the
    incident it belongs to (Alertmanager's groupKey, a dedup key), so repeats and related alerts
    land on one open incident.
    """

    fingerprint: str
    group_key: str
    status: AlertStatus
    title: str
    description: str = ""
    severity: Severity | None = None
    service: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    links: tuple[Link, ...] = ()
    source: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
