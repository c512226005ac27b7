"""alerts: an index on (integration, fingerprint), for the Opsgenie drop-in's get alert

Revision ID: 0019
Revises: 0013
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_integration_fingerprint", "alerts", ["integration", "fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_alerts_integration_fingerprint", table_name="alerts")
