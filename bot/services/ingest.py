"""Group commit for webhook deliveries: those that arrive while a transaction is in flight
share the next one, so a burst of alerts costs a few commits instead of one per request.

A delivery is answered only after the transaction holding it has committed (durable 2xx).
At low load a batch holds a single delivery and nothing waits.
"""

from __future__ import annotations

import logging

from bot.errors import UserError
from bot.services.alerts import Delivery, IngestRequest
from bot.services.incidents import IncidentService
from store.batching import Batcher

log = logging.getLogger(__name__)


class IngestBatcher:
    def __init__(self, service: IncidentService, *, max_batch: int = 32) -> None:
        self.service = service
        self._batcher: Batcher[IngestRequest, Delivery] = Batcher(self._ingest, max_batch=max_batch)

    async def submit(self, request: IngestRequest) -> Delivery:
        """Queue one delivery for the next commit and wait for its answer.

        Raises the delivery's UserError (e.g. a reused Idempotency-Key), or the database
        error that failed its whole batch.
        """
        return await self._batcher.submit(request)

    async def wait_idle(self) -> None:
        """Wait until every queued delivery has been committed (shutdown)."""
        await self._batcher.wait_idle()

    async def _ingest(self, requests: list[IngestRequest]) -> list[Delivery | UserError]:
        try:
            return await self.service.ingest_many(requests)
        except Exception:
            log.exception("ingest batch of %d failed", len(requests))
            raise
