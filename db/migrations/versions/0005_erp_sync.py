"""ERP sync: external ids and versions on accounts and invoices; external payments and their lines

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BOTH = "(external_id IS NULL) = (version IS NULL)"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("external_id", sa.String(64), nullable=True))
    op.add_column("accounts", sa.Column("version", sa.BigInteger(), nullable=True))
    op.create_unique_constraint(
        op.f("uq_accounts_seller_external_id"), "accounts", ["seller_id", "external_id"]
    )
    op.create_check_constraint(op.f("ck_accounts_external_has_version"), "accounts", _BOTH)
    op.add_column("invoices", sa.Column("seller_id", sa.Integer(), nullable=True))
    op.add_column("invoices", sa.Column("external_id", sa.String(64), nullable=True))
    op.add_column("invoices", sa.Column("version", sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f("fk_invoices_seller_id_sellers"), "invoices", "sellers", ["seller_id"], ["id"])
    op.create_unique_constraint(
        op.f("uq_invoices_seller_external_id"), "invoices", ["seller_id", "external_id"]
    )
    op.create_check_constraint(
        op.f("ck_invoices_external_has_version"),
        "invoices",
        f"{_BOTH} AND (external_id IS NULL) = (seller_id IS NULL)",
    )
    op.create_table(
        "external_payments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seller_id", sa.Integer(), sa.ForeignKey("sellers.id"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("reference", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("seller_id", "reference", name=op.f("uq_external_payments_seller_reference")),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_external_payments_amount_positive")),
        sa.CheckConstraint("currency ~ '^[a-z]{3}$'", name=op.f("ck_external_payments_currency_code")),
        sa.CheckConstraint(
            "kind IN ('check', 'cash', 'wire', 'credit_memo', 'write_off')",
            name=op.f("ck_external_payments_kind_known"),
        ),
    )
    op.create_index(op.f("ix_external_payments_account_id"), "external_payments", ["account_id"])
    op.create_table(
        "external_payment_lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("external_payment_id", sa.Integer(), sa.ForeignKey("external_payments.id"), nullable=False),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint(
            "external_payment_id", "invoice_id", name=op.f("uq_external_payment_lines_payment_invoice")
        ),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_external_payment_lines_amount_positive")),
    )
    op.create_index(op.f("ix_external_payment_lines_invoice_id"), "external_payment_lines", ["invoice_id"])


def downgrade() -> None:
    op.drop_table("external_payment_lines")
    op.drop_table("external_payments")
    op.drop_constraint(op.f("ck_invoices_external_has_version"), "invoices")
    op.drop_constraint(op.f("uq_invoices_seller_external_id"), "invoices")
    op.drop_constraint(op.f("fk_invoices_seller_id_sellers"), "invoices")
    for column in ("version", "external_id", "seller_id"):
        op.drop_column("invoices", column)
    op.drop_constraint(op.f("ck_accounts_external_has_version"), "accounts")
    op.drop_constraint(op.f("uq_accounts_seller_external_id"), "accounts")
    op.drop_column("accounts", "version")
    op.drop_column("accounts", "external_id")
