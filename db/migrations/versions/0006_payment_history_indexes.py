"""payments (account_id, created_at, id) and (account_id, amount_minor, id): the history's keyset pages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 16:40:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_payments_account_created", "payments", ["account_id", "created_at", "id"])
    op.create_index("ix_payments_account_amount", "payments", ["account_id", "amount_minor", "id"])


def downgrade() -> None:
    op.drop_index("ix_payments_account_amount", table_name="payments")
    op.drop_index("ix_payments_account_created", table_name="payments")
