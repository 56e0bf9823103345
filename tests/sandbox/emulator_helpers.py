"""Helpers shared by the Stripe emulator tests."""

import time

ACH_MANDATE = {"customer_acceptance": {"type": "online", "accepted_at": 1700000000,
                                       "online": {"ip_address": "203.0.113.7", "user_agent": "pytest"}}}


def wait_until(predicate, timeout=10.0, interval=0.02):
    """Poll `predicate` until it is truthy or the deadline passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def pay(client, method, customer=None, amount=1000, key=None, **extra):
    """Create and confirm a PaymentIntent off-session, as Remit's scheduled payments do."""
    params = {"amount": amount, "currency": "usd", "payment_method": method, "confirm": True,
              "off_session": True, "metadata": {"payment_id": "42"}, **extra}
    if customer:
        params["customer"] = customer
    if method.startswith("pm_usBankAccount") or extra.get("payment_method_types") == ["us_bank_account"]:
        params.setdefault("payment_method_types", ["us_bank_account"])
    options = {"idempotency_key": key} if key else {}
    return client.v1.payment_intents.create(params, options=options)
