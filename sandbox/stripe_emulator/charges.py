"""Charges behind PaymentIntents, and `/v1/charges` retrieve and list."""

from .listing import expand, expansions, page


def open_charge(state, intent, method, announce=False):
    """Create a pending charge for a confirmation attempt; `announce` emits `charge.pending` (ACH)."""
    charge = {
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": 0,
        "amount_refunded": 0,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "created": state.now(),
        "payment_intent": intent["id"],
        "payment_method": method["id"],
        "livemode": False,
        "payment_method_details": {"type": method["type"], method["type"]: dict(method[method["type"]])},
        "status": "pending",
        "paid": False,
        "captured": False,
        "refunded": False,
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "outcome": None,
        "balance_transaction": None,
        "metadata": dict(intent["metadata"]),
        "description": intent.get("description"),
    }
    state.store.add("charge", charge)
    intent["latest_charge"] = charge["id"]
    if announce:
        state.emit("charge.pending", charge)
    return charge


def succeed(state, charge):
    """Mark the charge paid and emit `charge.succeeded`."""
    previous = {"status": charge["status"]}
    charge.update(
        status="succeeded",
        paid=True,
        captured=True,
        amount_captured=charge["amount"],
        outcome={
            "network_status": "approved_by_network",
            "type": "authorized",
            "seller_message": "Payment complete.",
        },
    )
    state.emit("charge.succeeded", charge, previous)


def fail(state, charge, code, message):
    """Mark the charge failed and emit `charge.failed`."""
    previous = {"status": charge["status"]}
    charge.update(
        status="failed",
        failure_code=code,
        failure_message=message,
        outcome={
            "network_status": "declined_by_network",
            "type": "issuer_declined",
            "seller_message": message,
        },
    )
    state.emit("charge.failed", charge, previous)


def retrieve(state, call):
    """GET /v1/charges/{id}."""
    charge = state.store.get("charge", call.args[0])
    return expand(charge, expansions(call.params), state.store)


def list_charges(state, call):
    """GET /v1/charges with `customer` and `payment_intent` filters."""
    charges = [
        c
        for c in state.store.all("charge")
        if all(not call.params.get(k) or c[k] == call.params[k] for k in ("customer", "payment_intent"))
    ]
    return page(charges, call.params, "/v1/charges", state.store)
