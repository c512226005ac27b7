"""Outbox leases: renewed only by their holder, and released at once when it has died."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.delivery import owner
from store.models import OutboxRow
from store.outbox import OutboxRepository
from tests.conftest import Harness, alertmanager_payload

pytestmark = pytest.mark.asyncio
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


async def undelivered(harness: Harness, n: int) -> None:
    """`n` incidents whose Slack work is waiting (Slack is down), then Slack back."""
    harness.emu.set_faults(down_for=600)
    for i in range(n):
        await harness.post_alert(alertmanager_payload(group_key=f"g{i}", fingerprint=f"f{i}"))
    await harness.settle()
    harness.emu.set_faults(clear=True)
    harness.clock.advance(3600)


def unused_pid() -> int:
    """A process id no process has now."""
    return max(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()) + 1000


async def claimed_by(harness: Harness) -> dict[int, str | None]:
    async with harness.deps.db.read() as session:
        rows = (await session.execute(select(OutboxRow.id, OutboxRow.claimed_by))).all()
    return {row.id: row.claimed_by for row in rows}


@BOTH
async def test_only_the_holder_renews_and_only_while_it_holds(harness: Harness) -> None:
    await undelivered(harness, 2)
    db, now = harness.deps.db, harness.clock.now()
    async with db.write() as session:
        items = await OutboxRepository(session).claim(
            now=now, lease_until=now + timedelta(seconds=15), worker="w1", limit=10
        )
    ids = [i.id for i in items]
    assert len(ids) == 4
    async with db.write() as session:
        repo = OutboxRepository(session)
        assert await repo.renew(item_ids=ids, worker="w2", until=now + timedelta(minutes=5)) == 0
        await repo.retry_later(item_id=ids[0], at=now, error="x", progress={})
        assert await repo.renew(item_ids=ids, worker="w1", until=now + timedelta(minutes=5)) == 3
        assert await repo.claimers(now=now + timedelta(minutes=1)) == ["w1"]
    # past the first lease, the renewed rows are still held; the released one is not
    later = now + timedelta(seconds=60)
    async with db.write() as session:
        stolen = await OutboxRepository(session).claim(
            now=later, lease_until=later + timedelta(seconds=15), worker="w2", limit=10
        )
    assert [i.id for i in stolen] == [ids[0]]


@BOTH
async def test_a_starting_worker_releases_only_claims_of_processes_that_are_gone(
    harness: Harness,
) -> None:
    await undelivered(harness, 3)
    me = owner.parse(harness.deps.outbox.worker_id)
    assert me is not None and me.checkable
    pid = unused_pid()
    workers = [
        f"{me.host}:{pid}:12345:dead00",  # this host, a process that is gone
        f"{me.host}:{os.getpid()}:1:reused",  # this host, our pid but another start: gone
        f"{me.host}:{os.getpid()}:{me.started}:twin00",  # a worker alive in this process
        "elsewhere/0123456789:1:1:remote",  # another host: only its lease tells
    ]
    async with harness.deps.db.write() as session:
        rows = list((await session.scalars(select(OutboxRow.id).order_by(OutboxRow.id))).all())
        for i, row_id in enumerate(rows):
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == row_id)
                .values(
                    claimed_by=workers[i % 4],
                    claimed_until=harness.clock.now() + timedelta(minutes=10),
                )
            )
    await harness.restart()  # a new worker on this host
    await harness.settle()
    left = await claimed_by(harness)
    async with harness.deps.db.read() as session:
        pending = set(
            (await session.scalars(select(OutboxRow.id).where(OutboxRow.status == "pending"))).all()
        )
    assert pending == {rid for rid in rows if left[rid] in workers[2:]}
    assert {left[rid] for rid in pending} == set(workers[2:])
