"""Microdeposit verification shared by PaymentIntents and SetupIntents, with Stripe's test values."""

from .errors import invalid, missing_param
from .state import MICRODEPOSIT_ARRIVAL_SECONDS, MICRODEPOSIT_TIMEOUT_SECONDS

# Stripe allows three wrong amount pairs but ten wrong descriptor codes.
ATTEMPTS_ALLOWED = {"amounts": 3, "descriptor_code": 10}
_VERIFY = {(32, 45), "SM11AA"}
_EXCEED = {(10, 11), "SM33CC"}
_TIMEOUT = {(40, 41), "SM44DD"}

ATTEMPTS_EXCEEDED = (
    "payment_method_microdeposit_verification_attempts_exceeded",
    "You have exceeded the number of allowed verification attempts.",
)
TIMED_OUT = (
    "payment_method_microdeposit_verification_timeout",
    "Payment method should be verified with microdeposits within the required period.",
)
FAILED = (
    "payment_method_microdeposit_failed",
    "Microdeposits were failed to be deposited into the customer's bank account.",
)


def start(state, intent, method, behaviour):
    """Put an intent in `requires_action` until the customer confirms the microdeposits."""
    now = state.now()
    intent["status"] = "requires_action"
    intent["next_action"] = {
        "type": "verify_with_microdeposits",
        "verify_with_microdeposits": {
            "arrival_date": now + MICRODEPOSIT_ARRIVAL_SECONDS,
            "microdeposit_type": "amounts",
            "hosted_verification_url": f"https://payments.stripe.com/microdeposit/{intent['id']}",
        },
    }
    state.store.hidden(intent["id"])["microdeposit_attempts"] = {"amounts": 0, "descriptor_code": 0}
    failing = behaviour["outcome"] == "fail_microdeposits"
    due = now + (MICRODEPOSIT_ARRIVAL_SECONDS if failing else MICRODEPOSIT_TIMEOUT_SECONDS)
    state.store.timers[intent["id"]] = due


def expired_failure(behaviour):
    """The error an intent gets when its microdeposit timer runs out."""
    return FAILED if behaviour["outcome"] == "fail_microdeposits" else TIMED_OUT


def check(intent, params, unexpected_code):
    """Validate a verify_microdeposits call; returns ("amounts", (a, b)) or ("descriptor_code", code)."""
    action = intent.get("next_action") or {}
    if intent["status"] != "requires_action" or action.get("type") != "verify_with_microdeposits":
        raise invalid(
            f"This intent's status is {intent['status']}; verify_microdeposits requires "
            "requires_action with verify_with_microdeposits.",
            None,
            unexpected_code,
        )
    amounts, code = params.get("amounts"), params.get("descriptor_code")
    if amounts and code:
        raise invalid("Only one of amounts or descriptor_code may be provided.", "amounts")
    if code:
        return "descriptor_code", code
    if not amounts:
        raise missing_param("amounts")
    if not isinstance(amounts, list) or len(amounts) != 2:
        raise invalid("Exactly two amounts must be provided.", "amounts", "parameter_invalid_integer")
    try:
        return "amounts", tuple(int(a) for a in amounts)
    except ValueError:
        raise invalid("Invalid integer in amounts.", "amounts", "parameter_invalid_integer") from None


def judge(state, intent, kind, value):
    """Verdict for a checked attempt: "verified", or an (error code, message, fails intent) triple."""
    if value in _VERIFY:
        return "verified"
    if value in _EXCEED:
        return ATTEMPTS_EXCEEDED + (True,)
    if value in _TIMEOUT:
        return TIMED_OUT + (True,)
    attempts = state.store.hidden(intent["id"])["microdeposit_attempts"]
    attempts[kind] += 1
    left = ATTEMPTS_ALLOWED[kind] - attempts[kind]
    if left <= 0:
        return ATTEMPTS_EXCEEDED + (True,)
    what = "amounts" if kind == "amounts" else "descriptor code"
    return (
        f"payment_method_microdeposit_verification_{kind}_mismatch",
        f"The {what} provided do not match the microdeposits sent to the bank account. "
        f"You have {left} verification attempts remaining.",
        False,
    )
