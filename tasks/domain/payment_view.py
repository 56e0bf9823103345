"""What a customer is shown of one payment: a failure reason a person can read, and the timeline without
the machinery (attempts, sources, ignored events). Pure rules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks.domain.authentication import WINDOW_EXPIRED
from tasks.domain.states import PaymentStatus as P

# Stripe's codes (and ours) by what the customer can do about them. A lost or stolen card reads as a plain
# decline, as Stripe advises: the reason is for the card holder's bank to give.
_REASONS = {
    "insufficient_funds": "The card or account did not have enough funds.",
    "expired_card": "The card has expired.",
    "incorrect_cvc": "The card's security code was wrong.",
    "processing_error": "The card issuer had a problem processing the payment; try again.",
    "authentication_required": "Your bank asks you to confirm this payment.",
    "payment_intent_authentication_failure": "Your bank could not confirm the payment.",
    WINDOW_EXPIRED: "The payment was not confirmed in time, so it was canceled.",
    "account_closed": "The bank account is closed.",
    "no_account": "The bank account could not be found.",
    "debit_not_authorized": "The bank refused the debit as not authorized.",
    "invoice_voided": "An invoice was voided before the payment was made.",
    "method_unavailable": "The payment method can no longer be used.",
}
_DECLINED = "The card was declined. Use another card or contact your bank."

# One line per status a customer sees; submitting is the same as pending to them.
_STATUS_LINES = {
    P.SCHEDULED: "Payment scheduled",
    P.PENDING: "Payment requested",
    P.REQUIRES_ACTION: "Waiting for you to confirm the payment with your bank",
    P.PROCESSING: "Bank debit started",
    P.SUCCEEDED: "Paid",
    P.FAILED: "Payment failed",
    P.CANCELED: "Payment canceled",
    P.REFUNDED: "Refunded",
    P.PARTIALLY_REFUNDED: "Partly refunded",
    P.DISPUTED: "Payment reversed by a dispute",
}
# The timeline detail key a writer sets for a line the customer should read although no status moved.
CUSTOMER_NOTE = "customer_note"


def readable_failure(code: str | None, message: str | None) -> str | None:
    """The reason a failed or canceled payment did not go through, as a person reads it; None without one."""
    if code is None and message is None:
        return None
    if code in _REASONS:
        return _REASONS[code]
    if code and ("decline" in code or code.endswith("_card")):
        return _DECLINED
    return message or "The payment was not completed."


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    status: str
    text: str


def customer_timeline(events: Iterable[tuple[datetime, str | None, str, bool, dict[str, Any]]]) -> tuple:
    """Lines a customer reads from the timeline rows (at, from, to, applied, detail), oldest first: each
    status they see, when it was reached, and every note written for them."""
    entries: list[TimelineEntry] = []
    for at, before, after, applied, detail in events:
        note = (detail or {}).get(CUSTOMER_NOTE)
        if note:
            entries.append(TimelineEntry(at, after, note))
            continue
        shown = _seen(after)
        # A further partial refund moves partially_refunded to itself; any other unmoved line is machinery.
        if not applied or (before is not None and _seen(before) == shown != P.PARTIALLY_REFUNDED):
            continue
        entries.append(TimelineEntry(at, shown, _STATUS_LINES[shown]))
    return tuple(entries)


def _seen(status: str) -> P:
    """The status as the customer sees it: a call to Stripe under way is still a requested payment."""
    return P.PENDING if status == P.SUBMITTING else P(status)
