"""Service write transactions: retried when they race, with callbacks run only after commit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import Conflict
from store.outbox import enqueued_in
from store.session import Database, is_transient, is_unique_violation

log = logging.getLogger(__name__)
T = TypeVar("T")

_AFTER_COMMIT = "pulseops_after_commit"


class Retry(Exception):
    """A compare-and-set lost a race; the transaction is retried from a fresh read."""


async def in_write(
    db: Database,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    on_commit: Callable[[], None],
    tries: int = 5,
) -> T:
    """Run `work` in a write transaction, retrying races (unique violations, lock timeouts).

    After the commit, the callbacks `work` registered with `after_commit` run, then
    `on_commit` if the transaction enqueued outbox work (something Slack must be told; an
    alert storm's repeats enqueue none, so they do not wake the worker for nothing).
    Raises Conflict when `work` still raises `Retry` on the last try, and the database error
    when it is not a race or the last try fails.
    """
    for attempt in range(1, tries + 1):
        try:
            async with db.write() as session:
                session.info[_AFTER_COMMIT] = []
                result = await work(session)
            for callback in session.info[_AFTER_COMMIT]:
                callback()
            if enqueued_in(session):
                on_commit()
            return result
        except Retry:
            if attempt == tries:
                raise Conflict("the incident changed too often concurrently; try again") from None
        except DBAPIError as exc:
            if attempt == tries or not (is_unique_violation(exc) or is_transient(exc)):
                raise
            log.info("retrying transaction after %s", type(exc.orig).__name__)
    raise AssertionError("unreachable")


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the transaction commits (metrics count only what really happened)."""
    session.info[_AFTER_COMMIT].append(callback)


def pending_callbacks(session: AsyncSession) -> list[Callable[[], None]]:
    """The callbacks registered so far in this transaction (trim it to drop a savepoint's)."""
    callbacks: list[Callable[[], None]] = session.info[_AFTER_COMMIT]
    return callbacks
