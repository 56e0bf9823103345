"""The account's Stripe customer, created once for every flow that charges or saves a method."""

from __future__ import annotations

from db.queries import accounts as account_rows
from db.session import transaction
from tasks.gateways.stripe import get_gateway


def ensure_customer(account_id: int, email: str, name: str) -> str:
    """Create the account's Stripe customer once; the key makes concurrent creators agree."""
    customer_id = get_gateway().create_customer(
        account_id=account_id, email=email, name=name, idempotency_key=f"remit-customer-{account_id}"
    )
    with transaction() as session:
        return account_rows.update_stripe_customer(session, account_id, customer_id)
