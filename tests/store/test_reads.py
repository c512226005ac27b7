"""Statistics and dashboard reads and the exactly-once page record, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.incident import Severity, Status
from bot.domain.insight import Distribution
from store import migrate
from store.home import HomeRepository
from store.models import IncidentRow
from store.oncall import PageRepository
from store.session import Database
from store.stats import StatsRepository, Window

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def add_incident(
    db: Database, *, acknowledged_after: float | None = None, resolved_after: float | None = None
) -> int:
    """An incident triggered at T0, acknowledged and resolved that many seconds later."""

    def after(seconds: float | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    async with db.write() as session:
        row = IncidentRow(
            title="Checkout errors",
            status=(Status.RESOLVED if resolved_after is not None else Status.ACKNOWLEDGED).value,
            severity=Severity.SEV2.value,
            service_id=None,
            team_id="payments",
            source="test",
            integration=None,
            dedup_key=None,
            triggered_at=T0,
            acknowledged_at=after(acknowledged_after),
            resolved_at=after(resolved_after),
            updated_at=T0,
            version=1,
            labels={},
            links={"items": []},
        )
        session.add(row)
        await session.flush()
    return row.id


async def page(db: Database, incident_id: int, target: str, *, kind: str = "user") -> int | None:
    async with db.write() as session:
        return await PageRepository(session).record(
            incident_id=incident_id,
            cycle=0,
            level=0,
            step=0,
            target=target,
            kind=kind,
            via="schedule:payments-primary",
            paged_at=T0,
            scheduled_at=T0,
        )


@BOTH
async def test_an_even_count_has_the_nearest_rank_median_not_the_midpoint(db: Database) -> None:
    for seconds in (240, 60, 180, 120):
        await add_incident(db, acknowledged_after=seconds)
    await add_incident(db, acknowledged_after=3600)  # after the window's end: not counted
    async with db.read() as session:
        figures = await StatsRepository(session).overall(
            window=Window(since=T0, until=T0 + timedelta(minutes=30))
        )
    assert figures.opened == 5 and figures.acknowledged == 4
    # statistics.median would say 150 s: the nearest-rank median is a duration that occurred
    assert figures.mtta == Distribution(count=4, mean=150.0, median=120.0, p90=240.0)
    assert figures.mttr == Distribution()


@BOTH
async def test_an_acknowledgement_at_the_window_end_is_not_yet_counted(db: Database) -> None:
    await add_incident(db, acknowledged_after=60, resolved_after=300)
    async with db.read() as session:
        repo = StatsRepository(session)
        at_end = await repo.overall(window=Window(since=T0, until=T0 + timedelta(seconds=60)))
        after = await repo.overall(window=Window(since=T0, until=T0 + timedelta(seconds=61)))
    assert (at_end.opened, at_end.acknowledged, at_end.mtta.median) == (1, 0, None)
    assert (after.acknowledged, after.mtta.median, after.resolved) == (1, 60.0, 0)


@BOTH
async def test_a_page_is_recorded_once_and_the_dashboard_reads_who_was_paged(db: Database) -> None:
    first, second, quiet = [await add_incident(db) for _ in range(3)]
    assert await page(db, first, "U0BOB0001") is not None
    assert await page(db, first, "U0BOB0001") is None  # the same step and target: once
    assert await page(db, first, "U0ALICE01") is not None
    assert await page(db, second, "S0ONCALL1", kind="user_group") is not None
    async with db.read() as session:
        repo = HomeRepository(session)
        paged = await repo.paged_users(incident_ids=[first, second, quiet])
        assert await repo.paged_users(incident_ids=[]) == {}
    # user groups are not users; incidents nobody was paged for are left out
    assert paged == {first: frozenset({"U0BOB0001", "U0ALICE01"})}
