"""stripe_events: one partial index on waiting events instead of three on every event

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_stripe_events_waiting",
        "stripe_events",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("status = 'received'"),
    )
    op.drop_index("ix_stripe_events_type", table_name="stripe_events")
    op.drop_index("ix_stripe_events_status", table_name="stripe_events")
    op.drop_index("ix_stripe_events_received_at", table_name="stripe_events")


def downgrade() -> None:
    op.create_index("ix_stripe_events_received_at", "stripe_events", ["received_at"], unique=False)
    op.create_index("ix_stripe_events_status", "stripe_events", ["status"], unique=False)
    op.create_index("ix_stripe_events_type", "stripe_events", ["type"], unique=False)
    op.drop_index("ix_stripe_events_waiting", table_name="stripe_events")
