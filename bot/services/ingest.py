"""Group commit for webhook deliveries: those that arrive while a transaction is in flight
share the next one, so a burst of alerts costs a few commits instead of one per request.

A delivery is answered only after the transaction holding it has committed (durable 2xx).
At low load a batch holds a single delivery and nothing waits.
"""

from __future__ import annotations

import asyncio
import logging

from bot.errors import UserError
from bot.services.alerts import Delivery, IngestRequest
from bot.services.incidents import IncidentService

log = logging.getLogger(__name__)


class IngestBatcher:
    def __init__(self, service: IncidentService, *, max_batch: int = 32) -> None:
        self.service = service
        self.max_batch = max_batch
        self._pending: list[tuple[IngestRequest, asyncio.Future[Delivery]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, request: IngestRequest) -> Delivery:
        """Queue one delivery for the next commit and wait for its answer.

        Raises the delivery's UserError (e.g. a reused Idempotency-Key), or the database
        error that failed its whole batch.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Delivery] = loop.create_future()
        self._pending.append((request, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._commit_pending())
        # the batch commits even if this caller goes away; its answer is then just dropped
        return await asyncio.shield(future)

    async def _commit_pending(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                results = await self.service.ingest_many([request for request, _ in batch])
            except Exception as exc:  # the whole batch failed: every caller hears why
                log.exception("ingest batch of %d failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, UserError):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def wait_idle(self) -> None:
        """Wait until every queued delivery has been committed (shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
