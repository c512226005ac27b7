"""dm_channels: each person's DM channel, opened once; an index for a person's page DMs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "dm_channels",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("opened_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_until", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_dm_channels")),
    )
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.create_index("ix_pages_target_dm_ts", ["target", "dm_ts"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_index("ix_pages_target_dm_ts")

    op.drop_table("dm_channels")
