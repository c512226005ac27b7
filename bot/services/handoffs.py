"""Rotation handoffs: record each schedule's handoffs exactly once and announce the latest.

Deadlines live in SQL: `schedule_state.handoffs_checked_until` says how far a schedule's
handoffs are recorded. `sweep()` (run every second by the scheduler, on every replica) takes
each schedule's row lock, computes the rotation's handoffs in (checked_until, now], records
each one (the `handoffs` primary key (schedule, at) makes that exactly once), enqueues one
"handoff" outbox effect for the newest, and moves checked_until to now, in one transaction.

When several handoffs were missed (the service was down for days), only the newest is
announced, marked late; the older ones are recorded without a message, because announcing
who was on call last Tuesday helps nobody and would bury the handoff that matters. A schedule
seen for the first time starts at `now`: nothing historical is announced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import PulseOpsConfig, ScheduleConfig
from bot.delivery.kinds import OutboxKind
from bot.domain.rotation import Handoff, Rotation, handoffs_between
from bot.metrics import Metrics
from bot.services.oncall import rotation_of
from store.oncall import HandoffRepository
from store.outbox import OutboxRepository
from store.session import Database

log = logging.getLogger(__name__)


# A handoff announced more than this after it happened says so in its message.
LATE_AFTER = timedelta(seconds=60)


def handoff_payload(
    schedule_id: str, handoff: Handoff, *, now: datetime, missed: int = 0
) -> dict[str, object]:
    """The outbox payload of one announced handoff (JSON-ready)."""
    return {
        "schedule_id": schedule_id,
        "at": handoff.at.isoformat(),
        "outgoing": handoff.outgoing,
        "incoming": handoff.incoming,
        "late": now - handoff.at > LATE_AFTER,
        "missed": missed,
    }


class HandoffService:
    """Finds due rotation handoffs and turns the newest of each schedule into a message."""

    def __init__(
        self,
        *,
        db: Database,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.on_commit = on_commit
        self._rotations: dict[str, Rotation] = {s.id: rotation_of(s) for s in config.schedules}

    async def oldest_unrecorded(self, now: datetime) -> datetime | None:
        """The time of the earliest handoff that is due but not yet recorded (None: every due
        handoff is recorded; a schedule never swept yet starts at its first sweep)."""
        async with self.db.read() as session:
            marks = await HandoffRepository(session).checked_until_all()
        earliest: datetime | None = None
        for schedule_id, rotation in self._rotations.items():
            until = marks.get(schedule_id)
            due = handoffs_between(rotation, until, now) if until is not None else []
            if due and (earliest is None or due[0].at < earliest):
                earliest = due[0].at
        return earliest

    async def sweep(self) -> int:
        """Record every handoff that has come due; return how many were recorded."""
        now = self.clock.now()
        recorded = 0
        announced = False
        for schedule in self.config.schedules:
            count, enqueued = await self._sweep_schedule(schedule, now)
            recorded += count
            announced = announced or enqueued
        if announced:
            self.on_commit()
        return recorded

    async def _sweep_schedule(self, schedule: ScheduleConfig, now: datetime) -> tuple[int, bool]:
        """One schedule in one transaction; return (handoffs recorded, announcement enqueued)."""
        recorded: list[Handoff] = []
        enqueued = False
        async with self.db.write() as session:
            repo = HandoffRepository(session)
            # the row lock serialises replicas: a second sweep waits, then sees the new mark
            until = await repo.checked_until(schedule_id=schedule.id, now=now)
            if now <= until:  # nothing new (or this replica's clock is behind another's)
                return 0, False
            due = handoffs_between(self._rotations[schedule.id], until, now)
            for handoff in due:
                if await repo.record(
                    schedule_id=schedule.id,
                    at=handoff.at,
                    outgoing=handoff.outgoing,
                    incoming=handoff.incoming,
                    now=now,
                ):
                    recorded.append(handoff)
            if due and recorded and recorded[-1] == due[-1]:
                await OutboxRepository(session).enqueue(
                    kind=OutboxKind.HANDOFF,
                    now=now,
                    payload=handoff_payload(
                        schedule.id, due[-1], now=now, missed=len(recorded) - 1
                    ),
                )
                enqueued = True
            await repo.set_checked_until(schedule_id=schedule.id, until=now)
        if recorded:
            self.metrics.handoffs.labels(schedule=schedule.id).inc(len(recorded))
            last = recorded[-1]
            log.info(
                "rotation handoff recorded",
                extra={
                    "schedule": schedule.id,
                    "at": last.at.isoformat(),
                    "incoming": last.incoming,
                    "late_seconds": round((now - last.at).total_seconds(), 3),
                    "silent": len(recorded) - 1,
                },
            )
        return len(recorded), enqueued


__all__ = ["LATE_AFTER", "HandoffService", "handoff_payload"]
