"""What the passage of emulator time does: ACH settlement, microdeposit timeouts, pending refunds."""

from . import confirmation, microdeposits, refunds, setup_intents
from .payment_methods import behaviour_of


def settle_due(state):
    """Act on every timer that is due; returns how many fired."""
    now = state.now()
    due = sorted((at, object_id) for object_id, at in state.store.timers.items() if at <= now)
    for _, object_id in due:
        state.store.timers.pop(object_id, None)
        _fire(state, state.store.find(object_id))
    return len(due)


def _fire(state, obj):
    if obj is None:
        return
    if obj["object"] == "refund" and obj["status"] == "pending":
        refunds.settle(state, obj)
    elif obj["object"] == "payment_intent" and obj["status"] == "processing":
        confirmation.settle_bank(state, obj)
    elif obj["status"] == "requires_action":
        _expire_microdeposits(state, obj)


def _expire_microdeposits(state, intent):
    method = state.store.get("payment_method", intent["payment_method"])
    code, message = microdeposits.expired_failure(behaviour_of(state, method))
    error = {"type": "invalid_request_error", "code": code, "message": message}
    if intent["object"] == "payment_intent":
        confirmation.fail(state, intent, error)
    else:
        setup_intents.fail(state, intent, error)
