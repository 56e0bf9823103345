"""The seller's ledger feed: which change is which event, how a delivery is signed, when it is retried.

Pure: the flows decide nothing of this themselves (tests/tasks/domain/test_feed.py holds the tables).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from tasks.domain.states import AllocationState as A
from tasks.domain.states import CreditState as C
from tasks.domain.states import MethodStatus as M
from tasks.domain.states import PaymentStatus as P

# The header every delivery carries, as Stripe's Stripe-Signature: "t=<unix seconds>,v1=<hex>[,v1=<hex>]".
SIGNATURE_HEADER = "Remit-Signature"
# A receiver refuses a signature older than this: a captured delivery cannot be replayed later.
SIGNATURE_TOLERANCE_S = 300

# Moves no reader of the ledger needs: the attempt's key being recorded, the clock sending a due payment.
_INTERNAL_TARGETS = frozenset({P.SUBMITTING, P.PENDING})
# Where a target's own name would mislead the ERP.
_PAYMENT_RENAMED = {
    (P.SUCCEEDED, P.PARTIALLY_REFUNDED): "payment.refunded",
    (P.PARTIALLY_REFUNDED, P.PARTIALLY_REFUNDED): "payment.refunded",
    (P.PARTIALLY_REFUNDED, P.REFUNDED): "payment.refunded",
}
# A dispute closed (Stripe's final statuses); a won dispute may also move the payment back to succeeded.
DISPUTE_CLOSED = {"won": "dispute.won", "lost": "dispute.lost"}
# The credit a payment would have left, never available, is no fact for the ERP when it goes.
_CREDIT_EVENTS = {
    (C.PENDING, C.AVAILABLE): "credit.created",
    (C.AVAILABLE, C.APPLIED): "credit.applied",
    (C.AVAILABLE, C.REVERSED): "credit.reversed",
    (C.APPLIED, C.REVERSED): "credit.reversed",
}
# Credit one payment spends on another's invoices: reserved while that payment is in flight, applied
# when it succeeds (given back to available, it never left the account: no event).
_SPENT_CREDIT_EVENTS = {(C.RESERVED, C.APPLIED): "credit.applied"}
_METHOD_EVENTS = {
    M.ACTIVE: "payment_method.verified",
    M.VERIFICATION_FAILED: "payment_method.verification_failed",
    M.REMOVED: "payment_method.removed",
}
PAYMENT_ACCEPTED = "payment.accepted"
METHOD_ADDED = "payment_method.added"
EXTERNAL_PAYMENT_RECORDED = "external_payment.recorded"


def payment_event(source: str, target: str) -> str | None:
    """The event type of a payment's applied transition, or None for an internal move."""
    source, target = P(source), P(target)
    renamed = _PAYMENT_RENAMED.get((source, target))
    if renamed is not None:
        return renamed
    return None if target in _INTERNAL_TARGETS else f"payment.{target.value}"


def allocation_event(source: str, target: str) -> str | None:
    """allocation.applied / .released / .reversed for an invoice's slice of a payment; None for no move."""
    return None if A(source) == A(target) else f"allocation.{A(target).value}"


def credit_event(source: str, target: str) -> str | None:
    """The event of a credit's move, or None when the ERP never saw that credit exist."""
    return _CREDIT_EVENTS.get((C(source), C(target)))


def spent_credit_event(source: str, target: str) -> str | None:
    """credit.applied when a payment that spent credit succeeds; None for any other move of spent credit."""
    return _SPENT_CREDIT_EVENTS.get((C(source), C(target)))


def method_event(before: str | None, after: str) -> str | None:
    """payment_method.added for a new method; verified / verification_failed / removed on a status change."""
    if before is None:
        return METHOD_ADDED
    if M(before) == M(after):
        return None
    return _METHOD_EVENTS.get(M(after))


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    """The Remit-Signature value: the timestamp, then a v1 HMAC-SHA256 per secret (several while rolling)."""
    signed = f"{timestamp}.".encode() + body
    digests = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={timestamp}", *(f"v1={d}" for d in digests)])


def verify_signature(header: str, body: bytes, secrets: list[str], now_s: int) -> bool:
    """True if one v1 of the header is the body's signature under one of the secrets, signed recently."""
    parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for key, value in parts if key == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now_s - int(stamps[0])) > SIGNATURE_TOLERANCE_S:
        return False
    expected = set(signature_header(secrets, int(stamps[0]), body).split(",")[1:])
    return any(hmac.compare_digest(f"v1={value}", e) for key, value in parts if key == "v1" for e in expected)


# Retries back off from a minute, doubling to at most an hour apart, until the first failure is 3 days old:
# an ERP down for a weekend gets everything once it is back, in order.
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=3)


def next_attempt_at(attempts: int, failed_at: datetime) -> datetime:
    """When to try an event again after its attempts-th failed attempt."""
    return failed_at + min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def gives_up(first_failed_at: datetime, now: datetime) -> bool:
    """Whether an event failing since first_failed_at is abandoned (ops can replay it), so later ones flow."""
    return now - first_failed_at >= GIVE_UP_AFTER


def delivered(status_code: int | None) -> bool:
    """A delivery counts once the receiver answered 2xx; anything else (or no answer) is retried."""
    return status_code is not None and 200 <= status_code < 300
