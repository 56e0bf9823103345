"""PostgreSQL itself refuses a new claim on an invoice beyond what it owes

What allocations hold (reserved or applied, discounts included) plus what external payments paid can
never exceed the invoice's total when a claim is added or grows. Moving a claim between states, or
shrinking it, is always allowed: a charge Stripe already took must be recordable even after an ERP
lowered the invoice (the last look, not this guard, decides what is charged).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 17:00:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_FUNCTION = """
CREATE FUNCTION remit_invoice_claims_within_total() RETURNS trigger LANGUAGE plpgsql AS $$
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
        grew := TG_OP = 'INSERT' OR NEW.amount_minor > OLD.amount_minor;
    END IF;
    IF NOT grew THEN
        RETURN NULL;
    END IF;
    -- The invoice row is locked first: two claims added at once are counted one after the other.
    SELECT total_minor INTO total FROM invoices WHERE id = NEW.invoice_id FOR UPDATE;
    SELECT coalesce(sum(amount_minor + discount_minor), 0) INTO claimed
        FROM allocations WHERE invoice_id = NEW.invoice_id AND state IN ('reserved', 'applied');
    claimed := claimed + (SELECT coalesce(sum(amount_minor), 0) FROM external_payment_lines
                          WHERE invoice_id = NEW.invoice_id);
    IF claimed > total THEN
        RAISE EXCEPTION 'invoice % would be claimed % of its total %', NEW.invoice_id, claimed, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'invoice_claims_within_total';
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER invoice_claims_within_total AFTER INSERT OR UPDATE OF state, amount_minor, discount_minor"
        " ON allocations FOR EACH ROW EXECUTE FUNCTION remit_invoice_claims_within_total()"
    )
    op.execute(
        "CREATE TRIGGER invoice_claims_within_total AFTER INSERT OR UPDATE OF amount_minor"
        " ON external_payment_lines FOR EACH ROW EXECUTE FUNCTION remit_invoice_claims_within_total()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER invoice_claims_within_total ON external_payment_lines")
    op.execute("DROP TRIGGER invoice_claims_within_total ON allocations")
    op.execute("DROP FUNCTION remit_invoice_claims_within_total()")
