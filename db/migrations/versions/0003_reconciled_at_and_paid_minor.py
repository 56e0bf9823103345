"""payments.reconciled_at, so the reconciler takes turns; allocations.paid_minor, what each invoice was paid

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payments", sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("allocations", sa.Column("paid_minor", sa.BigInteger(), nullable=True))
    # A refund only ever lowers amount_minor, so for a reduced allocation this is the best we know;
    # every allocation written from now on records its true first amount.
    op.execute("UPDATE allocations SET paid_minor = amount_minor")
    op.alter_column("allocations", "paid_minor", nullable=False)
    op.create_check_constraint(
        op.f("ck_allocations_paid_covers_amount"), "allocations", "paid_minor >= amount_minor"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_allocations_paid_covers_amount"), "allocations", type_="check")
    op.drop_column("allocations", "paid_minor")
    op.drop_column("payments", "reconciled_at")
