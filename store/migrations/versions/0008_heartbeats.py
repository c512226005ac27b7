"""heartbeats: each heartbeat's last ping and deadline, claimed by the sweep

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_ping_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("missed_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("pings", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )
    op.create_index(op.f("ix_heartbeats_due_at"), "heartbeats", ["due_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_heartbeats_due_at"), table_name="heartbeats")
    op.drop_table("heartbeats")
