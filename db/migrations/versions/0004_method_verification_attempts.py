"""payment_methods.verification_attempts(_on): microdeposit attempts per method per day, limited by Remit

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "payment_methods",
        sa.Column("verification_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("payment_methods", sa.Column("verification_attempts_on", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("payment_methods", "verification_attempts_on")
    op.drop_column("payment_methods", "verification_attempts")
