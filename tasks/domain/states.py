"""States and kinds stored in the database, as StrEnums whose values are the stored strings."""

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
    CREDIT = "credit"  # invoices paid from available credit alone (apply_credit)


class AllocationState(StrEnum):
    RESERVED = "reserved"
    APPLIED = "applied"
    RELEASED = "released"
    REVERSED = "reversed"


class ExternalPaymentKind(StrEnum):
    CHECK = "check"
    CASH = "cash"
    WIRE = "wire"
    CREDIT_MEMO = "credit_memo"
    WRITE_OFF = "write_off"


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
    RESERVED = "reserved"  # spent by a payment still in flight or scheduled
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


# An event in one of these was applied (or seen not to concern us) for good: its status never changes again.
EVENT_DONE = (EventStatus.PROCESSED, EventStatus.IGNORED)


class EmailStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class EmailKind(StrEnum):
    PAYMENT_CONFIRMATION = "payment_confirmation"
    ACH_INITIATED = "ach_initiated"
    ACH_SETTLED = "ach_settled"
    ACH_FAILED = "ach_failed"
    PAYMENT_FAILED = "payment_failed"
    AUTHENTICATION_REQUIRED = "authentication_required"
    SCHEDULED_CONFIRMED = "scheduled_confirmed"
    SCHEDULED_CANCELED = "scheduled_canceled"
    DEPOSIT_RECEIVED = "deposit_received"
    REFUND_ISSUED = "refund_issued"
    PAYMENT_REVERSED = "payment_reversed"
    DISPUTE_WON = "dispute_won"
    BANK_VERIFICATION_NEEDED = "bank_verification_needed"
    BANK_VERIFIED = "bank_verified"
    BANK_VERIFICATION_FAILED = "bank_verification_failed"


class FailedJobStatus(StrEnum):
    DEAD = "dead"
    RETRIED = "retried"
    DISCARDED = "discarded"


class FeedDeliveryStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILING = "failing"  # the last attempt failed; it is tried again (tasks.domain.feed.next_attempt_at)
    ABANDONED = "abandoned"  # failing for GIVE_UP_AFTER: the feed went on without it (ops can replay it)
