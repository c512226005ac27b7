"""The periodic jobs of one replica, on an APScheduler 3 AsyncIOScheduler, and a clean stop.

Each job's last successful run is remembered (per replica: each replica runs its own jobs), so
`/readyz` can tell a job that has fallen behind (`Jobs.behind`).

APScheduler's asyncio executor cancels running jobs when the scheduler shuts down. Stopping
that way would cut a sweep off in the middle of a database call as the database closes, so
`Jobs.stop` first stops new runs, then lets the running ones finish (within a bound).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

Job = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Every:
    """Run `job` every `seconds`, as job id `id` (the metrics' `job` label)."""

    id: str
    seconds: float
    job: Job


class Jobs:
    """Schedules jobs at fixed intervals and knows which runs are in flight."""

    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.scheduler = scheduler
        self.now = now
        self._running: set[asyncio.Task[object]] = set()
        self.intervals: dict[str, timedelta] = {}
        self.started_at: datetime | None = None
        self.last_success: dict[str, datetime] = {}

    def start(self, *schedule: Every) -> None:
        """Add every job (one run at a time each; missed runs coalesce) and start."""
        self.started_at = self.now()
        for entry in schedule:
            self.intervals[entry.id] = timedelta(seconds=entry.seconds)
            self.scheduler.add_job(
                self._tracked(entry.id, entry.job),
                "interval",
                seconds=entry.seconds,
                id=entry.id,
                max_instances=1,
                coalesce=True,
            )
        self.scheduler.start()

    def behind(
        self, *, at_least: timedelta, intervals: int
    ) -> dict[str, tuple[datetime | None, timedelta]]:
        """The jobs whose last success (None: none since start) is older than `at_least` or
        `intervals` of their interval, whichever is longer: job id -> (last success, limit)."""
        if self.started_at is None:
            return {}
        now = self.now()
        late: dict[str, tuple[datetime | None, timedelta]] = {}
        for job_id, interval in self.intervals.items():
            limit = max(at_least, interval * intervals)
            last = self.last_success.get(job_id)
            if now - (last or self.started_at) > limit:
                late[job_id] = (last, limit)
        return late

    def _tracked(self, job_id: str, job: Job) -> Job:
        @functools.wraps(job)
        async def run() -> object:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                result = await job()
                self.last_success[job_id] = self.now()
                return result
            finally:
                if task is not None:
                    self._running.discard(task)

        return run

    async def stop(self, *, within: float = 10.0) -> None:
        """Stop scheduling, wait up to `within` seconds for runs in flight, shut down."""
        if not self.scheduler.running:
            return
        self.scheduler.pause()
        if self._running:
            await asyncio.wait(set(self._running), timeout=within)
        self.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down on its loop's next turn
