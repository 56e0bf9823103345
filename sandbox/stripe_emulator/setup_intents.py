"""`/v1/setup_intents`: create, confirm, cancel, retrieve, list, verify_microdeposits."""

import copy

from . import mandates, microdeposits
from .errors import StripeError, invalid, no_such, unexpected_state
from .forms import as_bool, as_list, merge_metadata
from .listing import page
from .payment_methods import attach_to, behaviour_of, resolve
from .tokens import token_behaviour

_CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
_CANCELABLE = _CONFIRMABLE + ("requires_action",)
_UNEXPECTED = "setup_intent_unexpected_state"


def create(state, call):
    """POST /v1/setup_intents."""
    params = call.params
    customer = params.get("customer") or None
    if customer:
        state.store.get("customer", customer, "customer")
    method_type = _check_method(state, params.get("payment_method"))
    confirm = as_bool(params, "confirm")
    if confirm:
        _check_confirmable(state, params.get("payment_method"), method_type, params)
    intent = {
        "object": "setup_intent",
        "customer": customer,
        "payment_method": None,
        "payment_method_types": as_list(params, "payment_method_types") or [method_type or "card"],
        "status": "requires_payment_method",
        "usage": params.get("usage") or "off_session",
        "metadata": merge_metadata({}, params.get("metadata")),
        "created": state.now(),
        "livemode": False,
        "last_setup_error": None,
        "next_action": None,
        "mandate": None,
        "cancellation_reason": None,
        "description": params.get("description") or None,
        "payment_method_options": params.get("payment_method_options") or {},
    }
    state.store.add("setup_intent", intent)
    intent["client_secret"] = intent["id"] + "_secret_emulator"
    if params.get("payment_method"):
        intent.update(
            payment_method=resolve(state, params["payment_method"])["id"], status="requires_confirmation"
        )
    state.emit("setup_intent.created", intent)
    if confirm:
        _run(state, intent, params)
    return intent


def _check_method(state, method_id):
    if not method_id:
        return None
    behaviour = token_behaviour(method_id)
    if behaviour:
        return behaviour["type"]
    method = state.store.objects["payment_method"].get(method_id)
    if method is None:
        raise no_such("PaymentMethod", method_id, "payment_method")
    return method["type"]


def _check_confirmable(state, method_id, method_type, params):
    if not method_type:
        raise invalid(
            "You cannot confirm this SetupIntent because it's missing a payment method.",
            "payment_method",
            _UNEXPECTED,
        )
    if method_type == "us_bank_account":
        method = None if token_behaviour(method_id) else state.store.get("payment_method", method_id)
        mandates.check(state, method, params.get("mandate_data"))


def _run(state, intent, params):
    method = state.store.get("payment_method", intent["payment_method"])
    behaviour = behaviour_of(state, method)
    intent.update(last_setup_error=None, next_action=None)
    if method["type"] == "us_bank_account":
        intent["mandate"] = mandates.ensure(state, method, params.get("mandate_data"))
        if not behaviour.get("verified"):
            microdeposits.start(state, intent, method, behaviour)
            state.emit("setup_intent.requires_action", intent)
            return
    elif behaviour["outcome"] == "decline":
        _fail(
            state,
            intent,
            {
                "type": "card_error",
                "code": behaviour["code"],
                "decline_code": behaviour["decline_code"],
                "message": behaviour["message"],
            },
        )
        raise StripeError(
            402,
            "card_error",
            behaviour["message"],
            code=behaviour["code"],
            stored=True,
            decline_code=behaviour["decline_code"],
            setup_intent=copy.deepcopy(intent),
        )
    succeed(state, intent, method)


def succeed(state, intent, method):
    """Finish setup: attach the method to the customer and emit `setup_intent.succeeded`."""
    previous = {"status": intent["status"]}
    intent.update(status="succeeded", next_action=None)
    behaviour_of(state, method)["set_up"] = True
    if intent["customer"]:
        attach_to(state, method, intent["customer"])
    state.emit("setup_intent.succeeded", intent, previous)


def _fail(state, intent, error):
    previous = {"status": intent["status"]}
    intent.update(status="requires_payment_method", last_setup_error=error, next_action=None)
    state.emit("setup_intent.setup_failed", intent, previous)


def fail(state, intent, error):
    """Fail setup (microdeposits failed or timed out)."""
    _fail(state, intent, error)


def retrieve(state, call):
    """GET /v1/setup_intents/{id}."""
    return state.store.get("setup_intent", call.args[0])


def confirm(state, call):
    """POST /v1/setup_intents/{id}/confirm."""
    intent = state.store.get("setup_intent", call.args[0])
    if intent["status"] not in _CONFIRMABLE:
        raise unexpected_state(
            f"This SetupIntent's status is {intent['status']}; it cannot be confirmed.",
            _UNEXPECTED,
            setup_intent=copy.deepcopy(intent),
        )
    method_id = call.params.get("payment_method") or intent["payment_method"]
    _check_confirmable(state, method_id, _check_method(state, method_id), call.params)
    if call.params.get("payment_method"):
        intent["payment_method"] = resolve(state, method_id)["id"]
    _run(state, intent, call.params)
    return intent


def cancel(state, call):
    """POST /v1/setup_intents/{id}/cancel."""
    intent = state.store.get("setup_intent", call.args[0])
    if intent["status"] not in _CANCELABLE:
        raise unexpected_state(
            f"You cannot cancel this SetupIntent because it has a status of {intent['status']}.",
            _UNEXPECTED,
            setup_intent=copy.deepcopy(intent),
        )
    previous = {"status": intent["status"]}
    intent.update(
        status="canceled",
        next_action=None,
        cancellation_reason=call.params.get("cancellation_reason") or None,
    )
    state.store.timers.pop(intent["id"], None)
    state.emit("setup_intent.canceled", intent, previous)
    return intent


def list_intents(state, call):
    """GET /v1/setup_intents with `customer` and `payment_method` filters."""
    intents = [
        i
        for i in state.store.all("setup_intent")
        if all(not call.params.get(k) or i[k] == call.params[k] for k in ("customer", "payment_method"))
    ]
    return page(intents, call.params, "/v1/setup_intents", state.store)


def verify_microdeposits(state, call):
    """POST /v1/setup_intents/{id}/verify_microdeposits."""
    intent = state.store.get("setup_intent", call.args[0])
    kind, value = microdeposits.check(intent, call.params, _UNEXPECTED)
    verdict = microdeposits.judge(state, intent, kind, value)
    method = state.store.get("payment_method", intent["payment_method"])
    if verdict == "verified" or verdict[2]:
        state.store.timers.pop(intent["id"], None)
    if verdict == "verified":
        behaviour_of(state, method)["verified"] = True
        succeed(state, intent, method)
        return intent
    code, message, fails = verdict
    if fails:
        _fail(state, intent, {"type": "invalid_request_error", "code": code, "message": message})
    raise StripeError(
        400, "invalid_request_error", message, code=code, stored=True, setup_intent=copy.deepcopy(intent)
    )
