"""What the alert pipeline decides for one alert: typed decisions, and the outcome each yields.

A stage returns one of these (or None to let the next stage decide); `IncidentService.apply`
carries it out in the delivery's transaction and answers an `IngestOutcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.alerts import Alert
from bot.domain.incident import Severity
from bot.domain.records import Incident, NewIncident
from bot.domain.silences import Hold


class Outcome(StrEnum):
    """What happened to one alert (the `outcome` of a webhook answer and of the metric)."""

    CREATED = "created"  # opened a new incident
    GROUPED = "grouped"  # a new alert joined an open incident
    DEDUPLICATED = "deduplicated"  # the same alert again, counted on its incident
    ACKNOWLEDGED = "acknowledged"  # the monitor acknowledged the incident
    ALERT_RESOLVED = "alert_resolved"  # the alert resolved; others still fire
    RESOLVED = "resolved"  # the last alert resolved and the incident with it
    IGNORED = "ignored"  # nothing to do (resolved or acknowledged, with no incident)
    MUTED = "muted"  # silenced or in a maintenance window
    DROPPED = "dropped"  # a route drops it: recorded, never an incident


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to one alert, as the webhook answer reports it."""

    fingerprint: str
    outcome: Outcome
    incident_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "outcome": self.outcome.value,
            "incident_id": self.incident_id,
            "incident": f"INC-{self.incident_id}" if self.incident_id else None,
        }


@dataclass(frozen=True, slots=True)
class Open:
    """Open a new incident for the alert."""

    alert: Alert
    new: NewIncident


@dataclass(frozen=True, slots=True)
class Raise:
    """The incident's severity rises to `to` (an alert more severe than it joined or repeated);
    `why` says which alert and what made it that severe."""

    to: Severity
    why: str


@dataclass(frozen=True, slots=True)
class GroupInto:
    """A new alert of an open incident's group joins it (`grouped_by`: the route that grouped)."""

    alert: Alert
    incident: Incident
    grouped_by: str | None = None
    raise_severity: Raise | None = None


@dataclass(frozen=True, slots=True)
class Repeat:
    """The same alert again on its open incident.

    `counted` when the dedup stage already counted it (the storm fast path); otherwise the
    alert is stored firing again (`refired` when it had resolved). `last_note_at` decides
    whether a timeline note is due.
    """

    alert: Alert
    incident_id: int
    alert_id: int
    occurrences: int
    last_note_at: datetime | None
    counted: bool
    refired: bool = False
    raise_severity: Raise | None = None


@dataclass(frozen=True, slots=True)
class AcknowledgeIncident:
    """The monitor acknowledged the alert of a triggered incident."""

    alert: Alert
    incident: Incident


@dataclass(frozen=True, slots=True)
class ResolveAlert:
    """The monitor reports the alert resolved; the incident resolves with its last alert."""

    alert: Alert
    incident: Incident
    alert_id: int
    already_resolved: bool


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do for this alert."""

    alert: Alert
    incident_id: int | None = None


@dataclass(frozen=True, slots=True)
class Muted:
    """A silence or a maintenance window holds the alert: no incident, nobody paged.

    `by` says what in words ("silence #3 (by U0ALICE01: deploy)"); `hold` which one and until
    when, so the alert can be released when it ends.
    """

    alert: Alert
    by: str
    hold: Hold | None = None


@dataclass(frozen=True, slots=True)
class Dropped:
    """A route drops the alert: recorded and counted, never an incident."""

    alert: Alert
    by: str


Decision = Open | GroupInto | Repeat | AcknowledgeIncident | ResolveAlert | Ignore | Muted | Dropped
