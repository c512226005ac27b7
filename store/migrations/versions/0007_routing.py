"""routing: incidents.category (set by routes, labels or the classifier) and alerts.severity

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("category", sa.String(length=100), nullable=True))
        batch.create_index(batch.f("ix_incidents_category"), ["category"], unique=False)
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("severity", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("severity")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index(batch.f("ix_incidents_category"))
        batch.drop_column("category")
