"""ACH mandates: required on the first debit of an account, then remembered on the payment method."""

from .errors import invalid


def existing(state, method):
    """The mandate id already on file for a payment method, or None."""
    return state.store.hidden(method["id"]).get("mandate")


def check(state, method, mandate_data):
    """Refuse a bank debit that has neither a mandate on file nor `mandate_data` (None: a fresh token)."""
    if method is not None and (method["type"] != "us_bank_account" or existing(state, method)):
        return
    acceptance = (mandate_data or {}).get("customer_acceptance") if isinstance(mandate_data, dict) else None
    if not acceptance or not acceptance.get("type"):
        raise invalid(
            "A mandate is required for this PaymentMethod. Provide mandate_data with "
            "customer_acceptance, or use a PaymentMethod with an existing mandate.",
            "mandate_data",
            "parameter_missing",
        )


def ensure(state, method, mandate_data):
    """The mandate for a bank payment method, creating it from `mandate_data` the first time."""
    if method["type"] != "us_bank_account":
        return None
    mandate_id = existing(state, method)
    if mandate_id:
        return mandate_id
    acceptance = dict(mandate_data["customer_acceptance"])
    acceptance.setdefault("accepted_at", state.now())
    mandate = {
        "object": "mandate",
        "customer_acceptance": acceptance,
        "livemode": False,
        "payment_method": method["id"],
        "status": "active",
        "type": "multi_use",
        "multi_use": {},
        "payment_method_details": {"type": "us_bank_account", "us_bank_account": {}},
    }
    state.store.add("mandate", mandate)
    state.store.hidden(method["id"])["mandate"] = mandate["id"]
    return mandate["id"]


def revoke(state, method_id):
    """Mark a payment method's mandate inactive, as when the customer revokes it at the bank."""
    method = state.store.get("payment_method", method_id)
    mandate = state.store.get("mandate", existing(state, method))
    previous = {"status": mandate["status"]}
    mandate["status"] = "inactive"
    state.store.hidden(method["id"]).pop("mandate")
    state.emit("mandate.updated", mandate, previous)
    return mandate


def retrieve(state, call):
    """GET /v1/mandates/{id}."""
    return state.store.get("mandate", call.args[0])
