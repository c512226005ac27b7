"""Stopping the periodic jobs lets a run in flight finish instead of cutting it off."""

from __future__ import annotations

import asyncio

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.jobs import Every, Jobs


async def test_stop_waits_for_the_run_in_flight_and_schedules_no_more() -> None:
    started = asyncio.Event()
    finished: list[str] = []
    runs = 0

    async def sweep() -> None:
        nonlocal runs
        runs += 1
        started.set()
        await asyncio.sleep(0.3)  # e.g. a transaction still talking to the database
        finished.append("done")

    jobs = Jobs(AsyncIOScheduler(timezone="UTC"))
    jobs.start(Every("sweep", 0.05, sweep))
    await asyncio.wait_for(started.wait(), 5)
    await jobs.stop()
    assert finished == ["done"]  # APScheduler alone would have cancelled it
    assert not jobs.scheduler.running
    after = runs
    await asyncio.sleep(0.2)
    assert runs == after == 1


async def test_stop_gives_up_waiting_after_the_bound() -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.sleep(60)

    jobs = Jobs(AsyncIOScheduler(timezone="UTC"))
    jobs.start(Every("stuck", 0.05, stuck))
    await asyncio.wait_for(started.wait(), 5)
    loop = asyncio.get_running_loop()
    begun = loop.time()
    await jobs.stop(within=0.2)
    assert loop.time() - begun < 5
    assert not jobs.scheduler.running
