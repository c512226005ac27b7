"""Service write transactions: retried when they race, with callbacks run only after commit."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from bot.errors import Conflict
from store.session import Database, is_transient, is_unique_violation
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")


class Retry(Exception):
    """A compare-and-set lost a race; the transaction is retried from a fresh read."""


async def in_write(
    db: Database,
    work: Callable[[UnitOfWork], Awaitable[T]],
    *,
    on_commit: Callable[[], None],
    tries: int = 5,
) -> T:
    """Run `work` in a write transaction, retrying races (unique violations, lock timeouts).

    Each try gets a fresh `UnitOfWork`. After the commit, the callbacks `work` registered
    with `uow.after_commit` run, then `on_commit` if the transaction enqueued outbox work
    (something Slack must be told; an alert storm's repeats enqueue none, so they do not
    wake the worker for nothing). Raises Conflict when `work` still raises `Retry` on the
    last try, and the database error when it is not a race or the last try fails.
    """
    for attempt in range(1, tries + 1):
        try:
            async with db.write() as session:
                uow = UnitOfWork(session)
                result = await work(uow)
            for callback in uow.callbacks:
                callback()
            if uow.enqueued:
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
