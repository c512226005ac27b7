"""notifications and contact_methods: e-mail, SMS, call and push notifications that pages ask
for, and the methods people set for themselves in Slack

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 10:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("method_id", sa.String(length=64), nullable=False),
        sa.Column("method_type", sa.String(length=16), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("link_used_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_notifications_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["pages.id"],
            name=op.f("fk_notifications_page_id_pages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        op.f("ix_notifications_incident_id"), "notifications", ["incident_id"], unique=False
    )
    op.create_index(
        op.f("ix_notifications_provider_id"), "notifications", ["provider_id"], unique=False
    )
    op.create_index(
        "uq_notifications_page_method", "notifications", ["page_id", "method_id"], unique=True
    )
    op.create_index(
        "ix_notifications_user_sent", "notifications", ["user", "method_type", "sent_at"]
    )
    op.create_index(
        "ix_notifications_destination", "notifications", ["method_type", "destination", "sent_at"]
    )

    op.create_table(
        "contact_methods",
        sa.Column("user", sa.String(length=32), nullable=False),
        sa.Column("method_id", sa.String(length=64), nullable=False),
        sa.Column("method_type", sa.String(length=16), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("after_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tested_at", store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("test_result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("user", "method_id", name=op.f("pk_contact_methods")),
    )


def downgrade() -> None:
    op.drop_table("contact_methods")
    op.drop_table("notifications")
