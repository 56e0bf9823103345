"""How a Stripe PaymentIntent status maps onto a Remit payment status. Pure rules."""

from __future__ import annotations

from tasks.domain.states import PaymentStatus

# Looked for in both error_code and decline_code: which field carries it on current API versions
# is unconfirmed (STRIPE.md).
AUTHENTICATION_REQUIRED = "authentication_required"

_BY_INTENT_STATUS = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "processing": PaymentStatus.PROCESSING,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "canceled": PaymentStatus.CANCELED,
    # A confirmed intent back in requires_payment_method means the attempt failed.
    "requires_payment_method": PaymentStatus.FAILED,
}


def target_for_intent(
    intent_status: str, error_code: str | None = None, decline_code: str | None = None
) -> PaymentStatus | None:
    """The payment status a confirmed intent's state implies; None when it implies nothing yet."""
    # Only while the intent waits for a method: a canceled or later-paid intent keeps its old error.
    if intent_status == "requires_payment_method" and AUTHENTICATION_REQUIRED in (error_code, decline_code):
        return PaymentStatus.REQUIRES_ACTION
    return _BY_INTENT_STATUS.get(intent_status)


def failure_fields(error_code: str | None, decline_code: str | None, message: str | None) -> tuple[str, str]:
    """The failure code and message stored on a failed payment: the most specific code Stripe gave."""
    code = decline_code if decline_code and decline_code != "generic_decline" else error_code
    return (code or "payment_failed", message or "The payment was not completed.")
