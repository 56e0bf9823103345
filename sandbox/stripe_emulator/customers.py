"""`/v1/customers`: create, retrieve, update, delete, list."""

from .forms import merge_metadata
from .listing import expand, expansions, page

_FIELDS = ("email", "name", "description", "phone")


def create(state, call):
    """POST /v1/customers."""
    params = call.params
    customer = {
        "object": "customer",
        "created": state.now(),
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata")),
        "invoice_settings": {"default_payment_method": None},
        "balance": 0,
        "currency": None,
        "delinquent": False,
    }
    for name in _FIELDS:
        customer[name] = params.get(name) or None
    _apply_default_method(customer, params)
    state.store.add("customer", customer)
    state.emit("customer.created", customer)
    return customer


def retrieve(state, call):
    """GET /v1/customers/{id}."""
    customer = state.store.get("customer", call.args[0])
    return expand(customer, expansions(call.params), state.store)


def update(state, call):
    """POST /v1/customers/{id}."""
    customer = state.store.get("customer", call.args[0])
    previous = {}
    for name in _FIELDS:
        if name in call.params:
            previous[name] = customer[name]
            customer[name] = call.params[name] or None
    if "metadata" in call.params:
        previous["metadata"] = customer["metadata"]
        customer["metadata"] = merge_metadata(customer["metadata"], call.params["metadata"])
    _apply_default_method(customer, call.params)
    state.emit("customer.updated", customer, previous)
    return customer


def delete(state, call):
    """DELETE /v1/customers/{id}."""
    customer = state.store.get("customer", call.args[0])
    state.store.objects["customer"].pop(customer["id"])
    state.emit("customer.deleted", customer)
    return {"id": customer["id"], "object": "customer", "deleted": True}


def list_customers(state, call):
    """GET /v1/customers with an optional `email` filter."""
    customers = state.store.all("customer")
    if call.params.get("email"):
        customers = [c for c in customers if c["email"] == call.params["email"]]
    return page(customers, call.params, "/v1/customers", state.store)


def _apply_default_method(customer, params):
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        customer["invoice_settings"]["default_payment_method"] = settings["default_payment_method"] or None
