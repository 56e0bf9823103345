"""What confirming a PaymentIntent does for each test payment method: the PaymentIntent state machine."""

import copy

from . import charges, disputes, mandates, microdeposits
from .errors import StripeError, unexpected_state
from .payment_methods import attach_to, behaviour_of

_AUTH_MESSAGE = "Your card was declined. This transaction requires authentication."


def confirm(state, intent, method, off_session, mandate_data):
    """Run one confirmation attempt; raises a stored 402 for declines."""
    intent.update(payment_method=method["id"], last_payment_error=None, next_action=None)
    if method["type"] == "card":
        _confirm_card(state, intent, method, off_session)
    else:
        _confirm_bank(state, intent, method, mandate_data)


def _confirm_card(state, intent, method, off_session):
    behaviour = behaviour_of(state, method)
    outcome = behaviour["outcome"]
    # Stripe's 3155 card only skips authentication off-session once a SetupIntent set it up.
    unset = outcome == "auth_on_setup" and not behaviour.get("set_up")
    if (outcome == "auth_always" or unset) and off_session:
        _decline(
            state, intent, method, None, ("authentication_required", "authentication_required", _AUTH_MESSAGE)
        )
    elif outcome in ("auth_always", "auth_on_setup", "auth_on_session") and not off_session:
        _require_authentication(state, intent)
    elif outcome in ("decline", "decline_after_attach"):
        charge = charges.open_charge(state, intent, method)
        _decline(
            state,
            intent,
            method,
            charge,
            (behaviour["code"], behaviour["decline_code"], behaviour["message"]),
        )
    else:
        charge = charges.open_charge(state, intent, method)
        succeed(state, intent, charge)


def _require_authentication(state, intent):
    intent["status"] = "requires_action"
    intent["next_action"] = {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "three_d_secure_redirect",
            "source": "src_emulated",
            "stripe_js": f"{state.hooks_url}/3d_secure_2/hosted?payment_intent={intent['id']}",
        },
    }
    state.emit("payment_intent.requires_action", intent)


def authenticate(state, intent, success):
    """Finish the customer's 3D Secure step for an intent in `requires_action`."""
    waiting = intent["status"] == "requires_action"
    if not waiting or (intent.get("next_action") or {}).get("type") != "use_stripe_sdk":
        raise unexpected_state(f"PaymentIntent {intent['id']} is not waiting for authentication.")
    method = state.store.get("payment_method", intent["payment_method"])
    if success:
        succeed(state, intent, charges.open_charge(state, intent, method))
    else:
        fail(
            state,
            intent,
            {
                "type": "invalid_request_error",
                "code": "payment_intent_authentication_failure",
                "message": "The provided PaymentMethod has failed authentication.",
            },
        )


def succeed(state, intent, charge):
    """Settle an intent as paid (cards at once, ACH when the clock says so)."""
    charges.succeed(state, charge)
    method = state.store.get("payment_method", charge["payment_method"])
    if intent["status"] != "processing":  # a processing debit saved its method when it was sent
        save_for_future(state, intent, method)
    previous = {"status": intent["status"]}
    intent.update(status="succeeded", amount_received=intent["amount"], next_action=None, processing=None)
    state.emit("payment_intent.succeeded", intent, previous)
    outcome = behaviour_of(state, method)["outcome"]
    if outcome in ("dispute", "inquiry"):
        bank = charge["payment_method_details"]["type"] == "us_bank_account"
        reason = disputes.ACH_DISPUTE_REASON if bank else "fraudulent"
        disputes.open_dispute(state, charge, reason, "lost" if bank else None, inquiry=outcome == "inquiry")


def save_for_future(state, intent, method):
    """setup_future_usage: once confirmed, Stripe attaches the method to the intent's customer; set up for
    off_session, a card that asks for authentication once needs none off-session afterwards."""
    usage = intent.get("setup_future_usage")
    if not usage or not intent.get("customer"):
        return
    attach_to(state, method, intent["customer"])
    if usage == "off_session":
        behaviour_of(state, method)["set_up"] = True


def fail(state, intent, error, charge=None):
    """Return an intent to `requires_payment_method` with `last_payment_error`."""
    if charge is not None:
        charges.fail(state, charge, error.get("code"), error["message"])
    previous = {"status": intent["status"]}
    intent.update(
        status="requires_payment_method", last_payment_error=error, next_action=None, processing=None
    )
    state.emit("payment_intent.payment_failed", intent, previous)


def _decline(state, intent, method, charge, reason):
    code, decline_code, message = reason
    error = {
        "type": "card_error",
        "code": code,
        "decline_code": decline_code,
        "message": message,
        "payment_method": copy.deepcopy(method),
    }
    if charge is not None:
        error["charge"] = charge["id"]
    fail(state, intent, error, charge)
    extra = {
        "decline_code": decline_code,
        "payment_intent": copy.deepcopy(intent),
        "payment_method": copy.deepcopy(method),
    }
    if charge is not None:
        extra["charge"] = charge["id"]
    raise StripeError(402, "card_error", message, code=code, stored=True, **extra)


def _confirm_bank(state, intent, method, mandate_data):
    intent["mandate"] = mandates.ensure(state, method, mandate_data)
    behaviour = behaviour_of(state, method)
    if not behaviour.get("verified"):
        microdeposits.start(state, intent, method, behaviour)
        state.emit("payment_intent.requires_action", intent)
        return
    start_processing(state, intent, method)


def start_processing(state, intent, method):
    """Send the ACH debit: intent `processing`, charge `pending`, settlement timer set."""
    charges.open_charge(state, intent, method, announce=True)
    save_for_future(state, intent, method)
    previous = {"status": intent["status"]}
    intent.update(status="processing", next_action=None, processing={"type": "us_bank_account"})
    state.emit("payment_intent.processing", intent, previous)
    if behaviour_of(state, method)["outcome"] != "processing":
        state.store.timers[intent["id"]] = state.now() + state.ach_settle_after_seconds


def settle_bank(state, intent):
    """Finish an ACH debit whose settlement time has come."""
    charge = state.store.get("charge", intent["latest_charge"])
    behaviour = behaviour_of(state, state.store.get("payment_method", intent["payment_method"]))
    if behaviour["outcome"] == "fail":
        error = {
            "type": "invalid_request_error",
            "code": behaviour["code"],
            "message": behaviour["message"],
            "payment_method": copy.deepcopy(state.store.get("payment_method", intent["payment_method"])),
        }
        fail(state, intent, error, charge)
    else:
        succeed(state, intent, charge)
