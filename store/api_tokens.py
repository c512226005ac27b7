"""API tokens created at run time: name, SHA-256 of the secret, scopes (never the secret)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import Conflict, NotFound
from store.models import ApiTokenRow


@dataclass(frozen=True, slots=True)
class StoredToken:
    name: str
    token_sha256: str
    scopes: tuple[str, ...]
    created_at: datetime


def _token(row: ApiTokenRow) -> StoredToken:
    return StoredToken(
        name=row.name,
        token_sha256=row.token_sha256,
        scopes=tuple(s for s in row.scopes.split(",") if s),
        created_at=row.created_at,
    )


class ApiTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, *, name: str, token_sha256: str, scopes: tuple[str, ...], now: datetime
    ) -> StoredToken:
        """Store a new token; Conflict when the name is taken."""
        if await self.session.get(ApiTokenRow, name) is not None:
            raise Conflict(f"an API token named {name!r} already exists", fields={"name": "taken"})
        row = ApiTokenRow(
            name=name, token_sha256=token_sha256, scopes=",".join(scopes), created_at=now
        )
        self.session.add(row)
        await self.session.flush()
        return _token(row)

    async def all(self) -> list[StoredToken]:
        rows = await self.session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.name))
        return [_token(r) for r in rows]

    async def remove(self, *, name: str) -> None:
        """Delete the token; NotFound when there is none by that name."""
        result = await self.session.execute(delete(ApiTokenRow).where(ApiTokenRow.name == name))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"no API token named {name!r}")
