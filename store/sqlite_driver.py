"""SQLite through aiosqlite, one trip to the connection's thread a statement.

aiosqlite runs each sqlite3 call on the connection's own thread, and SQLAlchemy's adapter
makes four such calls a statement (open a cursor, execute, fetch, close the cursor), plus one
each for `BEGIN`, `COMMIT`, and the pool's `ROLLBACK` when a connection is given back. A
trip to that thread and back (a queue, a wake-up, the event loop woken from the thread) costs
about 0.1 ms of CPU on a small virtual machine: twelve of them for a group commit of repeats
cost more than its SQL.

This dialect keeps aiosqlite and SQLAlchemy's adapter and changes only the cursor:

- a statement opens a sqlite3 cursor, executes, fetches its rows and closes the cursor in
  ONE call on the thread; the adapter then reads the rows it already has;
- `BEGIN ...` is held and sent in the same call as the transaction's first statement (or not
  at all when the transaction runs none): it takes SQLite's lock at that statement instead,
  which nothing in between could tell apart, since nothing runs on the connection meanwhile;
- a `COMMIT` or `ROLLBACK` with nothing run since the last one (no transaction can be open:
  the connection is in autocommit mode, `isolation_level = None`) makes no call at all;
  that is the pool's `ROLLBACK` after every committed transaction.

`store.session.Database` uses it for every `sqlite+aiosqlite` URL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util.concurrency import await_

DRIVER = "pulseops_aiosqlite"
T = TypeVar("T")
_BEGINS = frozenset({"BEGIN", "BEGIN DEFERRED", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"})

Outcome = tuple[Any, list[Any], int, int | None]  # description, rows, rowcount, lastrowid


def _run(
    conn: sqlite3.Connection, begin: str | None, sql: str, parameters: Any, many: bool
) -> Outcome:
    """On the connection's thread: the held BEGIN, then the statement, all its rows."""
    if begin is not None:
        conn.execute(begin)
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor:
    """The cursor SQLAlchemy's adapter sees: each statement one call on the thread; rows,
    description, rowcount and lastrowid kept from that call."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        if parameters is None:
            parameters = ()
        if not parameters and sql.strip().upper() in _BEGINS:
            self._connection.hold_begin(sql)
            self.description, self._rows, self.rowcount, self.lastrowid = None, [], -1, None
            return self
        return self._keep(await self._connection.run(sql, parameters, many=False))

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneTripCursor:
        return self._keep(await self._connection.run(sql, list(parameters), many=True))

    def _keep(self, outcome: Outcome) -> OneTripCursor:
        self.description, self._rows, self.rowcount, self.lastrowid = outcome
        return self

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        size = self.arraysize if size is None else size
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def fetchall(self) -> Sequence[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def close(self) -> None:
        self._rows = []


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors are `OneTripCursor`s, holding a `BEGIN` until
    the statement after it and skipping a `COMMIT`/`ROLLBACK` with nothing to end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._begin: str | None = None  # a BEGIN not sent yet
        self._touched = False  # something ran since the last COMMIT or ROLLBACK

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    def hold_begin(self, sql: str) -> None:
        self._begin = sql

    async def run(self, sql: str, parameters: Any, *, many: bool) -> Outcome:
        begin, self._begin = self._begin, None
        self._touched = True  # even if it fails: the BEGIN may have run
        return await self._on_thread(_run, self._conn, begin, sql, parameters, many)

    async def commit(self) -> None:
        self._begin = None
        if self._touched:
            await self._on_thread(self._conn.commit)
            self._touched = False

    async def rollback(self) -> None:
        self._begin = None
        if self._touched:
            await self._on_thread(self._conn.rollback)
            self._touched = False

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        result: T = await self._execute(fn, *args)  # type: ignore[no-untyped-call]
        return result


class _Dbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        database, *rest = arg
        location = database.decode() if isinstance(database, bytes) else str(database)
        iter_chunk_size = kw.pop("iter_chunk_size", 64)

        def connector() -> sqlite3.Connection:
            connection: sqlite3.Connection = sqlite3.connect(location, *rest, **kw)
            return connection

        connection = OneTripConnection(connector, iter_chunk_size)
        connection._thread.daemon = True
        return AsyncAdapt_aiosqlite_connection(self, cast(Any, await_(connection)))


class Dialect(SQLiteDialect_aiosqlite):
    """SQLAlchemy's aiosqlite dialect with `OneTripConnection`s."""

    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> _Dbapi:
        return _Dbapi(aiosqlite, sqlite3)


registry.register(f"sqlite.{DRIVER}", __name__, "Dialect")
