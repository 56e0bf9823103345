"""Per-seller card authentication window and portal payment page

A payment waiting for the customer's 3-D Secure step is canceled past its seller's window (NULL: the
deployment's default, workers/settings.py); the "confirm your payment" email links to the seller's portal
page for the payment.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sellers", sa.Column("auth_window_on_session_hours", sa.Integer(), nullable=True))
    op.add_column("sellers", sa.Column("auth_window_off_session_hours", sa.Integer(), nullable=True))
    op.add_column("sellers", sa.Column("portal_payment_url", sa.Text(), nullable=True))
    op.create_check_constraint(
        "ck_sellers_auth_window_range",
        "sellers",
        "auth_window_on_session_hours BETWEEN 1 AND 168 AND auth_window_off_session_hours BETWEEN 1 AND 168",
    )
    op.create_check_constraint(
        "ck_sellers_portal_payment_url_shape",
        "sellers",
        "portal_payment_url ~ '^https?://' AND position('{payment_id}' in portal_payment_url) > 0",
    )


def downgrade() -> None:
    op.drop_constraint("ck_sellers_portal_payment_url_shape", "sellers", type_="check")
    op.drop_constraint("ck_sellers_auth_window_range", "sellers", type_="check")
    op.drop_column("sellers", "portal_payment_url")
    op.drop_column("sellers", "auth_window_off_session_hours")
    op.drop_column("sellers", "auth_window_on_session_hours")
