"""What every payment transition does, in one table: allocation and credit moves, the email owed, the finish.

A (from, to) pair missing from TABLE is refused. plan_transition turns a row of it into the columns
and moves the ledger writes (tasks/flows/ledger.py) for one payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks.domain.states import AllocationState as A
from tasks.domain.states import CreditState as C
from tasks.domain.states import EmailKind as E
from tasks.domain.states import MethodKind, PaymentKind
from tasks.domain.states import PaymentStatus as P

# Moving between these changes no balance figure: all of them count as pending.
IN_FLIGHT = frozenset({P.PENDING, P.SUBMITTING, P.PROCESSING, P.REQUIRES_ACTION})
# Statuses in which the payment's allocations still hold their invoices.
RESERVING_STATUSES = frozenset({P.SCHEDULED, *IN_FLIGHT})


@dataclass(frozen=True)
class Transition:
    """One allowed (from, to): what it moves, the email it owes (by method, payment kind), if it finishes."""

    allocations: tuple[A, A] | None = None
    credits: tuple[C, C] | None = None
    # The credit this payment spends on its invoices (not the credit it creates).
    spent: tuple[C, C] | None = None
    email: E | None = None
    # The email instead, for a bank debit (ACH) or a card deposit, where it differs.
    ach_email: E | None = None
    deposit_email: E | None = None
    finishes: bool = False

    def email_for(self, method_kind: str, payment_kind: str) -> E | None:
        if method_kind == MethodKind.US_BANK_ACCOUNT and self.ach_email is not None:
            return self.ach_email
        if payment_kind == PaymentKind.DEPOSIT and self.deposit_email is not None:
            return self.deposit_email
        return self.email


# Money in: the reserved allocations are applied, pending credit becomes available.
_PAID = Transition(
    allocations=(A.RESERVED, A.APPLIED),
    credits=(C.PENDING, C.AVAILABLE),
    spent=(C.RESERVED, C.APPLIED),
    email=E.PAYMENT_CONFIRMATION,
    ach_email=E.ACH_SETTLED,
    deposit_email=E.DEPOSIT_RECEIVED,
    finishes=True,
)
# No money moved: the invoices are freed, the credit it would have left never exists, the credit it would
# have spent is available again.
_RELEASED = dict(
    allocations=(A.RESERVED, A.RELEASED),
    credits=(C.PENDING, C.REVERSED),
    spent=(C.RESERVED, C.AVAILABLE),
    finishes=True,
)
_FAILED = Transition(**_RELEASED, email=E.PAYMENT_FAILED)
_CANCELED = Transition(**_RELEASED, email=E.SCHEDULED_CANCELED)
# Money taken back: what was applied is reversed, and so is credit not yet spent; the credit the payment
# spent on the invoices it reopens is available again.
_REVERSED = dict(
    allocations=(A.APPLIED, A.REVERSED), credits=(C.AVAILABLE, C.REVERSED), spent=(C.APPLIED, C.AVAILABLE)
)
_QUIET = Transition()

TABLE: dict[tuple[P, P], Transition] = {
    (P.SCHEDULED, P.PENDING): _QUIET,  # its day came: the clock sends it
    (P.SCHEDULED, P.CANCELED): _CANCELED,
    (P.PENDING, P.SUBMITTING): _QUIET,  # the attempt's key is recorded before Stripe is called
    (P.PENDING, P.FAILED): _FAILED,  # the last look refused it before any Stripe call
    (P.PENDING, P.CANCELED): _CANCELED,
    (P.SUBMITTING, P.SUCCEEDED): _PAID,
    (P.SUBMITTING, P.PROCESSING): Transition(email=E.ACH_INITIATED),
    (P.SUBMITTING, P.REQUIRES_ACTION): Transition(email=E.AUTHENTICATION_REQUIRED),
    (P.SUBMITTING, P.FAILED): _FAILED,
    (P.PROCESSING, P.SUCCEEDED): _PAID,
    # A bank debit that bounced days later has its own email.
    (P.PROCESSING, P.FAILED): Transition(**_RELEASED, email=E.PAYMENT_FAILED, ach_email=E.ACH_FAILED),
    (P.REQUIRES_ACTION, P.SUCCEEDED): _PAID,
    (P.REQUIRES_ACTION, P.FAILED): _FAILED,
    (P.REQUIRES_ACTION, P.CANCELED): _CANCELED,
    (P.REQUIRES_ACTION, P.PROCESSING): Transition(email=E.ACH_INITIATED),
    (P.SUCCEEDED, P.REFUNDED): Transition(**_REVERSED, email=E.REFUND_ISSUED, finishes=True),
    (P.SUCCEEDED, P.PARTIALLY_REFUNDED): Transition(email=E.REFUND_ISSUED),
    (P.SUCCEEDED, P.DISPUTED): Transition(**_REVERSED, email=E.PAYMENT_REVERSED),
    (P.PARTIALLY_REFUNDED, P.REFUNDED): Transition(**_REVERSED, email=E.REFUND_ISSUED, finishes=True),
    (P.PARTIALLY_REFUNDED, P.PARTIALLY_REFUNDED): Transition(
        email=E.REFUND_ISSUED
    ),  # a further partial refund
    (P.PARTIALLY_REFUNDED, P.DISPUTED): Transition(**_REVERSED, email=E.PAYMENT_REVERSED),
    # A dispute the seller won: the money is back. What goes back on which invoice, or becomes credit, is
    # decided per allocation (tasks.domain.disputes.split_reinstatement), so the table moves nothing.
    (P.DISPUTED, P.SUCCEEDED): Transition(email=E.DISPUTE_WON, finishes=True),
    (P.DISPUTED, P.PARTIALLY_REFUNDED): Transition(email=E.DISPUTE_WON),  # won after a partial refund
}
# Only for a payment that charges nothing (credit pays it all): it succeeds without a Stripe call. No
# PaymentIntent event can ever make this move.
NOTHING_CHARGED: dict[tuple[P, P], Transition] = {(P.PENDING, P.SUCCEEDED): _PAID}
# The creation of a scheduled payment is no transition, but owes its email as if it were one.
SCHEDULED_EMAIL = E.SCHEDULED_CONFIRMED
# Payments that never leave credit behind.
_CREATES_NO_CREDIT = frozenset({PaymentKind.INVOICES, PaymentKind.CREDIT})
FINAL_STATUSES = frozenset(status for status in P if not any(source == status for source, _ in TABLE))


def can_transition(current: P, target: P) -> bool:
    """Whether the table allows moving from current to target."""
    return (P(current), P(target)) in TABLE


def email_for(method_kind: str, payment_kind: str, source: P, target: P) -> E | None:
    """The one email a customer is owed for this transition, or None."""
    transition = TABLE.get((P(source), P(target)))
    return transition.email_for(method_kind, payment_kind) if transition else None


@dataclass(frozen=True)
class Plan:
    """What a transition of one payment writes: its columns, its timeline detail and the moves it makes."""

    applied: bool
    source: P
    target: P
    columns: dict[str, Any]
    detail: dict[str, Any]
    allocation_move: tuple[A, A] | None = None
    credit_move: tuple[C, C] | None = None
    spent_move: tuple[C, C] | None = None
    email: E | None = None
    balance_moves: bool = False


def plan_transition(
    status: str,
    payment_kind: str,
    method_kind: str,
    target: P,
    *,
    now: datetime,
    detail: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    leaves_credit: bool = False,
    nothing_charged: bool = False,
) -> Plan:
    """The transition of a payment in status to target, as the table allows it.

    values are further payment columns to store either way; a refused transition stores only them and
    records the refusal on the timeline. leaves_credit: a payment of invoices that the last look left credit;
    nothing_charged: a payment credit pays in full (NOTHING_CHARGED applies too).
    """
    current, target = P(status), P(target)
    table = {**TABLE, **NOTHING_CHARGED} if nothing_charged else TABLE
    transition = table.get((current, target)) if current != target else None
    if transition is None:
        reason = "already in this state" if current == target else "transition not allowed"
        return Plan(False, current, target, dict(values or {}), {**(detail or {}), "ignored": reason})
    columns = {**(values or {}), "status": target, "updated_at": now}
    if transition.finishes:
        columns["finished_at"] = now
    # Only custom amounts and deposits carry credit; skipping the others saves a statement per event.
    return Plan(
        True,
        current,
        target,
        columns,
        detail or {},
        allocation_move=transition.allocations,
        credit_move=transition.credits if leaves_credit or payment_kind not in _CREATES_NO_CREDIT else None,
        spent_move=transition.spent,
        email=transition.email_for(method_kind, payment_kind),
        balance_moves=not (current in IN_FLIGHT and target in IN_FLIGHT),
    )
