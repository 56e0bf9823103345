"""Ledger feed: every money fact as a numbered event per seller; its signed webhook endpoint and deliveries

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0012"
down_revision = "0008"
branch_labels = None
depends_on = None

_NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "ledger_events",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("seller_id", sa.Integer(), sa.ForeignKey("sellers.id"), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.UniqueConstraint("seller_id", "sequence", name=op.f("uq_ledger_events_seller_sequence")),
    )
    op.create_table(
        "ledger_sequences",
        sa.Column("seller_id", sa.Integer(), sa.ForeignKey("sellers.id"), primary_key=True),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "feed_endpoints",
        sa.Column("seller_id", sa.Integer(), sa.ForeignKey("sellers.id"), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secrets", ARRAY(sa.Text()), nullable=False),
        sa.Column("delivered_sequence", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.CheckConstraint(
            "cardinality(secrets) BETWEEN 1 AND 5", name=op.f("ck_feed_endpoints_secrets_count")
        ),
    )
    op.create_table(
        "feed_deliveries",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("seller_id", sa.Integer(), sa.ForeignKey("sellers.id"), nullable=False),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("ledger_events.id"), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("replay", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('succeeded', 'failing', 'abandoned')", name=op.f("ck_feed_deliveries_status_known")
        ),
    )
    op.create_index("ix_feed_deliveries_seller_sequence", "feed_deliveries", ["seller_id", "sequence"])


def downgrade() -> None:
    op.drop_table("feed_deliveries")
    op.drop_table("feed_endpoints")
    op.drop_table("ledger_sequences")
    op.drop_table("ledger_events")
