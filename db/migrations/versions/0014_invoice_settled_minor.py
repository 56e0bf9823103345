"""invoices.settled_minor: what settled each invoice, kept by PostgreSQL in the same transaction as the ledger

The money applied to an invoice (applied allocations with their discounts, and the lines of payments the
seller's ERP recorded outside Remit, unless kept as account credit) was summed from the ledger on every
read: a recompute of a 1,000-invoice account probed allocations once per invoice, and sorting 10,000
invoices by what they owe summed every allocation of the account. A trigger on both tables now adds each
row's change to its invoice in the statement that makes it, so the figure can never be read out of step
with the ledger; existing rows are summed once here. The hourly full pass still reads the ledger itself,
so a figure that drifted (triggers disabled by hand) shows up as balance drift.

invoices gets fillfactor 90: the trigger's update of a payment's invoice can then usually stay on its
page (a HOT update, no index entries).

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-06 03:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0009"
branch_labels = None
depends_on = None

# What a row settles: an applied allocation its amount and discount, an outside line not kept as credit its
# amount; any other row nothing. The invoice moves by the difference, once per row changed.
_FUNCTION = """
CREATE FUNCTION remit_keep_invoice_settled() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was bigint := 0;
    now_settles bigint := 0;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        IF TG_TABLE_NAME = 'allocations' THEN
            IF OLD.state = 'applied' THEN
                was := OLD.amount_minor + OLD.discount_minor;
            END IF;
        ELSIF OLD.as_credit IS FALSE THEN
            was := OLD.amount_minor;
        END IF;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        IF TG_TABLE_NAME = 'allocations' THEN
            IF NEW.state = 'applied' THEN
                now_settles := NEW.amount_minor + NEW.discount_minor;
            END IF;
        ELSIF NEW.as_credit IS FALSE THEN
            now_settles := NEW.amount_minor;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.invoice_id <> NEW.invoice_id THEN
        UPDATE invoices SET settled_minor = settled_minor - was WHERE id = OLD.invoice_id AND was <> 0;
        UPDATE invoices SET settled_minor = settled_minor + now_settles
            WHERE id = NEW.invoice_id AND now_settles <> 0;
    ELSIF now_settles <> was THEN
        UPDATE invoices SET settled_minor = settled_minor + now_settles - was
            WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END;
    END IF;
    RETURN NULL;
END
$$
"""
_BACKFILL = """
UPDATE invoices SET settled_minor = s.amount
FROM (
    SELECT invoice_id, SUM(amount) AS amount FROM (
        SELECT invoice_id, amount_minor + discount_minor AS amount FROM allocations WHERE state = 'applied'
        UNION ALL
        SELECT invoice_id, amount_minor FROM external_payment_lines WHERE as_credit IS FALSE
    ) AS pieces GROUP BY invoice_id
) AS s
WHERE invoices.id = s.invoice_id
"""


def upgrade() -> None:
    op.add_column("invoices", sa.Column("settled_minor", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute("ALTER TABLE invoices SET (fillfactor = 90)")
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER keep_invoice_settled AFTER INSERT OR DELETE"
        " OR UPDATE OF state, amount_minor, discount_minor, invoice_id"
        " ON allocations FOR EACH ROW EXECUTE FUNCTION remit_keep_invoice_settled()"
    )
    op.execute(
        "CREATE TRIGGER keep_invoice_settled AFTER INSERT OR DELETE OR UPDATE OF amount_minor, as_credit, invoice_id"
        " ON external_payment_lines FOR EACH ROW EXECUTE FUNCTION remit_keep_invoice_settled()"
    )
    # CREATE TRIGGER holds both tables against writes until this migration commits: the sum counts every
    # row once, and every row written after it goes through the triggers.
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.execute("DROP TRIGGER keep_invoice_settled ON external_payment_lines")
    op.execute("DROP TRIGGER keep_invoice_settled ON allocations")
    op.execute("DROP FUNCTION remit_keep_invoice_settled()")
    op.execute("ALTER TABLE invoices RESET (fillfactor)")
    op.drop_column("invoices", "settled_minor")
