"""Card authentication (3-D Secure): how long a payment may wait for its customer, and what the web tier
must do to finish it. Pure rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tasks.domain.intents import AUTHENTICATION_REQUIRED

# The failure code a payment canceled at the end of its window carries (its readable text is in
# tasks.domain.payment_view).
WINDOW_EXPIRED = "authentication_window_expired"
# The next step when Stripe declined an off-session charge for authentication: the intent waits with no
# next_action, and Stripe.js confirms it again on-session with the saved method (confirmCardPayment).
CONFIRM_ON_SESSION = "confirm_on_session"


@dataclass(frozen=True)
class Windows:
    """Hours a payment may wait for authentication: at the portal (on-session) and for a scheduled charge."""

    on_session_hours: int
    off_session_hours: int


def window_for(seller_on: int | None, seller_off: int | None, default: Windows) -> Windows:
    """The seller's own windows where it set them, else the deployment's."""
    return Windows(seller_on or default.on_session_hours, seller_off or default.off_session_hours)


def deadline(waiting_since: datetime, off_session: bool, windows: Windows) -> datetime:
    """When a payment waiting since then is canceled unless the customer finished it."""
    hours = windows.off_session_hours if off_session else windows.on_session_hours
    return waiting_since + timedelta(hours=hours)


def next_step(intent_status: str, next_action: str | None, error_code: str | None) -> str | None:
    """What the web tier does with the client secret: Stripe's next_action type (use_stripe_sdk,
    redirect_to_url, ...), CONFIRM_ON_SESSION after an off-session decline for authentication, or None when
    the intent waits for nothing the customer can do."""
    if intent_status == "requires_action":
        return next_action
    if intent_status == "requires_payment_method" and error_code == AUTHENTICATION_REQUIRED:
        return CONFIRM_ON_SESSION
    return None


def portal_link(template: str | None, payment_id: int) -> str | None:
    """The portal page finishing this payment, from a template holding {payment_id}."""
    return template.replace("{payment_id}", str(payment_id)) if template else None


def cancel_key(payment_id: int, intent_id: str) -> str:
    """The Stripe idempotency key canceling this payment's intent, derived from our row: one cancel per
    intent, however often the customer, the window's job or a retry asks."""
    return f"remit-payment-{payment_id}-cancel-{intent_id}"
