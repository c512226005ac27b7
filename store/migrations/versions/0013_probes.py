"""probes: each probe's schedule and state, raw results and hourly rollups

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 11:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_T = store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "probes",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("next_run_at", _T, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_run_at", _T, nullable=True),
        sa.Column("last_ok", sa.Boolean(), nullable=True),
        sa.Column("last_latency_ms", sa.Float(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("cert_days", sa.Integer(), nullable=True),
        sa.Column("latency_anomaly", sa.Boolean(), nullable=False),
        sa.Column("error_anomaly", sa.Boolean(), nullable=False),
        sa.Column("cert_expiring", sa.Boolean(), nullable=False),
        sa.Column("latency_calm", sa.Integer(), nullable=False),
        sa.Column("error_calm", sa.Integer(), nullable=False),
        sa.Column("burn_level", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probes")),
    )
    op.create_index(op.f("ix_probes_next_run_at"), "probes", ["next_run_at"], unique=False)
    op.create_table(
        "probe_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("probe_id", sa.String(length=100), nullable=False),
        sa.Column("at", _T, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("cert_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_results")),
    )
    op.create_index(op.f("ix_probe_results_at"), "probe_results", ["at"], unique=False)
    op.create_index("ix_probe_results_probe_at", "probe_results", ["probe_id", "at"], unique=False)
    op.create_table(
        "probe_rollups",
        sa.Column("probe_id", sa.String(length=100), nullable=False),
        sa.Column("hour", _T, nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_max_ms", sa.Float(), nullable=False),
        sa.Column("latency_p50_ms", sa.Float(), nullable=False),
        sa.Column("latency_p95_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("probe_id", "hour", name=op.f("pk_probe_rollups")),
    )


def downgrade() -> None:
    op.drop_table("probe_rollups")
    op.drop_index("ix_probe_results_probe_at", table_name="probe_results")
    op.drop_index(op.f("ix_probe_results_at"), table_name="probe_results")
    op.drop_table("probe_results")
    op.drop_index(op.f("ix_probes_next_run_at"), table_name="probes")
    op.drop_table("probes")
