"""slack_requests: a claimed delivery's holder and lease, so that a replica that dies while
handling one does not make the other replicas drop Slack's retry of it

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("lease_until", store.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("slack_requests", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("holder")
