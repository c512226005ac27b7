"""alerts: an index on (integration, fingerprint), for the Opsgenie drop-in's get alert

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_integration_fingerprint", "alerts", ["integration", "fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_alerts_integration_fingerprint", table_name="alerts")
