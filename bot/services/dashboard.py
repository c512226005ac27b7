"""The values the App Home dashboard shows: open incidents in order, whose they are, MTTA/MTTR."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.domain.incident import Status
from bot.domain.oncall import TeamOnCall
from bot.domain.records import Incident

# Why an open incident is "yours" (the template words them).
DECLARED, ACKNOWLEDGED, PAGED = "declared", "acknowledged", "paged"


@dataclass(frozen=True, slots=True)
class WeekStats:
    """Response times of the incidents triggered in the last 7 days (seconds)."""

    incidents: int
    acknowledged: int
    resolved: int
    mtta_median: float | None
    mtta_mean: float | None
    mttr_median: float | None
    mttr_mean: float | None
    truncated: bool = False


def week_stats(
    rows: Iterable[tuple[datetime, datetime | None, datetime | None]], *, truncated: bool = False
) -> WeekStats:
    """MTTA/MTTR (median and mean) from (triggered_at, acknowledged_at, resolved_at) rows."""
    count = 0
    to_ack: list[float] = []
    to_resolve: list[float] = []
    for triggered, acknowledged, resolved in rows:
        count += 1
        if acknowledged is not None:
            to_ack.append(max((acknowledged - triggered).total_seconds(), 0.0))
        if resolved is not None:
            to_resolve.append(max((resolved - triggered).total_seconds(), 0.0))
    return WeekStats(
        incidents=count,
        acknowledged=len(to_ack),
        resolved=len(to_resolve),
        mtta_median=statistics.median(to_ack) if to_ack else None,
        mtta_mean=statistics.fmean(to_ack) if to_ack else None,
        mttr_median=statistics.median(to_resolve) if to_resolve else None,
        mttr_mean=statistics.fmean(to_resolve) if to_resolve else None,
        truncated=truncated,
    )


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What every Home tab shows, read once per refresh round; `mine` picks one user's part."""

    generation: int
    open: tuple[Incident, ...]  # by severity, unacknowledged first, newest first
    open_total: int  # may exceed len(open): only the first `open_limit` are read
    paged: Mapping[int, frozenset[str]]  # incident id -> users paged for it
    oncall: tuple[TeamOnCall, ...]
    week: WeekStats

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


__all__ = ["Dashboard", "WeekStats", "order_open", "week_stats"]
