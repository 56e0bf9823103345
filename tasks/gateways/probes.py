"""Cheap authenticated calls that tell `remit check` whether Stripe takes our key; nothing is written."""

from __future__ import annotations

import stripe

from tasks.gateways.stripe_transport import build_client


class ProbeFailed(Exception):
    """The call did not succeed; the message says what came back."""


def probe_stripe(api_key: str, api_base: str, timeout_s: float) -> str:
    """GET /v1/customers?limit=1 (Remit's key must read customers anyway); the mode Stripe answered for."""
    client = build_client(api_key, api_base, timeout_s, network_retries=0)
    try:
        page = client.v1.customers.list({"limit": 1})
    except stripe.AuthenticationError as refused:
        raise ProbeFailed(f"the key was refused (401): {refused.user_message or refused}") from None
    except stripe.PermissionError as refused:
        raise ProbeFailed(
            f"the key may not read customers (403): {refused.user_message or refused}"
        ) from None
    except stripe.StripeError as failed:
        raise ProbeFailed(f"{type(failed).__name__}: {failed.user_message or failed}") from None
    livemode = page.data[0].livemode if page.data else api_key.startswith(("sk_live_", "rk_live_"))
    return "live mode" if livemode else "test mode"
