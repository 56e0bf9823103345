"""Credit pays invoices: what a payment spends from credit, which credit went where, the last look's changes

A payment records the credit it spends (credit_used_minor) beside what Stripe charges (amount_minor, now
zero when credit covers everything, and then no method is needed). A credit spent by a payment is
`reserved` while that payment is in flight or scheduled and `applied` once it succeeded, and names the
payment (used_by_payment_id) and the invoice (applied_invoice_id). last_look_changes keeps what the last
look changed from what the customer approved, for the emails. An external payment's line on an invoice a
payment in flight holds (its charge may already be at Stripe) becomes credit instead of settling it
(external_payment_lines.as_credit): it claims nothing of the invoice, so the guard of 0007 skips it.

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0011"
branch_labels = None
depends_on = None

_AMOUNTS = "amount_minor >= 0 AND credit_used_minor >= 0 AND amount_minor + credit_used_minor > 0"
_SPENT = "state NOT IN ('reserved', 'applied') OR (used_by_payment_id IS NOT NULL AND applied_invoice_id IS NOT NULL)"


# 0007's guard, counting only the external lines that settle their invoice.
_GUARD = """
CREATE OR REPLACE FUNCTION remit_invoice_claims_within_total() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    claimed bigint;
    total bigint;
    grew boolean;
BEGIN
    IF TG_TABLE_NAME = 'allocations' THEN
        grew := TG_OP = 'INSERT'
            OR (NEW.state IN ('reserved', 'applied') AND OLD.state NOT IN ('reserved', 'applied'))
            OR (NEW.state IN ('reserved', 'applied')
                AND NEW.amount_minor + NEW.discount_minor > OLD.amount_minor + OLD.discount_minor);
        IF TG_OP = 'INSERT' AND NEW.state NOT IN ('reserved', 'applied') THEN
            grew := false;
        END IF;
    ELSE
        grew := NOT NEW.as_credit AND (TG_OP = 'INSERT' OR NEW.amount_minor > OLD.amount_minor);
    END IF;
    IF NOT grew THEN
        RETURN NULL;
    END IF;
    SELECT total_minor INTO total FROM invoices WHERE id = NEW.invoice_id FOR UPDATE;
    SELECT coalesce(sum(amount_minor + discount_minor), 0) INTO claimed
        FROM allocations WHERE invoice_id = NEW.invoice_id AND state IN ('reserved', 'applied');
    claimed := claimed + (SELECT coalesce(sum(amount_minor), 0) FROM external_payment_lines
                          WHERE invoice_id = NEW.invoice_id AND NOT as_credit);
    IF claimed > total THEN
        RAISE EXCEPTION 'invoice % would be claimed % of its total %', NEW.invoice_id, claimed, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoice_claims_within_total';
    END IF;
    RETURN NULL;
END
$$
"""


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
    op.add_column(
        "external_payment_lines",
        sa.Column("as_credit", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(_GUARD)


def downgrade() -> None:
    op.execute(_GUARD.replace(" AND NOT as_credit", "").replace("NOT NEW.as_credit AND ", ""))
    op.drop_column("external_payment_lines", "as_credit")
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
