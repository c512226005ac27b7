"""The replay log of Slack requests: which requests and events were handled, until when.

Keyword-only queries over one session; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import SlackRequestRow
from store.session import insert_or_ignore


class SlackRequestRepository:
    """Remembers request keys until they expire; a key is remembered once, across replicas."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def remember(self, *, key: str, expires_at: datetime) -> bool:
        """Record `key`; True when it is new, False when it was already recorded.

        An expired row still counts until the purge removes it: a request it names can no
        longer pass the signature's time check anyway.
        """
        inserted = await insert_or_ignore(
            self.session, SlackRequestRow, {"key": key, "expires_at": expires_at}
        )
        return inserted is not None

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
