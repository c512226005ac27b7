"""slack_requests: the Slack requests and events already handled, refused when replayed

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "slack_requests",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("expires_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_requests")),
    )
    with op.batch_alter_table("slack_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_slack_requests_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("slack_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_requests_expires_at"))
    op.drop_table("slack_requests")
