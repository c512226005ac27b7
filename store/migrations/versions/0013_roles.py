"""roles: an incident's lead and communications lead

Revision ID: 0013
Revises: 0006
Create Date: 2026-11-28 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("lead", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("comms", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("comms")
        batch.drop_column("lead")
