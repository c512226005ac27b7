"""What the App Home dashboard shows: open incidents in order, whose they are, the week,
probes and SLOs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.domain.burn import SloView
from bot.domain.incident import Status
from bot.domain.insight import Figures
from bot.domain.oncall import TeamOnCall
from bot.domain.records import Incident
from bot.domain.silences import Silence

# Why an open incident is "yours" (the template words them).
DECLARED, ACKNOWLEDGED, PAGED = "declared", "acknowledged", "paged"


@dataclass(frozen=True, slots=True)
class WeekStats:
    """Response times of the incidents triggered in the last 7 days (seconds).

    The same figures `/incident stats 7d` shows at the same instant: see `bot.domain.insight`.
    """

    incidents: int
    acknowledged: int
    resolved: int
    mtta_median: float | None
    mtta_mean: float | None
    mttr_median: float | None
    mttr_mean: float | None

    @classmethod
    def of(cls, figures: Figures) -> WeekStats:
        """The part of a window's figures the Home tab shows."""
        return cls(
            incidents=figures.opened,
            acknowledged=figures.acknowledged,
            resolved=figures.resolved,
            mtta_median=figures.mtta.median,
            mtta_mean=figures.mtta.mean,
            mttr_median=figures.mttr.median,
            mttr_mean=figures.mttr.mean,
        )


@dataclass(frozen=True, slots=True)
class ProbeLine:
    """One probe on the Home tab: its id, state (unknown, up, down), last latency and the
    anomalies open on it."""

    id: str
    status: str
    latency_ms: float | None
    anomalies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What every Home tab shows, read once per refresh round; `mine` picks one user's part."""

    generation: int
    open: tuple[Incident, ...]  # by severity, unacknowledged first, newest first
    open_total: int  # may exceed len(open): only the first `open_limit` are read
    paged: Mapping[int, frozenset[str]]  # incident id -> users paged for it
    oncall: tuple[TeamOnCall, ...]
    week: WeekStats
    probes: tuple[ProbeLine, ...] = ()
    slos: tuple[SloView, ...] = ()  # SLOs over alert sources, as of `read_at`
    silences: tuple[tuple[Silence, int], ...] = ()  # active or pending, with alerts held
    read_at: datetime | None = None

    def mine(self, user: str) -> list[tuple[Incident, tuple[str, ...]]]:
        """The open incidents `user` declared, acknowledged or was paged for, with why."""
        found = []
        for incident in self.open:
            reasons = tuple(
                reason
                for reason, applies in (
                    (DECLARED, incident.created_by == user),
                    (ACKNOWLEDGED, incident.acknowledged_by == user),
                    (PAGED, user in self.paged.get(incident.id, ())),
                )
                if applies
            )
            if reasons:
                found.append((incident, reasons))
        return found


def order_open(incidents: Iterable[Incident]) -> tuple[Incident, ...]:
    """Most severe first; within a severity unacknowledged first, then newest first."""
    return tuple(
        sorted(
            incidents,
            key=lambda i: (i.severity.rank, i.status is not Status.TRIGGERED, -i.id),
        )
    )


__all__ = ["Dashboard", "WeekStats", "order_open"]
