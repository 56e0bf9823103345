"""`/v1/payment_intents`: create, confirm, cancel, update, retrieve, list, verify_microdeposits."""

import copy
import re

from . import confirmation, mandates, microdeposits
from .errors import StripeError, invalid, missing_param, no_such, unexpected_state
from .forms import as_bool, as_int, as_list, merge_metadata
from .listing import expand, expansions, page
from .payment_methods import behaviour_of, resolve
from .tokens import token_behaviour

_CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
_CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action", "requires_capture")
_CURRENCY = re.compile(r"^[a-z]{3}$")
_CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
# Everything Stripe's cancel endpoint takes; it refuses any other parameter.
_CANCEL_PARAMS = ("cancellation_reason", "expand")


_FUTURE_USAGES = ("off_session", "on_session")


def create(state, call):
    """POST /v1/payment_intents."""
    params = call.params
    amount, currency = _check_amount(params), _check_currency(params)
    customer = params.get("customer") or None
    if customer:
        state.store.get("customer", customer, "customer")
    confirm, off_session = _check_confirm_flags(params)
    _check_future_usage(params)
    method_type = _check_method(state, params.get("payment_method"), customer)
    types = as_list(params, "payment_method_types") or [method_type or "card"]
    _check_type_allowed(method_type, types)
    if confirm:
        _check_confirmable(state, params, method_type)
    intent = _new_intent(state, params, amount, currency, customer, types)
    state.emit("payment_intent.created", intent)
    if confirm:
        _run(state, intent, params, off_session)
    return _shown(state, intent, params)


def _check_amount(params):
    amount = as_int(params, "amount", required=True)
    if amount < 1:
        raise invalid("This value must be greater than or equal to 1.", "amount", "parameter_invalid_integer")
    return amount


def _check_currency(params):
    currency = (params.get("currency") or "").lower()
    if not currency:
        raise missing_param("currency")
    if not _CURRENCY.match(currency):
        raise invalid(f"Invalid currency: {currency}.", "currency", "parameter_invalid_string")
    return currency


def _check_confirm_flags(params):
    confirm, off_session = as_bool(params, "confirm"), as_bool(params, "off_session")
    if off_session and not confirm and "off_session" in params:
        raise invalid("off_session can only be used when confirm is true.", "off_session")
    return confirm, off_session


def _check_future_usage(params):
    usage = params.get("setup_future_usage")
    if usage not in (None, "", *_FUTURE_USAGES):
        raise invalid(
            f"Invalid setup_future_usage: must be one of {', '.join(_FUTURE_USAGES)}",
            "setup_future_usage",
            "parameter_invalid_string",
        )


def _check_method(state, method_id, customer, param="payment_method"):
    """The type of the payment method named, validating it without creating anything."""
    if not method_id:
        return None
    behaviour = token_behaviour(method_id)
    if behaviour:
        return behaviour["type"]
    method = state.store.objects["payment_method"].get(method_id)
    if method is None:
        raise no_such("PaymentMethod", method_id, param)
    if customer and method["customer"] and method["customer"] != customer:
        raise invalid(
            f"The provided PaymentMethod belongs to another customer ({method['customer']}).",
            param,
            "payment_method_unexpected_state",
        )
    return method["type"]


def _check_type_allowed(method_type, types):
    if method_type and method_type not in types:
        raise invalid(
            f"The PaymentMethod provided ({method_type}) is not allowed for this PaymentIntent. "
            f"Allowed types: {', '.join(types)}.",
            "payment_method",
            "payment_intent_incompatible_payment_method",
        )


def _check_confirmable(state, params, method_type):
    if not method_type:
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
            "payment_method",
            "payment_intent_unexpected_state",
        )
    if method_type == "us_bank_account":
        method_id = params["payment_method"]
        method = None if token_behaviour(method_id) else state.store.get("payment_method", method_id)
        mandates.check(state, method, params.get("mandate_data"))


def _new_intent(state, params, amount, currency, customer, types):
    intent = {
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "currency": currency,
        "customer": customer,
        "description": params.get("description") or None,
        "metadata": merge_metadata({}, params.get("metadata")),
        "payment_method": None,
        "payment_method_types": types,
        "payment_method_options": params.get("payment_method_options") or {},
        "status": "requires_payment_method",
        "created": state.now(),
        "livemode": False,
        "latest_charge": None,
        "last_payment_error": None,
        "next_action": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "setup_future_usage": params.get("setup_future_usage") or None,
        "mandate": None,
        "receipt_email": params.get("receipt_email") or None,
        "processing": None,
        "statement_descriptor": params.get("statement_descriptor") or None,
        "on_behalf_of": None,
    }
    state.store.add("payment_intent", intent)
    intent["client_secret"] = intent["id"] + "_secret_emulator"
    if params.get("payment_method"):
        intent["payment_method"] = resolve(state, params["payment_method"])["id"]
        intent["status"] = "requires_confirmation"
    return intent


def _run(state, intent, params, off_session):
    method = state.store.get("payment_method", intent["payment_method"])
    confirmation.confirm(state, intent, method, off_session, params.get("mandate_data"))


def _shown(state, intent, params):
    return expand(intent, expansions(params), state.store)


def retrieve(state, call):
    """GET /v1/payment_intents/{id}; with a publishable key, only with the intent's client_secret."""
    intent = state.store.get("payment_intent", call.args[0])
    check_client_secret(intent, call)
    return _shown(state, intent, call.params)


def check_client_secret(intent, call):
    """Stripe.js proves it acts for the intent's customer with the client secret; a secret key needs none."""
    secret = call.params.get("client_secret")
    if secret is None and not call.publishable:
        return
    if not secret:
        raise missing_param("client_secret")
    if secret != intent["client_secret"]:
        raise invalid(
            "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
            "client_secret",
            "payment_intent_invalid_parameter",
        )


def update(state, call):
    """POST /v1/payment_intents/{id}: metadata, description, amount before confirmation."""
    intent = state.store.get("payment_intent", call.args[0])
    previous = {}
    if "metadata" in call.params:
        previous["metadata"] = intent["metadata"]
        intent["metadata"] = merge_metadata(intent["metadata"], call.params["metadata"])
    if "description" in call.params:
        previous["description"] = intent["description"]
        intent["description"] = call.params["description"] or None
    if "amount" in call.params:
        if intent["status"] not in _CONFIRMABLE:
            raise unexpected_state("The amount can only be changed before the PaymentIntent is confirmed.")
        previous["amount"] = intent["amount"]
        intent["amount"] = _check_amount(call.params)
    return _shown(state, intent, call.params)


def confirm(state, call):
    """POST /v1/payment_intents/{id}/confirm."""
    intent = state.store.get("payment_intent", call.args[0])
    params = call.params
    check_client_secret(intent, call)
    if intent["status"] not in _CONFIRMABLE:
        raise unexpected_state(
            f"This PaymentIntent's status is {intent['status']}, but it must be one of "
            f"{', '.join(_CONFIRMABLE)} to be confirmed.",
            payment_intent=copy.deepcopy(intent),
        )
    method_id = params.get("payment_method") or intent["payment_method"]
    method_type = _check_method(state, method_id, intent["customer"])
    _check_type_allowed(method_type, intent["payment_method_types"])
    _check_confirmable(state, dict(params, payment_method=method_id), method_type)
    if params.get("payment_method"):
        intent["payment_method"] = resolve(state, method_id)["id"]
    _run(state, intent, params, as_bool(params, "off_session"))
    return _shown(state, intent, params)


def cancel(state, call):
    """POST /v1/payment_intents/{id}/cancel."""
    intent = state.store.get("payment_intent", call.args[0])
    unknown = sorted(set(call.params) - set(_CANCEL_PARAMS))
    if unknown:
        raise invalid(f"Received unknown parameter: {unknown[0]}", unknown[0], "parameter_unknown")
    reason = call.params.get("cancellation_reason") or None
    if reason is not None and reason not in _CANCELLATION_REASONS:
        raise invalid(
            f"Invalid cancellation_reason: must be one of {', '.join(_CANCELLATION_REASONS)}",
            "cancellation_reason",
            "parameter_invalid_string",
        )
    if intent["status"] not in _CANCELABLE:
        raise unexpected_state(
            f"You cannot cancel this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following "
            f"statuses may be canceled: {', '.join(_CANCELABLE)}.",
            payment_intent=copy.deepcopy(intent),
        )
    previous = {"status": intent["status"]}
    intent.update(
        status="canceled",
        canceled_at=state.now(),
        next_action=None,
        cancellation_reason=reason,
    )
    state.store.timers.pop(intent["id"], None)
    state.emit("payment_intent.canceled", intent, previous)
    return _shown(state, intent, call.params)


def list_intents(state, call):
    """GET /v1/payment_intents with `customer` and `created` filters."""
    customer = call.params.get("customer")
    intents = [i for i in state.store.all("payment_intent") if not customer or i["customer"] == customer]
    return page(intents, call.params, "/v1/payment_intents", state.store)


def verify_microdeposits(state, call):
    """POST /v1/payment_intents/{id}/verify_microdeposits."""
    intent = state.store.get("payment_intent", call.args[0])
    kind, value = microdeposits.check(intent, call.params, "payment_intent_unexpected_state")
    verdict = microdeposits.judge(state, intent, kind, value)
    method = state.store.get("payment_method", intent["payment_method"])
    if verdict == "verified":
        behaviour_of(state, method)["verified"] = True
        state.store.timers.pop(intent["id"], None)
        confirmation.start_processing(state, intent, method)
        return _shown(state, intent, call.params)
    code, message, fails = verdict
    if fails:
        state.store.timers.pop(intent["id"], None)
        confirmation.fail(state, intent, {"type": "invalid_request_error", "code": code, "message": message})
    raise StripeError(
        400, "invalid_request_error", message, code=code, stored=True, payment_intent=copy.deepcopy(intent)
    )
