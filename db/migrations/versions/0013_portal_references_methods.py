"""Customer-facing payment references, per-seller email senders, one-time and edited payment methods

sellers: reference_prefix, last_payment_number (the per-seller counter), email_from_name, email_from_address.
payments: seller_id and reference (unique per seller; existing payments numbered in id order),
saves_method (the PaymentIntent saves its method for off-session use).
payment_methods: saved (false: used once, never listed), nickname, billing_details, update_version.
invoices: (account_id, due_on, id), the invoice list's keyset pages in its default order.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sellers", sa.Column("reference_prefix", sa.String(12)))
    op.add_column(
        "sellers", sa.Column("last_payment_number", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("sellers", sa.Column("email_from_name", sa.String(200)))
    op.add_column("sellers", sa.Column("email_from_address", sa.String(320)))
    op.create_check_constraint(
        op.f("ck_sellers_reference_prefix_format"),
        "sellers",
        "reference_prefix IS NULL OR reference_prefix ~ '^[A-Z0-9]{1,12}$'",
    )
    op.add_column(
        "payments",
        sa.Column(
            "seller_id", sa.Integer(), sa.ForeignKey("sellers.id", name="fk_payments_seller_id_sellers")
        ),
    )
    op.add_column("payments", sa.Column("reference", sa.String(32)))
    op.add_column(
        "payments", sa.Column("saves_method", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute(
        """
        WITH numbered AS (
            SELECT p.id, a.seller_id, row_number() OVER (PARTITION BY a.seller_id ORDER BY p.id) AS n
            FROM payments p JOIN accounts a ON a.id = p.account_id
        )
        UPDATE payments SET seller_id = numbered.seller_id,
            reference = upper(left(regexp_replace(s.slug, '[^a-zA-Z0-9]', '', 'g'), 8)) || '-' || numbered.n
        FROM numbered JOIN sellers s ON s.id = numbered.seller_id
        WHERE payments.id = numbered.id
        """
    )
    op.execute(
        "UPDATE sellers SET last_payment_number = counted.n FROM (SELECT a.seller_id, count(*) AS n"
        " FROM payments p JOIN accounts a ON a.id = p.account_id GROUP BY a.seller_id) AS counted"
        " WHERE sellers.id = counted.seller_id"
    )
    op.create_unique_constraint("uq_payments_seller_reference", "payments", ["seller_id", "reference"])
    op.add_column(
        "payment_methods", sa.Column("saved", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("payment_methods", sa.Column("nickname", sa.String(60)))
    op.add_column("payment_methods", sa.Column("billing_details", JSONB))
    op.add_column(
        "payment_methods", sa.Column("update_version", sa.Integer(), nullable=False, server_default="0")
    )
    op.create_index("ix_invoices_account_due", "invoices", ["account_id", "due_on", "id"])


def downgrade() -> None:
    op.drop_index("ix_invoices_account_due", table_name="invoices")
    for column in ("update_version", "billing_details", "nickname", "saved"):
        op.drop_column("payment_methods", column)
    op.drop_constraint("uq_payments_seller_reference", "payments", type_="unique")
    for column in ("saves_method", "reference", "seller_id"):
        op.drop_column("payments", column)
    op.drop_constraint(op.f("ck_sellers_reference_prefix_format"), "sellers", type_="check")
    for column in ("email_from_address", "email_from_name", "last_payment_number", "reference_prefix"):
        op.drop_column("sellers", column)
