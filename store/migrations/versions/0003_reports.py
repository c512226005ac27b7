"""reports: one row per scheduled report (scope, period start), posted exactly once

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "reports",
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("period_start", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "period_start", name=op.f("pk_reports")),
    )


def downgrade() -> None:

    op.drop_table("reports")
