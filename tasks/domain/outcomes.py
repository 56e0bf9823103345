"""What a payment transition does: which allocations move, which email is owed. Pure rules."""

from __future__ import annotations

from enum import StrEnum

from tasks.domain.states import AllocationState, MethodKind, PaymentKind, PaymentStatus

P = PaymentStatus


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
    BANK_VERIFICATION_NEEDED = "bank_verification_needed"
    BANK_VERIFIED = "bank_verified"
    BANK_VERIFICATION_FAILED = "bank_verification_failed"


# (allocation state it leaves, allocation state it enters) per target status.
ALLOCATION_MOVES: dict[PaymentStatus, tuple[AllocationState, AllocationState]] = {
    P.SUCCEEDED: (AllocationState.RESERVED, AllocationState.APPLIED),
    P.FAILED: (AllocationState.RESERVED, AllocationState.RELEASED),
    P.CANCELED: (AllocationState.RESERVED, AllocationState.RELEASED),
    P.DISPUTED: (AllocationState.APPLIED, AllocationState.REVERSED),
    P.REFUNDED: (AllocationState.APPLIED, AllocationState.REVERSED),
}


def allocation_move(target: PaymentStatus) -> tuple[AllocationState, AllocationState] | None:
    """The allocation move a transition to target makes, if any."""
    return ALLOCATION_MOVES.get(PaymentStatus(target))


def email_for(method_kind: str, payment_kind: str, source: PaymentStatus, target: PaymentStatus) -> EmailKind | None:
    """The one email a customer is owed for this transition, or None."""
    ach = method_kind == MethodKind.US_BANK_ACCOUNT
    if target == P.SUCCEEDED:
        if source == P.DISPUTED:
            return None
        if ach:
            return EmailKind.ACH_SETTLED
        return EmailKind.DEPOSIT_RECEIVED if payment_kind == PaymentKind.DEPOSIT else EmailKind.PAYMENT_CONFIRMATION
    if target == P.FAILED:
        return EmailKind.ACH_FAILED if ach and source == P.PROCESSING else EmailKind.PAYMENT_FAILED
    return {
        P.PROCESSING: EmailKind.ACH_INITIATED,
        P.REQUIRES_ACTION: EmailKind.AUTHENTICATION_REQUIRED,
        P.SCHEDULED: EmailKind.SCHEDULED_CONFIRMED,
        P.CANCELED: EmailKind.SCHEDULED_CANCELED,
        P.REFUNDED: EmailKind.REFUND_ISSUED,
        P.PARTIALLY_REFUNDED: EmailKind.REFUND_ISSUED,
        P.DISPUTED: EmailKind.PAYMENT_REVERSED,
    }.get(PaymentStatus(target))
