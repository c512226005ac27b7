"""One write transaction as a typed value: its session, what runs after it commits, the repeat
tally of an alert batch, and whether it gave the outbox work."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store.incidents import IncidentRepository, RepeatRecorded
from store.outbox import OutboxRepository


@dataclass(eq=False, slots=True)
class UnitOfWork:
    """Built by `bot.services.transactions.in_write` for each try of a write transaction."""

    session: AsyncSession
    callbacks: list[Callable[[], None]] = field(default_factory=list)
    repeats: Counter[int] = field(default_factory=Counter)
    enqueued: bool = False
    # repeats a batch counted up front, by (dedup key, fingerprint): None = checked, not one
    counted: dict[tuple[str, str], RepeatRecorded | None] = field(default_factory=dict)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction commits (metrics count only what happened)."""
        self.callbacks.append(callback)

    async def enqueue(
        self,
        *,
        kind: str,
        now: datetime,
        incident_id: int | None = None,
        payload: dict[str, Any] | None = None,
        due_at: datetime | None = None,
    ) -> None:
        """Add outbox work (from `due_at`, default now); the worker is woken after the commit."""
        self.enqueued = True
        await OutboxRepository(self.session).enqueue(
            kind=kind, now=now, incident_id=incident_id, payload=payload, due_at=due_at
        )

    def count_repeat(self, incident_id: int) -> None:
        """Tally one repeated notification; `flush_repeats` adds the tally in one statement."""
        self.repeats[incident_id] += 1

    async def flush_repeats(self) -> None:
        """Add the tallied repeats to the incidents' alert counts, however many there were."""
        await IncidentRepository(self.session).count_repeats(self.repeats)
        self.repeats.clear()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction; if it fails, what it registered here is forgotten too."""
        callbacks, repeats, enqueued = len(self.callbacks), self.repeats.copy(), self.enqueued
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            del self.callbacks[callbacks:]
            self.repeats, self.enqueued = repeats, enqueued
            raise
