"""slos: SLOs over alert sources (state and bad periods); the chart shown in an incident's
message

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_T = store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("incidents", sa.Column("chart_file_id", sa.String(length=32), nullable=True))
    op.create_table(
        "slos",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("next_eval_at", _T, nullable=False),
        sa.Column("evaluated_at", _T, nullable=True),
        sa.Column("burn_level", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slos")),
    )
    op.create_index(op.f("ix_slos_next_eval_at"), "slos", ["next_eval_at"], unique=False)
    op.create_table(
        "slo_bad_periods",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slo_id", sa.String(length=100), nullable=False),
        sa.Column("start", _T, nullable=False),
        sa.Column("end", _T, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slo_bad_periods")),
    )
    op.create_index(
        "ix_slo_bad_periods_slo_end", "slo_bad_periods", ["slo_id", "end"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_slo_bad_periods_slo_end", table_name="slo_bad_periods")
    op.drop_table("slo_bad_periods")
    op.drop_index(op.f("ix_slos_next_eval_at"), table_name="slos")
    op.drop_table("slos")
    op.drop_column("incidents", "chart_file_id")
