"""charge.refunded and refund.* events: give invoices back, keep refunded_minor and refund rows right.

Stripe's charge carries the cumulative `amount_refunded`; it only ever grows, so a duplicate or
late event with a smaller total changes nothing. Newly refunded money first takes back the
payment's unapplied credit (the overpaid part), then reverses applied allocations latest-due
first (see tasks.domain.events.split_refund).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.event_queries import (
    list_applied_allocations, list_available_credits, lock_payment_for_charge, upsert_refund,
)
from db.models import Payment
from tasks import ledger
from tasks.accounts import balance_moved
from tasks.domain.events import AllocationSlice, payment_id_from_metadata, refund_target, split_refund
from tasks.domain.states import AllocationState, CreditState, PaymentStatus
from tasks.handlers.common import PROCESSED, Handled, ignored, obj, source_of
from tasks.handlers.settle import charge_ids, settle_if_in_flight

P = PaymentStatus
REFUNDABLE = (P.SUCCEEDED, P.PARTIALLY_REFUNDED)


def handle(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Route charge.refunded to the money path and refund.* to the refund rows."""
    if event["type"] == "charge.refunded":
        return handle_charge_refunded(session, event, now)
    return handle_refund_object(session, event, now)


def handle_charge_refunded(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Reverse what the newly refunded money paid for and move the payment to (partially_)refunded."""
    charge = obj(event)
    charge_id, intent_id = charge_ids(charge)
    payment = lock_payment_for_charge(session, charge_id, intent_id, payment_id_from_metadata(charge.get("metadata")))
    if payment is None:
        return ignored(f"no payment for charge {charge_id}")
    source = source_of(event)
    settle_if_in_flight(session, payment, charge_id, intent_id, source=source, now=now)
    total = min(int(charge.get("amount_refunded") or 0), payment.amount_minor)
    if payment.status not in REFUNDABLE or total <= payment.refunded_minor:
        ledger.record_event(session, payment, source=source, now=now,
                            detail={"event_type": event["type"], "amount_refunded": total,
                                    "ignored": "no new refund for this payment"})
        return PROCESSED
    _refund(session, payment, total, source=source, now=now)
    return PROCESSED


def _refund(session: Session, payment: Payment, total: int, *, source: str, now: datetime) -> None:
    beyond_credit = _take_back_credit(session, payment, total - payment.refunded_minor)
    split = _reverse_allocations(session, payment, beyond_credit)
    previous, target = P(payment.status), refund_target(payment.amount_minor, total)
    payment.refunded_minor = total
    detail = {"amount_refunded": total, "reversed_allocations": list(split.reverse_ids),
              "reduced_allocation": list(split.reduce) if split.reduce else None}
    if previous == target:
        ledger.record_event(session, payment, source=source, now=now, detail=detail)
        balance_moved(session, payment.account_id, now)
    else:
        ledger.apply_transition(session, payment, target, source=source, now=now, detail=detail)
    if previous == P.PARTIALLY_REFUNDED:
        # The first refund's email used the plain key; each later one is its own email.
        ledger.queue_payment_email(session, payment, previous, target, dedupe_suffix=f":refunded:{total}")


def _take_back_credit(session: Session, payment: Payment, refund_minor: int) -> int:
    """Reduce the payment's available credit by the refund; return what is left to refund."""
    remaining = refund_minor
    for credit in list_available_credits(session, payment.id):
        if remaining <= 0:
            break
        if remaining >= credit.amount_minor:
            remaining -= credit.amount_minor
            credit.state = CreditState.REVERSED
        else:
            credit.amount_minor -= remaining
            remaining = 0
    return remaining


def _reverse_allocations(session: Session, payment: Payment, refund_minor: int):
    rows = list_applied_allocations(session, payment.id)
    split = split_refund([AllocationSlice(a.id, i.due_on, a.amount_minor) for a, i in rows], refund_minor)
    by_id = {a.id: a for a, _ in rows}
    for allocation_id in split.reverse_ids:
        by_id[allocation_id].state = AllocationState.REVERSED
    if split.reduce:
        by_id[split.reduce[0]].amount_minor = split.reduce[1]
    return split


def handle_refund_object(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Keep a row per Stripe refund; a refund that failed at the bank is flagged for ops."""
    refund = obj(event)
    charge_id, intent_id = charge_ids(refund)
    payment = lock_payment_for_charge(session, charge_id, intent_id, payment_id_from_metadata(refund.get("metadata")))
    if payment is None:
        return ignored(f"no payment for refund {refund.get('id')}")
    upsert_refund(session, payment_id=payment.id, stripe_refund_id=refund["id"], amount_minor=refund["amount"],
                  currency=refund["currency"], status=refund.get("status") or "pending", reason=refund.get("reason"))
    if refund.get("status") == "failed":
        # The money never left; the invoices stay reopened until ops decide (re-refund or re-apply).
        payment.needs_review = True
        ledger.record_event(session, payment, source=source_of(event), now=now,
                            detail={"event_type": event["type"], "refund": refund["id"], "refund_failed":
                                    refund.get("failure_reason")})
    return PROCESSED
