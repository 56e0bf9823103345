"""Credit pays invoices: what a payment spends from credit, which credit went where, the last look's changes

A payment records the credit it spends (credit_used_minor) beside what Stripe charges (amount_minor, now
zero when credit covers everything, and then no method is needed). A credit spent by a payment is
`reserved` while that payment is in flight or scheduled and `applied` once it succeeded, and names the
payment (used_by_payment_id) and the invoice (applied_invoice_id). last_look_changes keeps what the last
look changed from what the customer approved, for the emails.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

_AMOUNTS = "amount_minor >= 0 AND credit_used_minor >= 0 AND amount_minor + credit_used_minor > 0"
_SPENT = "state NOT IN ('reserved', 'applied') OR (used_by_payment_id IS NOT NULL AND applied_invoice_id IS NOT NULL)"


def upgrade() -> None:
    op.add_column(
        "payments", sa.Column("credit_used_minor", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("payments", sa.Column("last_look_changes", postgresql.JSONB(), nullable=True))
    op.alter_column("payments", "payment_method_id", existing_type=sa.Integer(), nullable=True)
    op.drop_constraint(op.f("ck_payments_amount_positive"), "payments", type_="check")
    op.create_check_constraint(op.f("ck_payments_amount_positive"), "payments", _AMOUNTS)
    op.create_check_constraint(
        op.f("ck_payments_charge_has_method"), "payments", "amount_minor = 0 OR payment_method_id IS NOT NULL"
    )
    op.drop_constraint(op.f("ck_payments_kind_known"), "payments", type_="check")
    op.create_check_constraint(
        op.f("ck_payments_kind_known"), "payments", "kind IN ('invoices', 'amount', 'deposit', 'credit')"
    )
    op.add_column("credits", sa.Column("used_by_payment_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_credits_used_by_payment_id_payments"), "credits", "payments", ["used_by_payment_id"], ["id"]
    )
    op.create_index(op.f("ix_credits_used_by_payment_id"), "credits", ["used_by_payment_id"])
    op.drop_constraint(op.f("ck_credits_state_known"), "credits", type_="check")
    op.create_check_constraint(
        op.f("ck_credits_state_known"),
        "credits",
        "state IN ('pending', 'available', 'reserved', 'applied', 'reversed')",
    )
    op.create_check_constraint(op.f("ck_credits_spent_names_payment"), "credits", _SPENT)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_credits_spent_names_payment"), "credits", type_="check")
    op.execute("UPDATE credits SET state = 'available' WHERE state = 'reserved'")
    op.drop_constraint(op.f("ck_credits_state_known"), "credits", type_="check")
    op.create_check_constraint(
        op.f("ck_credits_state_known"), "credits", "state IN ('pending', 'available', 'applied', 'reversed')"
    )
    op.drop_index(op.f("ix_credits_used_by_payment_id"), table_name="credits")
    op.drop_constraint(op.f("fk_credits_used_by_payment_id_payments"), "credits", type_="foreignkey")
    op.drop_column("credits", "used_by_payment_id")
    op.drop_constraint(op.f("ck_payments_kind_known"), "payments", type_="check")
    op.create_check_constraint(
        op.f("ck_payments_kind_known"), "payments", "kind IN ('invoices', 'amount', 'deposit')"
    )
    op.drop_constraint(op.f("ck_payments_charge_has_method"), "payments", type_="check")
    op.drop_constraint(op.f("ck_payments_amount_positive"), "payments", type_="check")
    # A payment paid wholly from credit has no form before this revision: stop rather than lose it.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM payments WHERE amount_minor = 0 OR kind = 'credit') THEN"
        " RAISE EXCEPTION 'payments paid from credit exist; 0009 cannot be downgraded'; END IF; END $$"
    )
    op.create_check_constraint(op.f("ck_payments_amount_positive"), "payments", "amount_minor > 0")
    op.alter_column("payments", "payment_method_id", existing_type=sa.Integer(), nullable=False)
    op.drop_column("payments", "last_look_changes")
    op.drop_column("payments", "credit_used_minor")
