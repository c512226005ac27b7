"""Grouped writes: small writes queued while a transaction runs share the next commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store import migrate
from store.models import ScheduleStateRow
from store.session import Database, Write

BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def note(key: str) -> Write:
    """A small write: one row whose key must be unique."""

    async def write(session: AsyncSession) -> None:
        session.add(ScheduleStateRow(schedule_id=key, handoffs_checked_until=AT))
        await session.flush()

    return write


async def stored(db: Database) -> list[str]:
    async with db.read() as session:
        rows = await session.execute(text("SELECT schedule_id FROM schedule_state"))
        return sorted(r[0] for r in rows)


@BOTH
async def test_a_burst_of_writes_costs_a_few_transactions(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        transactions = 0
        write = db.write

        def counting():  # type: ignore[no-untyped-def]
            nonlocal transactions
            transactions += 1
            return write()

        db.write = counting  # type: ignore[method-assign]
        await asyncio.gather(*(db.write_grouped(note(f"s{i:02d}")) for i in range(40)))
        assert await stored(db) == [f"s{i:02d}" for i in range(40)]  # every write committed
        assert transactions <= 2  # the first alone, the other 39 together
    finally:
        await db.dispose()


@BOTH
async def test_a_failing_write_fails_its_whole_group_and_nothing_of_it_stays(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        await db.write_grouped(note("kept"))
        writes = [note("a"), note("kept"), note("b")]  # queued together; "kept" is taken
        results = await asyncio.gather(
            *(db.write_grouped(w) for w in writes), return_exceptions=True
        )
        assert all(isinstance(r, IntegrityError) for r in results), results  # each caller hears
        assert await stored(db) == ["kept"]  # the failed group left nothing behind
        await db.write_grouped(note("after"))  # and the next group works
        assert await stored(db) == ["after", "kept"]
    finally:
        await db.dispose()
