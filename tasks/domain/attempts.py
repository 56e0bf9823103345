"""When execute_payment creates a PaymentIntent, when it must search Stripe instead, and what it can end in.

Pure rules and values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tasks.domain.states import PaymentStatus

# Stripe keeps idempotency keys for at least 24 hours; from 20 hours after the first attempt on
# (exactly 20 included) we leave the 4 as margin and look for the PaymentIntent by our metadata
# instead of replaying the key blindly.
SEARCH_AFTER = timedelta(hours=20)


class Step(StrEnum):
    CREATE = "create"
    SEARCH = "search"
    NOTHING = "nothing"


@dataclass(frozen=True)
class Attempt:
    step: Step
    attempt: int
    idempotency_key: str | None


def stripe_key(payment_id: int, attempt: int) -> str:
    """The Stripe idempotency key for one attempt, derived from our own row."""
    return f"remit-payment-{payment_id}-attempt-{attempt}"


def decide_attempt(
    payment_id: int, status: str, attempt: int, first_attempt_at: datetime | None, now: datetime
) -> Attempt:
    """What execute_payment does for a payment in this state at this time."""
    if status == PaymentStatus.PENDING:
        number = attempt + 1
        return Attempt(Step.CREATE, number, stripe_key(payment_id, number))
    if status != PaymentStatus.SUBMITTING:
        return Attempt(Step.NOTHING, attempt, None)
    if first_attempt_at is not None and now - first_attempt_at >= SEARCH_AFTER:
        return Attempt(Step.SEARCH, attempt, stripe_key(payment_id, attempt))
    return Attempt(Step.CREATE, attempt, stripe_key(payment_id, attempt))


@dataclass(frozen=True)
class NothingToDo:
    """The payment was in no state execute_payment acts on: nothing was recorded or sent."""

    status: PaymentStatus


@dataclass(frozen=True)
class FailedAtLastLook:
    """Nothing had reached Stripe and the last look refused: the payment failed with this code."""

    code: str


@dataclass(frozen=True)
class Answered:
    """Stripe answered, and the payment moved to (or, moved by a webhook first, already was in) the status."""

    status: PaymentStatus


# What execute_payment ends in; an exception means it did not end and the message is retried.
Outcome = NothingToDo | FailedAtLastLook | Answered
