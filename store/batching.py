"""Group commit: work submitted while a batch is in flight goes into the next batch.

A burst of small writes then costs a few transactions instead of one each, and at low load a
batch holds a single item and nothing waits. Each caller is answered only once its batch has
run (for a write: committed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Process = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]
"""Runs one batch; returns each item's result, or the exception that item's caller gets."""


class Batcher(Generic[T, R]):
    """Runs `process` on the items submitted while it runs, `max_batch` at a time."""

    def __init__(self, process: Process[T, R], *, max_batch: int) -> None:
        self.process = process
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Queue `item` for the next batch and wait for its result.

        Raises the item's exception, or the one that failed its whole batch.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run_pending())
        # the batch runs even if this caller goes away; its answer is then just dropped
        future.add_done_callback(_dropped)
        return await asyncio.shield(future)

    async def wait_idle(self) -> None:
        """Wait until every queued item has been processed (shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _run_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                results = await self.process([item for item, _ in batch])
            except Exception as exc:  # the whole batch failed: every caller hears why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def _dropped(future: asyncio.Future[R]) -> None:
    """Mark the outcome seen, so an error nobody waited for any more is not logged as unseen."""
    if not future.cancelled():
        future.exception()
