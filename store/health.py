"""Whether the store can write: a small probe write, for /readyz while writes are failing."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete

from store.models import IdempotencyRow
from store.session import Database

PROBE_INTEGRATION = "__readyz__"
PROBE_BYTES = 16 * 1024  # larger than a page: the probe needs fresh space, as real writes do


async def probe_write(db: Database, *, now: datetime) -> None:
    """Commit a row that needs new space, then remove it; raise StoreUnavailable if it fails.

    On success the database is writable again (`db.unwritable` is cleared). The row is born
    expired, so the idempotency purge removes it even if the delete fails.
    """
    key = uuid.uuid4().hex
    async with db.write() as session:
        session.add(
            IdempotencyRow(
                integration=PROBE_INTEGRATION,
                key=key,
                body_sha256="",
                status_code=0,
                response={"probe": "x" * PROBE_BYTES},
                created_at=now,
                expires_at=now,
            )
        )
    async with db.write() as session:
        await session.execute(
            delete(IdempotencyRow).where(
                IdempotencyRow.integration == PROBE_INTEGRATION, IdempotencyRow.key == key
            )
        )
    db.unwritable = False
