"""When the store cannot write: 503 with Retry-After (never 500), /readyz fails, and both recover
by themselves once writes work again."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from typing import Any

import pytest
from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.sandbox.emulator import Emulator
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio


def alert(i: int) -> dict[str, Any]:
    return {"title": f"Disk test {i}", "dedup_key": f"disk-{i}", "description": "x" * 3000}


class SqliteCap:
    """Caps the database file at its current size (PRAGMA max_page_count): a full disk."""

    def __init__(self, harness: Harness) -> None:
        self.db = harness.deps.db
        self.path = str(make_url(harness.database_url).database)
        self.pages: int | None = None
        event.listen(self.db.engine.sync_engine, "connect", self._on_connect)

    def _on_connect(self, connection: Any, _record: Any) -> None:
        if self.pages is not None:
            cursor = connection.cursor()
            cursor.execute(f"PRAGMA max_page_count = {self.pages}")
            cursor.close()

    async def fill(self) -> None:
        await self.db.engine.dispose()
        with closing(sqlite3.connect(self.path, isolation_level=None, timeout=30)) as conn:
            conn.execute("VACUUM")  # no free pages left to reuse
        async with self.db.read() as session:
            self.pages = int((await session.execute(text("PRAGMA page_count"))).scalar_one())
        await self.db.engine.dispose()  # every new connection gets the cap

    async def free(self) -> None:
        self.pages = None
        await self.db.engine.dispose()


class PostgresReadOnly:
    """Makes the test database refuse writes (default_transaction_read_only), then not."""

    def __init__(self, harness: Harness) -> None:
        self.db = harness.deps.db
        self.url = harness.database_url
        self.name = make_url(self.url).database

    async def _admin(self, statement: str) -> None:
        other = make_url(self.url).set(database="postgres")  # not the database made read-only
        engine = create_async_engine(other, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    async def fill(self) -> None:
        await self._admin(f'ALTER DATABASE "{self.name}" SET default_transaction_read_only = on')
        await self.db.engine.dispose()

    async def free(self) -> None:
        await self._admin(f'ALTER DATABASE "{self.name}" RESET default_transaction_read_only')
        await self.db.engine.dispose()


@pytest.fixture
async def broken(harness: Harness, backend: str) -> AsyncIterator[Any]:
    store = SqliteCap(harness) if backend == "sqlite" else PostgresReadOnly(harness)
    yield store
    await store.free()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_store_that_cannot_write_answers_503_and_recovers(
    harness: Harness, broken: Any
) -> None:
    status, _ = await harness.post_alert(alert(0), integration="generic")
    assert status == 202
    assert (await harness.get("/readyz"))[0] == 200
    await harness.settle()

    await broken.fill()
    statuses = []
    for i in range(1, 40):
        async with harness.http.post(  # type: ignore[union-attr]
            f"{harness.url}/webhooks/generic",
            json=alert(i),
            headers={"Authorization": "Bearer generic-token"},
        ) as r:
            statuses.append(r.status)
            if r.status == 503:
                assert r.headers["Retry-After"] == "5"
                assert "cannot write" in (await r.json())["error"]
                break
    assert 500 not in statuses
    assert statuses[-1] == 503, statuses
    status, body = await harness.get("/readyz")
    assert status == 503, body
    assert "cannot write" in body["database"]
    assert (await harness.get("/healthz"))[0] == 200  # alive, just not ready

    await broken.free()
    status, body = await harness.get("/readyz")
    assert status == 200, body
    status, body = await harness.post_alert(alert(99), integration="generic")
    assert status == 202, body


async def test_the_service_starts_on_a_read_only_database_and_says_it_is_not_ready(
    emulator: Emulator, harness: Harness
) -> None:
    path = make_url(harness.database_url).database
    await harness.stop()
    read_only = Harness(
        emulator=emulator,
        database_url=f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true",
        config=harness.config,
        clock=harness.clock,
    )
    async with read_only:
        status, body = await read_only.post_alert(alert(1), integration="generic")
        assert status == 503, body
        status, body = await read_only.get("/readyz")
        assert status == 503, body
        status, body = await read_only.get("/api/v1/incidents")
        assert status == 200  # reads still work
