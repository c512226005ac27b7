"""The outbox worker: delivers Slack side effects recorded with each state change.

Rows are claimed with a short lease (several replicas can run workers), renewed while their
delivery is in flight, delivered through the gateway, and completed; a retryable Slack
failure reschedules the row, a fatal one marks it dead. A worker that dies leaves its claims
to expire within one lease, and a worker starting on the same host releases them at once
when it sees their process is gone (`bot.delivery.owner`). Multi-step effects save their
progress after each step, and a redelivered row looks for what an earlier attempt may have
done before doing it again, so nothing already delivered is sent twice. The effects
themselves live in `bot.delivery.effects`, one module per area, registered here by kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.config import PulseOpsConfig
from bot.delivery import owner
from bot.delivery.effects import (
    UNSURE,
    Effects,
    GiveUp,
    Handler,
    HandoffEffects,
    IncidentEffects,
    LeaseBusy,
    Postpone,
)
from bot.delivery.kinds import OutboxKind
from bot.errors import NotifyRetryable, SlackFatal, SlackRetryable, SlackUnsure, StoreUnavailable
from bot.metrics import Metrics
from bot.render import Renderer
from bot.slack.gateway import SlackGateway, backoff_delay
from store.outbox import OutboxItem, OutboxRepository
from store.session import Database

log = logging.getLogger(__name__)

UNLOCKED_KINDS = frozenset({OutboxKind.WORKFLOW_RUN, OutboxKind.EVENT})
"""Kinds delivered without taking their incident's turn (they make no incident message edits)."""


class OutboxWorker:
    """Claims due outbox rows and runs each kind's handler, `concurrency` rows at a time."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        renderer: Renderer,
        config: PulseOpsConfig,
        clock: Clock,
        metrics: Metrics,
        concurrency: int = 64,
        lease: timedelta = timedelta(seconds=15),
        max_age: timedelta = timedelta(hours=24),
    ) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        # short, so a dead worker's rows are claimable again within seconds; renewed every
        # third of it while a delivery is in flight, however long Slack takes
        self.lease = lease
        self.max_age = max_age
        self.worker_id = owner.new_worker_id()
        self.concurrency = concurrency
        self._dead_checked_at: datetime | None = None
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._draining: asyncio.Task[int] | None = None
        self._again = False
        self.handlers: dict[str, Handler] = {}
        incidents = IncidentEffects(
            db=db, gateway=gateway, renderer=renderer, config=config, clock=clock
        )
        for effects in (
            incidents,
            HandoffEffects(db=db, gateway=gateway, renderer=renderer, config=config, clock=clock),
        ):
            self.register(effects)
        # steps run before a row takes its incident's turn: a page's DM never waits for the
        # incident's announcement or channel set-up (its mention in the channel still does)
        self.first_steps: dict[str, Handler] = {OutboxKind.PAGE: incidents.page_dm}
        # kinds that never touch the incident's Slack messages: they skip its turn, so a slow
        # SMTP server or phone provider never holds back a message edit
        self.unlocked: frozenset[str] = frozenset({OutboxKind.NOTIFY, OutboxKind.NOTIFY_TEST})

    def register(self, effects: Effects) -> None:
        """Deliver the outbox kinds `effects` handles with its handlers."""
        for kind, handler in effects.handlers().items():
            if kind in self.handlers:
                raise ValueError(f"two handlers for outbox kind {kind!r}")
            self.handlers[kind] = handler

    # ---- driving ------------------------------------------------------------------------

    async def tick(self) -> None:
        """The periodic sweep: deliver what has become due (retries, rows left by a restart)."""
        self.kick()

    def kick(self) -> None:
        """Deliver soon: start a drain now, or have the running one look for new rows."""
        self._again = True
        if self._draining and not self._draining.done():
            return
        self._draining = asyncio.get_running_loop().create_task(self._drain_loop())

    async def _drain_loop(self) -> int:
        try:
            return await self.drain()
        except Exception:  # the periodic sweep will try again; never lose the task silently
            log.exception("outbox drain failed")
            return 0

    async def drain(self) -> int:
        """Deliver every due row, `concurrency` at a time; return how many were attempted.

        Rows are claimed as slots free up (pages, then announcements first), so one slow
        effect never holds back the others; the claims of rows in flight are renewed meanwhile.
        """
        attempted = 0
        in_flight: dict[asyncio.Task[None], int] = {}
        renewing = asyncio.create_task(self._renew_claims(in_flight))
        exhausted = False
        try:
            while True:
                if self._again:
                    self._again, exhausted = False, False
                free = self.concurrency - len(in_flight)
                if free > 0 and not exhausted:
                    items = await self._claim(free)
                    exhausted = len(items) < free
                    attempted += len(items)
                    in_flight.update((asyncio.create_task(self._deliver(i)), i.id) for i in items)
                if not in_flight:
                    break
                done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del in_flight[task]
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        return attempted

    async def _renew_claims(self, in_flight: Mapping[asyncio.Task[None], int]) -> None:
        """Every third of the lease, extend the claims of the rows still being delivered."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            ids = list(in_flight.values())
            if not ids:
                continue
            try:
                await self.db.write_grouped(
                    partial(self._renew, ids=ids, until=self.clock.now() + self.lease)
                )
            except Exception:  # the next round tries again; the lease still has two thirds
                log.warning("could not renew outbox claims", exc_info=True)

    async def _renew(self, session: AsyncSession, *, ids: list[int], until: datetime) -> None:
        await OutboxRepository(session).renew(item_ids=ids, worker=self.worker_id, until=until)

    async def _release_dead_claims(self, repo: OutboxRepository, now: datetime) -> None:
        """Release the claims of workers on this host whose process has ended (a crash, a
        kill -9), so their rows are delivered now rather than when the lease runs out.

        Checked when the worker starts, then at most once a lease.
        """
        if self._dead_checked_at is not None and now - self._dead_checked_at < self.lease:
            return
        self._dead_checked_at = now
        claimers = await repo.claimers(now=now)
        dead = [w for w in claimers if owner.is_gone(w, me=self.worker_id)]
        if dead:
            released = await repo.release(workers=dead, now=now)
            log.warning(
                "released the outbox rows of workers that died",
                extra={"workers": dead, "rows": released},
            )

    async def _claim(self, limit: int) -> list[OutboxItem]:
        now = self.clock.now()
        async with self.db.write() as session:
            repo = OutboxRepository(session)
            await self._release_dead_claims(repo, now)
            return await repo.claim(
                now=now,
                lease_until=now + self.lease,
                worker=self.worker_id,
                limit=limit,
                # pages, then announcements: they tell people; channel set-up (create,
                # invites, topic, pin) and message edits follow as Slack's budget allows
                first_kinds=(OutboxKind.PAGE, OutboxKind.ANNOUNCE),
            )

    async def wait_idle(self) -> None:
        """Wait for the drain in flight (tests and shutdown)."""
        while self._draining and not self._draining.done():
            await asyncio.shield(self._draining)

    async def update_gauges(self) -> None:
        """Set the depth and oldest-age gauges (GET /metrics calls this when scraped)."""
        async with self.db.read() as session:
            depth, oldest = await OutboxRepository(session).depth()
        self.metrics.outbox_depth.set(depth)
        age = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
        self.metrics.outbox_oldest_age.set(max(age, 0.0))

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            await self._deliver_locked(item)
        except StoreUnavailable as exc:  # cannot record the outcome: the claim runs out instead
            log.warning(
                "outbox: could not record a delivery; the row is tried again after its lease",
                extra={"incident_id": item.incident_id, "kind": item.kind, "error": str(exc)},
            )

    async def _deliver_locked(self, item: OutboxItem) -> None:
        # workflow runs wait on outside endpoints: they never hold up the incident's messages
        key = -item.id if item.kind in UNLOCKED_KINDS else item.incident_id or 0
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        if item.interrupted:  # a delivery died mid-way: what it sent is unknown
            item.progress[UNSURE] = True
        first_step = self.first_steps.get(item.kind)
        async with contextlib.AsyncExitStack() as turn:
            try:
                if first_step is not None:
                    await first_step(item)
                if item.kind not in self.unlocked:
                    await turn.enter_async_context(lock)
                await self.handlers[item.kind](item)
            except SlackRetryable as exc:
                if isinstance(exc, SlackUnsure):  # the next delivery looks before repeating
                    item.progress[UNSURE] = True
                await self._reschedule(item, exc.retry_after, str(exc))
            except NotifyRetryable as exc:  # a provider outage: the notification waits
                await self._reschedule(item, exc.retry_after, exc.reason)
            except LeaseBusy:
                await self._reschedule(item, 1.0, "incident messages busy in another worker")
            except Postpone as exc:
                await self._reschedule(item, exc.after, str(exc), at_least=False)
            except (SlackFatal, GiveUp) as exc:
                log.error(
                    "effect failed for good",
                    extra={"incident_id": item.incident_id, "kind": item.kind, "error": str(exc)},
                )
                self.metrics.outbox_failed.labels(kind=item.kind).inc()
                now, error = self.clock.now(), str(exc)
                await self.db.write_grouped(
                    lambda session: OutboxRepository(session).fail(
                        item_id=item.id, now=now, error=error
                    )
                )
            except Exception as exc:  # a bug or a database blip: keep the row, try later
                log.exception("outbox delivery crashed", extra={"incident_id": item.incident_id})
                # a Slack call may have succeeded before the crash without being recorded
                # (a channel created, a message posted): the next delivery looks first
                item.progress[UNSURE] = True
                await self._reschedule(item, None, f"{type(exc).__name__}: {exc}")
            else:
                self.metrics.outbox_delivered.labels(kind=item.kind).inc()
                now = self.clock.now()
                await self.db.write_grouped(
                    lambda session: OutboxRepository(session).complete(
                        item_id=item.id, now=now, progress=item.progress
                    )
                )

    async def _reschedule(
        self, item: OutboxItem, after: float | None, error: str, *, at_least: bool = True
    ) -> None:
        now = self.clock.now()
        delay = after or 0.0
        if at_least:
            delay = max(delay, backoff_delay(item.attempts, cap=60.0))
        if now - item.created_at > self.max_age:
            self.metrics.outbox_failed.labels(kind=item.kind).inc()
            gave_up = f"gave up after {self.max_age}: {error}"
            await self.db.write_grouped(
                lambda session: OutboxRepository(session).fail(
                    item_id=item.id, now=now, error=gave_up
                )
            )
        else:
            await self.db.write_grouped(
                lambda session: OutboxRepository(session).retry_later(
                    item_id=item.id,
                    at=now + timedelta(seconds=delay),
                    error=error,
                    progress=item.progress,
                )
            )
        log.warning(
            "slack effect postponed",
            extra={
                "incident_id": item.incident_id,
                "kind": item.kind,
                "error": error,
                "retry_in": round(delay, 2),
            },
        )
