"""States stored in the database, and the payment transition table."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    SCHEDULED = "scheduled"
    PENDING = "pending"
    SUBMITTING = "submitting"
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    DISPUTED = "disputed"


class PaymentKind(StrEnum):
    INVOICES = "invoices"
    AMOUNT = "amount"
    DEPOSIT = "deposit"


class AllocationState(StrEnum):
    RESERVED = "reserved"
    APPLIED = "applied"
    RELEASED = "released"
    REVERSED = "reversed"


class MethodKind(StrEnum):
    CARD = "card"
    US_BANK_ACCOUNT = "us_bank_account"


class MethodStatus(StrEnum):
    ACTIVE = "active"
    VERIFICATION_PENDING = "verification_pending"
    VERIFICATION_FAILED = "verification_failed"
    REMOVED = "removed"


class CreditState(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    APPLIED = "applied"
    REVERSED = "reversed"


class RefundStatus(StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


# A refund's status only moves forwards. A refund in these statuses stays in them: its money never
# left, whatever a late event says.
REFUND_FINAL = (RefundStatus.FAILED, RefundStatus.CANCELED)
# Statuses a refund only passes through: a late event saying one never undoes an outcome (Stripe
# can still fail a refund it reported succeeded, so succeeded is not in REFUND_FINAL).
REFUND_WAITING = (RefundStatus.PENDING, RefundStatus.REQUIRES_ACTION)


class EventStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class EmailStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class FailedJobStatus(StrEnum):
    DEAD = "dead"
    RETRIED = "retried"
    DISCARDED = "discarded"


_P = PaymentStatus
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    _P.SCHEDULED: frozenset({_P.PENDING, _P.CANCELED}),
    _P.PENDING: frozenset({_P.SUBMITTING, _P.FAILED, _P.CANCELED}),
    _P.SUBMITTING: frozenset({_P.SUCCEEDED, _P.PROCESSING, _P.REQUIRES_ACTION, _P.FAILED}),
    _P.PROCESSING: frozenset({_P.SUCCEEDED, _P.FAILED}),
    _P.REQUIRES_ACTION: frozenset({_P.SUCCEEDED, _P.FAILED, _P.CANCELED, _P.PROCESSING}),
    _P.SUCCEEDED: frozenset({_P.REFUNDED, _P.PARTIALLY_REFUNDED, _P.DISPUTED}),
    _P.PARTIALLY_REFUNDED: frozenset({_P.REFUNDED, _P.PARTIALLY_REFUNDED, _P.DISPUTED}),
    _P.FAILED: frozenset(),
    _P.CANCELED: frozenset(),
    _P.REFUNDED: frozenset(),
    _P.DISPUTED: frozenset({_P.SUCCEEDED}),
}

FINAL_STATUSES = frozenset({_P.FAILED, _P.CANCELED, _P.REFUNDED})
# Statuses in which the payment's allocations still hold their invoices.
RESERVING_STATUSES = frozenset({_P.SCHEDULED, _P.PENDING, _P.SUBMITTING, _P.PROCESSING, _P.REQUIRES_ACTION})


def can_transition(current: PaymentStatus, target: PaymentStatus) -> bool:
    """Whether the transition table allows moving from current to target."""
    return target in TRANSITIONS[PaymentStatus(current)]
