"""`/v1/payment_methods`: test tokens, raw ACH details, attach, detach, update, list."""

import copy
from datetime import UTC, datetime

from .errors import invalid, missing_param, no_such
from .forms import as_int, merge_metadata
from .listing import page
from .tokens import TEST_ROUTING_NUMBER, TOK_TO_PM, bank_behaviour, token_behaviour

_BILLING = {"address": None, "email": None, "name": None, "phone": None}


def build(state, behaviour, billing=None):
    """Store a new payment method whose display data and outcome come from `behaviour`."""
    method = {
        "object": "payment_method",
        "type": behaviour["type"],
        "created": state.now(),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "billing_details": dict(_BILLING, **(billing or {})),
    }
    method[behaviour["type"]] = _display(behaviour, state.now())
    return state.store.add("payment_method", method, behaviour=behaviour)


def _display(behaviour, now):
    if behaviour["type"] == "card":
        # Test cards never expire within a test run; a few years ahead like Stripe's.
        return {
            "brand": behaviour["brand"],
            "last4": behaviour["last4"],
            "exp_month": 12,
            "exp_year": 2034,
            "funding": behaviour["funding"],
            "country": "US",
            "fingerprint": "fp" + behaviour["last4"],
            "networks": {"available": [behaviour["brand"]]},
        }
    return {
        "bank_name": "STRIPE TEST BANK",
        "last4": behaviour["last4"],
        "routing_number": TEST_ROUTING_NUMBER,
        "account_holder_type": behaviour.get("holder", "individual"),
        "account_type": "checking",
        "fingerprint": "fp" + behaviour["account_number"],
        "status_details": None,
    }


def resolve(state, method_id, param="payment_method"):
    """A stored payment method, cloning a test token into a new one as Stripe does."""
    behaviour = token_behaviour(method_id)
    if behaviour is not None:
        return build(state, behaviour)
    method = state.store.objects["payment_method"].get(method_id)
    if method is None:
        raise no_such("PaymentMethod", method_id, param)
    return method


def behaviour_of(state, method):
    """The hidden test behaviour of a stored payment method."""
    return state.store.hidden(method["id"])["behaviour"]


def create(state, call):
    """POST /v1/payment_methods."""
    params = call.params
    kind = params.get("type") or ""
    if kind == "card":
        behaviour = _card_behaviour(params.get("card") or {})
    elif kind == "us_bank_account":
        behaviour = _bank_behaviour(params.get("us_bank_account") or {})
    else:
        raise (missing_param("type") if not kind else invalid(f"Invalid type: {kind}", "type"))
    method = build(state, behaviour, params.get("billing_details"))
    method["metadata"] = merge_metadata({}, params.get("metadata"))
    return method


def _card_behaviour(card):
    token = card.get("token")
    if token not in TOK_TO_PM:
        raise invalid("The emulator only accepts test tokens such as card[token]=tok_visa.", "card[token]")
    return token_behaviour(TOK_TO_PM[token])


def _bank_behaviour(details):
    for name in ("routing_number", "account_number"):
        if not details.get(name):
            raise missing_param(f"us_bank_account[{name}]")
    if details["routing_number"] != TEST_ROUTING_NUMBER:
        raise invalid(
            "Routing number must have 9 digits and be a test routing number.",
            "us_bank_account[routing_number]",
            "routing_number_invalid",
        )
    return dict(
        bank_behaviour(details["account_number"]), holder=details.get("account_holder_type") or "individual"
    )


def retrieve(state, call):
    """GET /v1/payment_methods/{id}."""
    return state.store.get("payment_method", call.args[0])


_UPDATABLE = {"allow_redisplay", "billing_details", "card", "expand", "link", "metadata", "us_bank_account"}
_BILLING_FIELDS = {"address", "email", "name", "phone", "tax_id"}
_ADDRESS_FIELDS = {"city", "country", "line1", "line2", "postal_code", "state"}


def update(state, call):
    """POST /v1/payment_methods/{id}: it must be attached to a customer; a card's expiry is checked."""
    method = state.store.get("payment_method", call.args[0])
    _check_update(method, call.params)
    previous = {}
    if isinstance(call.params.get("billing_details"), dict):
        previous["billing_details"] = copy.deepcopy(method["billing_details"])
        _update_billing(method["billing_details"], call.params["billing_details"])
    if isinstance(call.params.get("card"), dict):
        card = method["card"]
        previous["card"] = {"exp_month": card["exp_month"], "exp_year": card["exp_year"]}
        card.update(_expiry(call.params["card"], card, state.now()))
    if "metadata" in call.params:
        previous["metadata"] = method["metadata"]
        method["metadata"] = merge_metadata(method["metadata"], call.params["metadata"])
    state.emit("payment_method.updated", method, previous)
    return method


def _check_update(method, params):
    unknown = sorted(set(params) - _UPDATABLE)
    if unknown:
        raise invalid(f"Received unknown parameter: {unknown[0]}", unknown[0], "parameter_unknown")
    if not method["customer"]:
        raise invalid(
            "You must save this PaymentMethod to a customer before you can update it.",
            None,
            "payment_method_unexpected_state",
        )
    if "card" in params and method["type"] != "card":
        raise invalid("Received unknown parameter: card", "card", "parameter_unknown")
    details = params.get("billing_details")
    if details is not None and (not isinstance(details, dict) or set(details) - _BILLING_FIELDS):
        raise invalid(
            "Invalid billing_details: must be an object of address, email, name, phone.", "billing_details"
        )
    address = (details or {}).get("address")
    if address not in (None, "") and (not isinstance(address, dict) or set(address) - _ADDRESS_FIELDS):
        raise invalid("Invalid billing_details[address].", "billing_details[address]")


def _update_billing(current, change):
    for field, value in change.items():
        if field == "address" and isinstance(value, dict):
            current["address"] = {**(current.get("address") or dict.fromkeys(_ADDRESS_FIELDS)), **value}
            current["address"] = {k: (v or None) for k, v in current["address"].items()}
        else:
            current[field] = value or None


def _expiry(params, card, now):
    """The new expiry as Stripe checks it: a month 1-12 and a date not already past."""
    unknown = sorted(set(params) - {"exp_month", "exp_year", "networks"})
    if unknown:
        raise invalid(
            f"Received unknown parameter: card[{unknown[0]}]", f"card[{unknown[0]}]", "parameter_unknown"
        )
    month = as_int(params, "exp_month", card["exp_month"])
    year = as_int(params, "exp_year", card["exp_year"])
    if not 1 <= month <= 12:
        raise invalid("Your card's expiration month is invalid.", "card[exp_month]", "invalid_expiry_month")
    today = datetime.fromtimestamp(now, UTC)
    if (year, month) < (today.year, today.month):
        raise invalid("Your card's expiration year is invalid.", "card[exp_year]", "invalid_expiry_year")
    return {"exp_month": month, "exp_year": year}


def attach(state, call):
    """POST /v1/payment_methods/{id}/attach."""
    customer_id = call.params.get("customer")
    if not customer_id:
        raise missing_param("customer")
    state.store.get("customer", customer_id, "customer")
    method = resolve(state, call.args[0], "id")
    if method["customer"] and method["customer"] != customer_id:
        raise invalid(
            "This PaymentMethod was previously used without being attached to a Customer "
            "or was detached from a Customer, and may not be used again.",
            None,
            "payment_method_unexpected_state",
        )
    attach_to(state, method, customer_id)
    return method


def attach_to(state, method, customer_id):
    """Attach once, emitting `payment_method.attached`."""
    if method["customer"] == customer_id:
        return
    method["customer"] = customer_id
    state.emit("payment_method.attached", method)


def detach(state, call):
    """POST /v1/payment_methods/{id}/detach."""
    method = state.store.get("payment_method", call.args[0])
    if not method["customer"]:
        raise invalid(
            "The payment method you provided is not attached to a customer so detachment is impossible.",
            None,
            "payment_method_unexpected_state",
        )
    previous = {"customer": method["customer"]}
    method["customer"] = None
    state.emit("payment_method.detached", method, previous)
    return method


def list_methods(state, call, customer_id=None):
    """GET /v1/payment_methods?customer=... and GET /v1/customers/{id}/payment_methods."""
    customer_id = customer_id or call.params.get("customer")
    if customer_id:
        state.store.get("customer", customer_id, "customer")
    methods = [
        m
        for m in state.store.all("payment_method")
        if (not customer_id or m["customer"] == customer_id)
        and (not call.params.get("type") or m["type"] == call.params["type"])
    ]
    url = f"/v1/customers/{customer_id}/payment_methods" if call.args else "/v1/payment_methods"
    return page(methods, call.params, url, state.store)


def list_for_customer(state, call):
    """GET /v1/customers/{id}/payment_methods."""
    return list_methods(state, call, call.args[0])


def update_card_details(state, method_id, exp_month, exp_year, last4=None):
    """Simulate the card network sending new details (`payment_method.automatically_updated`)."""
    method = state.store.get("payment_method", method_id)
    card = method["card"]
    previous = {
        "card": {"exp_month": card["exp_month"], "exp_year": card["exp_year"], "last4": card["last4"]}
    }
    card.update(exp_month=exp_month, exp_year=exp_year, last4=last4 or card["last4"])
    state.emit("payment_method.automatically_updated", method, previous)
    return method
