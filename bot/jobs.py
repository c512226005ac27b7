"""The periodic jobs of one replica, on an APScheduler 3 AsyncIOScheduler, and a clean stop.

APScheduler's asyncio executor cancels running jobs when the scheduler shuts down. Stopping
that way would cut a sweep off in the middle of a database call as the database closes, so
`Jobs.stop` first stops new runs, then lets the running ones finish (within a bound).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self.scheduler = scheduler
        self._running: set[asyncio.Task[object]] = set()

    def start(self, *schedule: Every) -> None:
        """Add every job (one run at a time each; missed runs coalesce) and start."""
        for entry in schedule:
            self.scheduler.add_job(
                self._tracked(entry.job),
                "interval",
                seconds=entry.seconds,
                id=entry.id,
                max_instances=1,
                coalesce=True,
            )
        self.scheduler.start()

    def _tracked(self, job: Job) -> Job:
        @functools.wraps(job)
        async def run() -> object:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                return await job()
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
