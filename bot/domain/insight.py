"""Incident statistics as values: figures of a window, duration distributions, noisy and slow.

One definition serves App Home, `/incident stats`, the weekly reports and `/api/v1/stats`
(the store computes it in SQL, `store.stats`): the cohort of a window is the incidents
triggered in it, observed as of its end; MTTA is triggered → acknowledged over the
acknowledged ones, MTTR triggered → resolved over the resolved ones, each summarised as a
`Distribution`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Distribution:
    """Durations in seconds: how many, their mean, median and p90 (None when there are none).

    The median and p90 are nearest-rank percentiles: of the n durations sorted ascending, the
    p-th percentile is the one at rank ceil(p·n/100), a value that was actually observed (the
    median of 60, 120, 180 and 240 s is 120 s, not the 150 s an interpolating median gives).
    """

    count: int = 0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "median": self.median, "p90": self.p90}


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one window (or one group of it), observed as of the window's end."""

    opened: int = 0
    acknowledged: int = 0
    resolved: int = 0
    auto_resolved: int = 0
    escalated: int = 0
    mtta: Distribution = field(default_factory=Distribution)
    mttr: Distribution = field(default_factory=Distribution)

    @property
    def still_open(self) -> int:
        return self.opened - self.resolved

    def to_json(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "acknowledged": self.acknowledged,
            "resolved": self.resolved,
            "still_open": self.still_open,
            "auto_resolved": self.auto_resolved,
            "escalated": self.escalated,
            "mtta_seconds": self.mtta.to_json(),
            "mttr_seconds": self.mttr.to_json(),
        }


@dataclass(frozen=True, slots=True)
class NoisyAlert:
    """One alert (integration + fingerprint) and how much it fired in the window."""

    integration: str
    fingerprint: str
    title: str
    notifications: int  # every notification, repeats included
    incidents: int  # incidents it opened or joined

    def to_json(self) -> dict[str, Any]:
        return {
            "integration": self.integration,
            "fingerprint": self.fingerprint,
            "title": self.title,
            "notifications": self.notifications,
            "incidents": self.incidents,
        }


@dataclass(frozen=True, slots=True)
class SlowIncident:
    """An incident of the window with how long it took to resolve (or has been open)."""

    id: int
    title: str
    severity: str
    service_id: str | None
    team_id: str | None
    channel_id: str | None
    channel_name: str | None
    seconds: float
    resolved: bool  # False: still open at the window's end, `seconds` is its age then

    @property
    def number(self) -> str:
        return f"INC-{self.id}"


__all__ = ["Distribution", "Figures", "NoisyAlert", "SlowIncident"]
