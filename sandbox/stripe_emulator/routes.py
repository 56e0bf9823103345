"""The `/v1` route table: method and path pattern to handler."""

import re

from . import (
    charges,
    customers,
    disputes,
    events,
    mandates,
    payment_intents,
    payment_methods,
    refunds,
    search,
    setup_intents,
)
from .errors import invalid

_ID = r"([A-Za-z0-9_]+)"

_TABLE = [
    ("POST", "/v1/customers", customers.create),
    ("GET", "/v1/customers", customers.list_customers),
    ("GET", f"/v1/customers/{_ID}/payment_methods", payment_methods.list_for_customer),
    ("GET", f"/v1/customers/{_ID}", customers.retrieve),
    ("POST", f"/v1/customers/{_ID}", customers.update),
    ("DELETE", f"/v1/customers/{_ID}", customers.delete),
    ("POST", "/v1/payment_methods", payment_methods.create),
    ("GET", "/v1/payment_methods", payment_methods.list_methods),
    ("POST", f"/v1/payment_methods/{_ID}/attach", payment_methods.attach),
    ("POST", f"/v1/payment_methods/{_ID}/detach", payment_methods.detach),
    ("GET", f"/v1/payment_methods/{_ID}", payment_methods.retrieve),
    ("POST", f"/v1/payment_methods/{_ID}", payment_methods.update),
    ("POST", "/v1/setup_intents", setup_intents.create),
    ("GET", "/v1/setup_intents", setup_intents.list_intents),
    ("POST", f"/v1/setup_intents/{_ID}/confirm", setup_intents.confirm),
    ("POST", f"/v1/setup_intents/{_ID}/cancel", setup_intents.cancel),
    ("POST", f"/v1/setup_intents/{_ID}/verify_microdeposits", setup_intents.verify_microdeposits),
    ("GET", f"/v1/setup_intents/{_ID}", setup_intents.retrieve),
    ("POST", "/v1/payment_intents", payment_intents.create),
    ("GET", "/v1/payment_intents", payment_intents.list_intents),
    ("GET", "/v1/payment_intents/search", search.search_intents),
    ("POST", f"/v1/payment_intents/{_ID}/confirm", payment_intents.confirm),
    ("POST", f"/v1/payment_intents/{_ID}/cancel", payment_intents.cancel),
    ("POST", f"/v1/payment_intents/{_ID}/verify_microdeposits", payment_intents.verify_microdeposits),
    ("GET", f"/v1/payment_intents/{_ID}", payment_intents.retrieve),
    ("POST", f"/v1/payment_intents/{_ID}", payment_intents.update),
    ("GET", "/v1/charges", charges.list_charges),
    ("GET", f"/v1/charges/{_ID}", charges.retrieve),
    ("POST", "/v1/refunds", refunds.create),
    ("GET", "/v1/refunds", refunds.list_refunds),
    ("GET", f"/v1/refunds/{_ID}", refunds.retrieve),
    ("GET", "/v1/disputes", disputes.list_disputes),
    ("POST", f"/v1/disputes/{_ID}/close", disputes.accept),
    ("GET", f"/v1/disputes/{_ID}", disputes.retrieve),
    ("POST", f"/v1/disputes/{_ID}", disputes.update),
    ("GET", "/v1/events", events.list_events),
    ("GET", f"/v1/events/{_ID}", events.retrieve),
    ("GET", f"/v1/mandates/{_ID}", mandates.retrieve),
]
_COMPILED = [(method, re.compile(f"^{pattern}$"), handler) for method, pattern, handler in _TABLE]


_ENDPOINTS = [
    (method, re.compile(f"^{pattern}$"), pattern.replace(_ID, "{id}")) for method, pattern, _ in _TABLE
]


def endpoint(method, path):
    """Stripe's name for the operation a request calls ("GET /v1/payment_intents/{id}"), or None."""
    for route_method, pattern, name in _ENDPOINTS:
        if route_method == method and pattern.match(path):
            return f"{method} {name}"
    return None


def route(method, path):
    """(handler, path arguments) for a request, or Stripe's 404 for an unknown URL."""
    for route_method, pattern, handler in _COMPILED:
        match = pattern.match(path)
        if match and route_method == method:
            return handler, match.groups()
    raise invalid(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        status=404,
    )
