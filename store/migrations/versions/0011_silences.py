"""silences and suppressed_alerts: silences, and alerts muted or dropped (no incident)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        _at("starts_at"),
        _at("ends_at"),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=140), nullable=False),
        _at("created_at"),
        _at("expired_at", nullable=True),
        sa.Column("expired_by", sa.String(length=140), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_silences_ends_at"), ["ends_at"], unique=False)
    op.create_table(
        "suppressed_alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("integration", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=255), nullable=False),
        sa.Column("dedup_key", sa.String(length=600), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("silence_id", sa.Integer(), nullable=True),
        sa.Column("window", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=1000), nullable=False),
        sa.Column("alert", sa.JSON(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        _at("first_seen_at"),
        _at("last_seen_at"),
        _at("resolved_at", nullable=True),
        _at("held_until", nullable=True),
        _at("released_at", nullable=True),
        sa.Column("released_incident_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressed_alerts")),
    )
    with op.batch_alter_table("suppressed_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_suppressed_alerts_silence_id"), ["silence_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_suppressed_alerts_held_until"), ["held_until"], unique=False
        )
        batch_op.create_index(
            "uq_suppressed_alerts_integration_fingerprint",
            ["integration", "fingerprint"],
            unique=True,
        )


def downgrade() -> None:
    op.drop_table("suppressed_alerts")
    op.drop_table("silences")
