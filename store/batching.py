"""Group commit: work submitted while a batch is in flight goes into the next batch.

A burst of small writes then costs a few transactions instead of one each, and at low load a
batch holds a single item and nothing waits. Each caller is answered only once its batch has
run (for a write: committed), or once its deadline has passed, whichever comes first.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Process = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]
"""Runs one batch; returns each item's result, or the exception that item's caller gets."""


class Batcher(Generic[T, R]):
    """Runs `process` on the items submitted while it runs, `max_batch` at a time.

    Each item has one future, resolved by its batch. Its caller awaits that future alone: a
    caller that goes away (cancelled) cancels only its own future, never the batch, which
    runs on in a task of its own and drops that caller's answer. An item given a deadline
    has its future failed with `late()` once the deadline passes; one timer serves every
    deadline (armed for the earliest), so waiting costs no timer per item.
    """

    def __init__(
        self,
        process: Process[T, R],
        *,
        max_batch: int,
        late: Callable[[], BaseException] = TimeoutError,
        linger: float = 0.0,
    ) -> None:
        self.process = process
        self.max_batch = max_batch
        self.late = late
        # under load (the last batch held more than one item), how long the next batch waits
        # for more items, unless `max_batch` are pending first: fewer, fuller batches
        self.linger = linger
        self._waiting: asyncio.Future[None] | None = None  # a lingering batch's wake-up
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self._deadlines: list[tuple[float, int, asyncio.Future[R]]] = []  # a heap
        self._order = itertools.count()  # ties between equal deadlines, never the futures
        self._timer: asyncio.TimerHandle | None = None

    def submit(self, item: T, *, deadline: float | None = None) -> asyncio.Future[R]:
        """Queue `item` for the next batch; await the future returned for its result.

        The future raises the item's exception, the one that failed its whole batch, or,
        past `deadline` (event loop time), `late()`; the item may still be processed then
        (`process` sees every item and may skip those whose callers have stopped waiting).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run_pending())
        elif self._waiting is not None and len(self._pending) >= self.max_batch:
            if not self._waiting.done():
                self._waiting.set_result(None)
        if deadline is not None:
            heap = self._deadlines
            while heap and heap[0][2].done():  # the oldest are mostly answered by now
                heapq.heappop(heap)
            heapq.heappush(heap, (deadline, next(self._order), future))
            if self._timer is None or deadline < self._timer.when():
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_at(deadline, self._expire, loop)
        return future

    async def wait_idle(self) -> None:
        """Wait until every queued item has been processed (shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _linger(self) -> None:
        """Wait `linger` seconds, or until `max_batch` items are pending."""
        loop = asyncio.get_running_loop()
        self._waiting = loop.create_future()
        timer = loop.call_later(self.linger, _wake, self._waiting)
        try:
            await self._waiting
        finally:
            timer.cancel()
            self._waiting = None

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail the futures whose deadline has passed; arm the timer for the next one."""
        self._timer = None
        heap = self._deadlines
        now = loop.time()
        while heap and (heap[0][0] <= now or heap[0][2].done()):
            _, _, future = heapq.heappop(heap)
            if not future.done():
                future.set_exception(self.late())
        if heap:
            self._timer = loop.call_at(heap[0][0], self._expire, loop)

    async def _run_pending(self) -> None:
        last = 0  # items in the last batch
        while self._pending:
            if self.linger > 0 and last > 1 and len(self._pending) < self.max_batch:
                await self._linger()
            batch = self._pending[: self.max_batch]
            last = len(batch)
            del self._pending[: self.max_batch]
            try:
                results = await self.process([item for item, _ in batch])
            except Exception as exc:  # the whole batch failed: every caller hears why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():  # its caller went away, or its deadline passed
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
