"""Apply and inspect Alembic migrations programmatically, on the app's own async engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from store.session import Database

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x50554C5345  # "PULSE": serialises concurrent upgrades of several replicas


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(db: Database, revision: str = "head") -> None:
    """Upgrade the schema to `revision` (idempotent; safe with several replicas on PostgreSQL)."""

    def _run(sync_conn: Any) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with db.engine.begin() as conn:
        if db.is_postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        await conn.run_sync(_run)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None before the first migration."""

    def _current(sync_conn: Any) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def is_up_to_date(db: Database) -> bool:
    return await current_revision(db) == head_revision()
