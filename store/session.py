"""The Database handle: engine creation, sessions, and how SQLite and PostgreSQL differ in
connections and transactions (SQL expressions that compile differently are in store.dialect).

SQLite runs in WAL mode with a busy timeout, and write transactions start with
`BEGIN IMMEDIATE` so two writers queue on the lock instead of failing on upgrade.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.errors import StoreUnavailable
from store import sqlite_driver
from store.batching import Batcher

log = logging.getLogger(__name__)

_BEGIN_OPTION = "pulseops_begin"
# PostgreSQL: seconds to open a connection, and to wait for a free one from the pool, before
# the caller hears the database is unavailable (asyncpg and SQLAlchemy would wait 60 and 30)
CONNECT_TIMEOUT = 10.0
POOL_TIMEOUT = 10.0
Write = Callable[[AsyncSession], Awaitable[object]]


class Database:
    """Owns the async engine; hands out read and write sessions (callers own transactions)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                pool_timeout=POOL_TIMEOUT,
                connect_args={"timeout": CONNECT_TIMEOUT},
            )
        engine_url = self.url
        if self.url.drivername == "sqlite+aiosqlite":  # one trip to its thread a statement
            engine_url = self.url.set(drivername=f"sqlite+{sqlite_driver.DRIVER}")
        self.engine: AsyncEngine = create_async_engine(engine_url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._write_engine = self.engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        self._write_queue: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._grouped: Batcher[Write, None] = Batcher(self._write_all, max_batch=64)
        # set when a write failed because the store cannot write (full disk, read-only, gone);
        # cleared only by a probe write that needs fresh space (store.health), which /readyz
        # runs while it is set: a small in-place update may still commit on a full disk
        self.unwritable = False

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads; rolled back on exit."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction, committed on success and rolled back on error.

        On SQLite, writers of this process queue on an asyncio lock first: SQLite has one
        writer at a time and its busy handler is not fair, so without the queue a steady
        stream of ingest commits could starve the outbox worker. Do not nest write() calls.
        """
        try:
            if self._write_queue is None:
                async with self._write_sessions() as session, session.begin():
                    yield session
            else:
                async with self._write_queue, self._write_sessions() as session, session.begin():
                    yield session
        except PoolTimeout as exc:  # every connection busy: not a broken store, just full
            raise StoreUnavailable(
                f"no database connection was free within {POOL_TIMEOUT:g} s"
            ) from exc
        except (DBAPIError, OSError) as exc:
            if not is_unavailable(exc):
                raise
            if not self.unwritable:
                log.error("the database cannot write: %s", exc)
            self.unwritable = True
            raise StoreUnavailable(f"the database cannot write: {_reason(exc)}") from exc

    async def write_grouped(self, work: Write) -> None:
        """Run a small write, committed together with those other tasks queue meanwhile.

        For independent, idempotent updates (saving a delivery's progress, marking it done):
        a burst of them costs a few transactions instead of one each. Returns once the write
        is committed; if any write of the group fails, the whole group is rolled back and
        every caller in it gets the error.
        """
        await self._grouped.submit(work)

    async def _write_all(self, works: list[Write]) -> list[None]:
        async with self.write() as session:
            for work in works:
                await work(session)
        return [None] * len(works)

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def is_unique_violation(exc: BaseException) -> bool:
    """True when a database error is a unique-constraint violation (either backend)."""
    if not isinstance(exc, IntegrityError):
        return False
    message = str(exc.orig).lower()
    return "unique" in message or "duplicate key" in message


# SQLite's messages and PostgreSQL's SQLSTATEs for "the store cannot write now"
_UNAVAILABLE_MESSAGES = (
    "database or disk is full",
    "readonly database",
    "disk i/o error",
    "unable to open database file",
    "no space left on device",
)
_UNAVAILABLE_SQLSTATES = ("53", "08", "57P", "25006")  # resources, connection, shutdown, read-only


def is_unavailable(exc: BaseException) -> bool:
    """True when the store cannot write at all now (full disk, read-only, unreachable)."""
    if isinstance(exc, OSError):  # e.g. the server refused the connection
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    if sqlstate and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    message = str(orig).lower()
    return any(m in message for m in _UNAVAILABLE_MESSAGES)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0] if str(orig) else ''}"[:200]


def is_transient(exc: BaseException) -> bool:
    """True for lock timeouts, serialization failures and deadlocks worth retrying."""
    if not isinstance(exc, DBAPIError):
        return False
    message = str(exc.orig).lower()
    return any(
        s in message
        for s in ("database is locked", "deadlock", "could not serialize", "serialization failure")
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if ":memory:" not in str(engine.url):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


async def insert_or_ignore(session: Any, model: Any, values: dict[str, Any]) -> Any | None:
    """INSERT a row unless it collides with a unique key; return its primary key, or None.

    `ON CONFLICT DO NOTHING` on both backends: the exactly-once guard for pages and handoffs,
    without a failed statement aborting the surrounding transaction on PostgreSQL.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    primary_key = list(model.__table__.primary_key.columns)
    if session.bind.dialect.name == "postgresql":
        statement: Any = postgresql.insert(model).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(model).values(**values).on_conflict_do_nothing()
    statement = statement.returning(*primary_key)
    row = (await session.execute(statement)).first()
    if row is None:
        return None
    return row[0] if len(row) == 1 else tuple(row)
