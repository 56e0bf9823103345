"""Disputes remember what they reversed; balance drift is recorded

A dispute row keeps the allocations and credits its chargeback reversed, so a won dispute reinstates
exactly those (a refund may have reversed others), and when it did. The hourly full pass, finding an
account no money movement marked whose stored figures differ from the ledger, writes a balance_drifts row.

Revision ID: 0010
Revises: 0013
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("disputes", sa.Column("reversal", postgresql.JSONB(), nullable=True))
    op.add_column("disputes", sa.Column("reinstated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "balance_drifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("before", postgresql.JSONB(), nullable=False),
        sa.Column("after", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_balance_drifts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_drifts")),
    )
    op.create_index(op.f("ix_balance_drifts_account_id"), "balance_drifts", ["account_id"], unique=False)
    op.create_index(op.f("ix_balance_drifts_found_at"), "balance_drifts", ["found_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_balance_drifts_found_at"), table_name="balance_drifts")
    op.drop_index(op.f("ix_balance_drifts_account_id"), table_name="balance_drifts")
    op.drop_table("balance_drifts")
    op.drop_column("disputes", "reinstated_at")
    op.drop_column("disputes", "reversal")
