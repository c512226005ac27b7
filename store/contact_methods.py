"""The contact methods people set for themselves in Slack. Keyword-only queries over one
session; the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ContactMethodRow


@dataclass(frozen=True, slots=True)
class OwnMethod:
    method_id: str
    method_type: str
    destination: str
    after_seconds: int
    tested_at: datetime | None
    test_result: str | None


class ContactMethodRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, *, user: str) -> list[OwnMethod]:
        """The person's methods, soonest first."""
        rows = await self.session.scalars(
            select(ContactMethodRow)
            .where(ContactMethodRow.user == user)
            .order_by(ContactMethodRow.after_seconds, ContactMethodRow.created_at)
        )
        return [
            OwnMethod(
                method_id=r.method_id,
                method_type=r.method_type,
                destination=r.destination,
                after_seconds=r.after_seconds,
                tested_at=r.tested_at,
                test_result=r.test_result,
            )
            for r in rows.all()
        ]

    async def count(self, *, user: str) -> int:
        found = await self.session.scalar(select(func.count()).where(ContactMethodRow.user == user))
        return int(found or 0)

    async def add(
        self,
        *,
        user: str,
        method_id: str,
        method_type: str,
        destination: str,
        after_seconds: int,
        now: datetime,
    ) -> None:
        self.session.add(
            ContactMethodRow(
                user=user,
                method_id=method_id,
                method_type=method_type,
                destination=destination,
                after_seconds=after_seconds,
                created_at=now,
            )
        )
        await self.session.flush()

    async def remove(self, *, user: str, method_id: str) -> bool:
        result = await self.session.execute(
            delete(ContactMethodRow).where(
                ContactMethodRow.user == user, ContactMethodRow.method_id == method_id
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def tested(self, *, user: str, method_id: str, now: datetime, result: str) -> None:
        await self.session.execute(
            update(ContactMethodRow)
            .where(ContactMethodRow.user == user, ContactMethodRow.method_id == method_id)
            .values(tested_at=now, test_result=result[:500])
            .execution_options(synchronize_session=False)
        )
