"""The SQLite driver (store.sqlite_driver): one trip to the connection's thread a statement,
with the transactions, locks, row counts and errors of plain aiosqlite."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from store.session import Database
from store.sqlite_driver import OneTripConnection

pytestmark = pytest.mark.asyncio


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every call made on a connection's thread, by the function's name."""
    seen: Counter[str] = Counter()
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen[getattr(fn, "__name__", repr(fn))] += 1
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield seen


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A database on a file, holding the one table `t`."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    try:
        async with database.write() as session:
            await session.execute(
                text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)")
            )
        yield database
    finally:
        await database.dispose()


async def test_a_write_transaction_is_one_trip_a_statement_plus_its_commit(
    db: Database, trips: Counter[str]
) -> None:
    trips.clear()
    async with db.write() as session:
        await session.execute(text("INSERT INTO t (name, n) VALUES ('a', 1), ('b', 2)"))
        rows = (await session.execute(text("SELECT name FROM t ORDER BY name"))).all()
    assert [r.name for r in rows] == ["a", "b"]
    # BEGIN IMMEDIATE rides with the INSERT; no cursor opened or closed on its own; the
    # pool's ROLLBACK after the COMMIT has nothing to end
    assert trips == Counter({"_run": 2, "commit": 1})
    trips.clear()
    async with db.write():
        pass  # nothing run: nothing sent
    assert sum(trips.values()) == 0


async def test_row_counts_returning_and_last_row_id(db: Database) -> None:
    async with db.write() as session:
        inserted = await session.execute(text("INSERT INTO t (name, n) VALUES ('a', 1)"))
        assert inserted.lastrowid == 1  # type: ignore[attr-defined]
        await session.execute(
            text("INSERT INTO t (name, n) VALUES (:name, :n)"),
            [{"name": "b", "n": 2}, {"name": "c", "n": 3}],
        )
        updated = await session.execute(text("UPDATE t SET n = n + 10 WHERE n >= 2"))
        assert updated.rowcount == 2  # type: ignore[attr-defined]
        returned = await session.execute(
            text("UPDATE t SET n = n + 1 WHERE name != 'a' RETURNING name, n")
        )
        assert sorted(tuple(r) for r in returned) == [("b", 13), ("c", 14)]
        first = (await session.execute(text("SELECT name FROM t ORDER BY id"))).first()
        assert first is not None and first.name == "a"


async def test_a_failed_statement_rolls_back_the_whole_transaction(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await session.execute(text("INSERT INTO t (name, n) VALUES ('a', 1)"))
            await session.execute(text("INSERT INTO t (name, n) VALUES ('a', 2)"))
    with pytest.raises(OperationalError):
        async with db.write() as session:  # the held BEGIN and a failing first statement
            await session.execute(text("INSERT INTO nowhere VALUES (1)"))
    async with db.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    async with db.write() as session:  # the connection is usable, outside a transaction
        await session.execute(text("INSERT INTO t (name, n) VALUES ('a', 3)"))
    async with db.read() as session:
        assert (await session.execute(text("SELECT n FROM t"))).scalar() == 3


async def test_savepoints_roll_back_alone(db: Database) -> None:
    async with db.write() as session:
        await session.execute(text("INSERT INTO t (name, n) VALUES ('a', 1)"))
        with pytest.raises(IntegrityError):
            async with session.begin_nested():
                await session.execute(text("INSERT INTO t (name, n) VALUES ('b', 2)"))
                await session.execute(text("INSERT INTO t (name, n) VALUES ('a', 3)"))
    async with db.read() as session:
        names = (await session.execute(text("SELECT name FROM t"))).scalars().all()
    assert names == ["a"]


async def test_the_write_lock_is_taken_at_the_first_statement(db: Database, tmp_path: Path) -> None:
    """Another process's writer (here: another Database on the file) waits for a transaction
    that has written, and sees its rows once it commits."""
    other = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    try:
        wrote = asyncio.Event()
        release = asyncio.Event()

        async def first() -> None:
            async with db.write() as session:
                await session.execute(text("INSERT INTO t (name, n) VALUES ('a', 1)"))
                wrote.set()
                await release.wait()

        async def second() -> int:
            await wrote.wait()
            async with other.write() as session:
                await session.execute(text("UPDATE t SET n = n + 1"))
                return (await session.execute(text("SELECT n FROM t"))).scalar_one()  # type: ignore[no-any-return]

        holder = asyncio.create_task(first())
        waiter = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not waiter.done()  # waiting on SQLite's lock, not failed
        release.set()
        await holder
        assert await asyncio.wait_for(waiter, 10) == 2
    finally:
        await other.dispose()


async def test_aiosqlite_urls_take_the_driver(db: Database) -> None:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, OneTripConnection)
    assert db.url.drivername == "sqlite+aiosqlite"  # what the user gave, unchanged
