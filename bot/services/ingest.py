"""Alert ingest: accepted deliveries through the pipeline's stages, applied with group commit.

Deliveries that arrive while a transaction is in flight share the next one, so a burst of
alerts costs a few commits instead of one per request; under load the next transaction waits
a few milliseconds for more (`COMMIT_LINGER`). A delivery is answered only after the
transaction holding it has committed (durable 2xx). At low load a batch holds a single
delivery and nothing waits.

Waiting is bounded (`health.commit_timeout`): a delivery not committed by then (the database
unreachable, locked or out of connections) gets StoreUnavailable, 503 with Retry-After, and
the batch holding it is cut off and rolled back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from bot.clock import Clock
from bot.errors import StoreUnavailable, UserError
from bot.ingest.decisions import IngestOutcome
from bot.ingest.pipeline import Pipeline
from bot.ingest.stages import Delivery, IngestRequest, count_batch_repeats
from bot.metrics import Metrics
from bot.services.incidents import IncidentService
from store.batching import Batcher
from store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)
T = TypeVar("T")

COMMIT_LINGER = 0.003
"""Under load (the last group held more than one delivery), seconds the next group waits for
more deliveries before it starts: a transaction's own cost (begin, the batch's statements,
commit) is then shared by more of them. Measured with tests/bench_wrk.py: 3 ms took the CPU a
webhook costs from about 440 to about 300 us; longer waits left the event loop idle."""


@dataclass(frozen=True, slots=True)
class Queued:
    """A delivery waiting for its commit, and when its sender stops waiting (loop time)."""

    request: IngestRequest
    deadline: float


class AlertIngest:
    """Applies accepted deliveries: the pipeline decides, the incident service applies."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        incidents: IncidentService,
        clock: Clock,
        metrics: Metrics,
        max_batch: int = 256,
        commit_timeout: float = 5.0,
        linger: float = COMMIT_LINGER,
    ) -> None:
        self.pipeline = pipeline
        self.incidents = incidents
        self.clock = clock
        self.metrics = metrics
        self.commit_timeout = commit_timeout
        self._batcher: Batcher[Queued, Delivery] = Batcher(
            self._batch, max_batch=max_batch, late=self._late, linger=linger
        )

    async def submit(self, request: IngestRequest) -> Delivery:
        """Queue one delivery for the next commit and wait for its answer.

        Raises the delivery's UserError (e.g. a reused Idempotency-Key), or the database
        error that failed its whole batch; StoreUnavailable when not committed within
        `commit_timeout` (its batch is then cut off at the same deadline, so a delivery
        answered 503 is not committed later).
        """
        deadline = asyncio.get_running_loop().time() + self.commit_timeout
        return await self._batcher.submit(Queued(request, deadline), deadline=deadline)

    async def within(self, work: Awaitable[T], deadline: float | None = None) -> T:
        """Await `work` until `deadline` (event loop time; default `commit_timeout` from now);
        past it, StoreUnavailable (the work is cancelled: a transaction in it rolls back)."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self.commit_timeout
        try:
            async with asyncio.timeout_at(deadline):
                return await work
        except TimeoutError:
            raise self._late() from None

    def _late(self) -> StoreUnavailable:
        return StoreUnavailable(f"the database did not commit within {self.commit_timeout:g} s")

    async def wait_idle(self) -> None:
        """Wait until every queued delivery has been committed (shutdown)."""
        await self._batcher.wait_idle()

    async def apply(self, requests: Sequence[IngestRequest]) -> list[Delivery | UserError]:
        """Apply several deliveries in ONE write transaction (group commit).

        A delivery with an Idempotency-Key runs in a savepoint: one refused (the key reused
        with another body) changes nothing and gets its UserError back; the others commit
        together. Without a key nothing can refuse a delivery.
        """

        async def work(uow: UnitOfWork) -> list[Delivery | UserError]:
            now = self.clock.now()
            await count_batch_repeats(uow, requests, now)
            results: list[Delivery | UserError] = []
            for request in requests:
                if request.idempotency_key is None:
                    results.append(await self._deliver(uow, request, now))
                    continue
                try:
                    async with uow.savepoint():
                        results.append(await self._deliver(uow, request, now))
                except UserError as exc:
                    results.append(exc)
            # one statement for every incident's repeats, however many alerts repeated
            await uow.flush_repeats()
            return results

        return await self.incidents.write(work)

    async def apply_in(self, uow: UnitOfWork, request: IngestRequest, now: datetime) -> Delivery:
        """Apply one delivery in the caller's transaction (a heartbeat's claim commits with
        the incident it opens)."""
        delivery = await self._deliver(uow, request, now)
        await uow.flush_repeats()
        return delivery

    async def _batch(self, queued: list[Queued]) -> list[Delivery | BaseException]:
        """Apply a group; if it fails, apply each delivery alone so one failure fails one.

        Whatever made the group fail (a value the database refuses, a bug) then fails only the
        delivery that caused it; the others are committed, each in its own transaction. The
        group is cut off at its earliest delivery's deadline; deliveries whose senders have
        stopped waiting (queued behind a stuck batch) are not applied.
        """
        now = asyncio.get_running_loop().time()
        if any(q.deadline <= now for q in queued):
            live = [q for q in queued if q.deadline > now]
            answers = iter(await self._batch(live) if live else [])
            return [self._late() if q.deadline <= now else next(answers) for q in queued]
        requests = [q.request for q in queued]
        try:
            deadline = min(q.deadline for q in queued)
            return list(await self.within(self.apply(requests), deadline))
        except StoreUnavailable:
            raise  # nothing can be written now: every delivery hears 503 at once
        except Exception:
            if len(requests) == 1:
                log.exception("ingest of a delivery failed")
                raise
            log.warning("ingest group of %d failed; applying each alone", len(requests))
        results: list[Delivery | BaseException] = []
        for one in queued:
            try:
                results.extend(await self.within(self.apply([one.request]), one.deadline))
            except Exception as exc:
                log.exception("ingest of a delivery failed")
                results.append(exc)
        return results

    async def _deliver(self, uow: UnitOfWork, request: IngestRequest, now: datetime) -> Delivery:
        async def apply() -> Delivery:
            outcomes: list[IngestOutcome] = []
            for alert in request.alerts:
                decision = await self.pipeline.decide_for(uow, request, alert, now)
                outcomes.append(await self.incidents.apply(uow, request.integration, decision, now))
            counter = self.metrics.alerts_received
            for outcome in outcomes:
                labels = counter.labels(
                    integration=request.integration.name, outcome=outcome.outcome.value
                )
                uow.after_commit(labels.inc)
            return Delivery(
                status=202,
                body={
                    "status": "accepted",
                    "alerts": len(outcomes),
                    "results": [o.to_json() for o in outcomes],
                },
            )

        return await self.pipeline.deliver_in(uow, request, now, apply)
