"""Helpers shared by the Stripe emulator tests."""

from tests.helpers import wait_until  # noqa: F401  (re-exported for the emulator tests)

ACH_MANDATE = {
    "customer_acceptance": {
        "type": "online",
        "accepted_at": 1700000000,
        "online": {"ip_address": "203.0.113.7", "user_agent": "pytest"},
    }
}


def pay(client, method, customer=None, amount=1000, key=None, **extra):
    """Create and confirm a PaymentIntent off-session, as Remit's scheduled payments do."""
    params = {
        "amount": amount,
        "currency": "usd",
        "payment_method": method,
        "confirm": True,
        "off_session": True,
        "metadata": {"payment_id": "42"},
        **extra,
    }
    if customer:
        params["customer"] = customer
    if method.startswith("pm_usBankAccount") or extra.get("payment_method_types") == ["us_bank_account"]:
        params.setdefault("payment_method_types", ["us_bank_account"])
    options = {"idempotency_key": key} if key else {}
    return client.v1.payment_intents.create(params, options=options)
