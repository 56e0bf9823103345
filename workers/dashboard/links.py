"""Links out of the dashboard."""

from __future__ import annotations


def stripe_link(intent_id: str | None, livemode: bool) -> str | None:
    """The PaymentIntent's page in Stripe's own dashboard, on its live or test side."""
    if not intent_id:
        return None
    return f"https://dashboard.stripe.com/{'' if livemode else 'test/'}payments/{intent_id}"
