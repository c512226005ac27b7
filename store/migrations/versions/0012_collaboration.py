"""collaboration: roles, the latest status update, reminder and archive deadlines, follow-ups

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 10:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("lead", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("comms", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("update_status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("update_summary", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("last_update_at", store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("update_due_at", store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index(batch.f("ix_incidents_update_due_at"), ["update_due_at"])
        batch.add_column(
            sa.Column("archive_at", store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.create_index(batch.f("ix_incidents_archive_at"), ["archive_at"])
    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=140), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_followups_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followups")),
    )
    op.create_index(op.f("ix_followups_incident_id"), "followups", ["incident_id"])
    op.create_index(op.f("ix_followups_done_at"), "followups", ["done_at"])


def downgrade() -> None:
    op.drop_table("followups")
    with op.batch_alter_table("incidents") as batch:
        batch.drop_index(batch.f("ix_incidents_archive_at"))
        batch.drop_column("archive_at")
        batch.drop_index(batch.f("ix_incidents_update_due_at"))
        batch.drop_column("update_due_at")
        batch.drop_column("last_update_at")
        batch.drop_column("update_summary")
        batch.drop_column("update_status")
        batch.drop_column("comms")
        batch.drop_column("lead")
