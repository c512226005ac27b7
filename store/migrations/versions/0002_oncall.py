"""on-call: overrides, escalations, pages, handoffs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:12:20.008879
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "handoffs",
        sa.Column("schedule_id", sa.String(length=100), nullable=False),
        sa.Column("at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outgoing", sa.String(length=32), nullable=False),
        sa.Column("incoming", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("schedule_id", "at", name=op.f("pk_handoffs")),
    )
    op.create_table(
        "oncall_overrides",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.String(length=100), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("start", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oncall_overrides")),
    )
    with op.batch_alter_table("oncall_overrides", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oncall_overrides_end"), ["end"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_oncall_overrides_schedule_id"), ["schedule_id"], unique=False
        )

    op.create_table(
        "schedule_state",
        sa.Column("schedule_id", sa.String(length=100), nullable=False),
        sa.Column("handoffs_checked_until", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("schedule_id", name=op.f("pk_schedule_state")),
    )
    op.create_table(
        "escalations",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.String(length=100), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("next_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_escalations_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_escalations")),
    )
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_escalations_next_at"), ["next_at"], unique=False)

    op.create_table(
        "pages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=140), nullable=False),
        sa.Column("paged_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("scheduled_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dm_channel", sa.String(length=32), nullable=True),
        sa.Column("dm_ts", sa.String(length=32), nullable=True),
        sa.Column("dm_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_pages_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pages")),
    )
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pages_incident_id"), ["incident_id"], unique=False)
        batch_op.create_index(
            "uq_pages_step_target", ["incident_id", "cycle", "level", "step", "target"], unique=True
        )


def downgrade() -> None:

    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_index("uq_pages_step_target")
        batch_op.drop_index(batch_op.f("ix_pages_incident_id"))

    op.drop_table("pages")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalations_next_at"))

    op.drop_table("escalations")
    op.drop_table("schedule_state")
    with op.batch_alter_table("oncall_overrides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oncall_overrides_schedule_id"))
        batch_op.drop_index(batch_op.f("ix_oncall_overrides_end"))

    op.drop_table("oncall_overrides")
    op.drop_table("handoffs")
