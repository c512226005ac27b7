"""The replay log of Slack requests: which requests and events were handled, until when.

A row is either handled (`lease_until` NULL: a replay or retry of it is dropped) or claimed by
a replica that is handling it (`holder`, until `lease_until`): a retry that finds a live claim
waits for Slack's next attempt, and one that finds an expired claim takes the delivery over.

Keyword-only queries over one session; the caller owns the transaction.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import SlackRequestRow
from store.session import insert_or_ignore


class Claim(enum.Enum):
    """What a replica may do with a delivery it received."""

    NEW = "new"  # handle it: this replica holds it now
    DONE = "done"  # handled already (here or on another replica): acknowledge, do nothing
    BUSY = "busy"  # another replica holds it and its lease runs: leave it to Slack's next retry


class SlackRequestRepository:
    """Remembers request keys until they expire; a key is remembered once, across replicas."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def remember(self, *, key: str, expires_at: datetime) -> bool:
        """Record `key` as handled; True when it is new, False when it was already recorded.

        An expired row still counts until the purge removes it: a request it names can no
        longer pass the signature's time check anyway.
        """
        inserted = await insert_or_ignore(
            self.session, SlackRequestRow, {"key": key, "expires_at": expires_at}
        )
        return inserted is not None

    async def claim(
        self, *, key: str, holder: str, now: datetime, lease_until: datetime, expires_at: datetime
    ) -> Claim:
        """Claim `key` for `holder` until `lease_until`, unless it is handled or held.

        A claim whose lease ended before `now` is taken over (its holder died or hung): one
        replica wins, the row lock (PostgreSQL) or the single writer (SQLite) decides.
        """
        values = {"holder": holder, "lease_until": lease_until, "expires_at": expires_at}
        if await insert_or_ignore(self.session, SlackRequestRow, {"key": key, **values}):
            return Claim.NEW
        taken = await self.session.execute(
            update(SlackRequestRow)
            .where(
                SlackRequestRow.key == key,
                SlackRequestRow.lease_until.is_not(None),
                SlackRequestRow.lease_until <= now,
            )
            .values(**values)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            return Claim.NEW
        lease = await self.session.scalar(
            select(SlackRequestRow.lease_until).where(SlackRequestRow.key == key)
        )
        return Claim.DONE if lease is None else Claim.BUSY

    async def settle(self, *, key: str, holder: str) -> None:
        """`holder` handled `key`: from now on a retry of it is dropped."""
        await self.session.execute(
            update(SlackRequestRow)
            .where(SlackRequestRow.key == key, SlackRequestRow.holder == holder)
            .values(lease_until=None)
        )

    async def release(self, *, key: str, holder: str) -> None:
        """`holder` could not handle `key`: forget its claim, so that a retry runs it."""
        await self.session.execute(
            delete(SlackRequestRow).where(
                SlackRequestRow.key == key,
                SlackRequestRow.holder == holder,
                SlackRequestRow.lease_until.is_not(None),
            )
        )

    async def purge(self, *, now: datetime) -> int:
        """Forget the keys expired at `now`; returns how many."""
        result = await self.session.execute(
            delete(SlackRequestRow).where(SlackRequestRow.expires_at <= now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def count(self) -> int:
        """How many keys are remembered (expired or not)."""
        return int(
            await self.session.scalar(select(func.count()).select_from(SlackRequestRow)) or 0
        )
