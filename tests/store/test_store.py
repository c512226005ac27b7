"""Store behaviour that must hold on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from store import migrate
from store.outbox import OutboxRepository
from store.session import Database
from tests.conftest import Harness, alertmanager_payload

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@BOTH
async def test_migrations_are_idempotent(database_url: str) -> None:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        await migrate.upgrade(db)
        assert await migrate.is_up_to_date(db)
    finally:
        await db.dispose()


@BOTH
async def test_concurrent_deliveries_of_one_alert_open_one_incident(harness: Harness) -> None:
    results = await asyncio.gather(*(harness.post_alert(alertmanager_payload()) for _ in range(12)))
    assert all(status == 202 for status, _ in results), results
    outcomes = sorted(body["results"][0]["outcome"] for _, body in results)
    assert outcomes == ["created"] + ["deduplicated"] * 11
    _, listing = await harness.get("/api/v1/incidents")
    assert listing["total"] == 1
    assert listing["incidents"][0]["alert_count"] == 12


@BOTH
async def test_outbox_claims_are_exclusive(harness: Harness) -> None:
    harness.emu.set_faults(down_for=600)
    for i in range(10):
        await harness.post_alert(alertmanager_payload(group_key=f"g{i}", fingerprint=f"f{i}"))
    await harness.settle()
    db = harness.deps.db
    now = harness.clock.advance(3600)

    async def claim(worker: str) -> list[int]:
        async with db.write() as session:
            items = await OutboxRepository(session).claim(
                now=now, lease_until=now + timedelta(minutes=1), worker=worker, limit=8
            )
        return [i.id for i in items]

    claimed = await asyncio.gather(*(claim(f"w{n}") for n in range(4)))
    flat = [i for ids in claimed for i in ids]
    assert len(flat) == len(set(flat)) == 20  # 2 rows per incident, each claimed once
