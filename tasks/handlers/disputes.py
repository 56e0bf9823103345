"""charge.dispute.* events: a chargeback takes the money back, and its outcome settles where it goes.

A chargeback (created, updated, funds_withdrawn, or first seen closed lost) marks the payment
disputed, reverses its applied allocations (the invoices reopen) and records what it reversed. Won
(closed won or funds_reinstated, in any order; first seen won, it is reversed first, so every
order ends alike): exactly that goes back on the invoices still owing
it, any part whose invoice was paid meanwhile becomes credit, and the payment is succeeded again
with a dispute_won email (tasks/flows/disputes.py). Lost: it stays reversed. An inquiry (warning_*)
moves no money. needs_review is set while a response is due and cleared when the dispute ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.models import Dispute
from db.queries import payments as payment_rows
from tasks.domain.disputes import Step, decide, reported_status
from tasks.domain.events import dispute_is_closed, dispute_is_inquiry, next_dispute_status
from tasks.domain.feed import DISPUTE_CLOSED
from tasks.domain.states import PaymentStatus
from tasks.flows import disputes as dispute_money
from tasks.flows import ledger
from tasks.handlers.common import PROCESSED, Handled, no_payment_yet, obj, source_of
from tasks.handlers.settle import charge_ids, settle_in_batch

P = PaymentStatus
Batch = ledger.TransitionBatch
DISPUTABLE = (P.SUCCEEDED, P.PARTIALLY_REFUNDED)


def handle(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Record the dispute and take the step its status (as kept) calls for."""
    dispute = obj(event)
    charge_id, intent_id = charge_ids(dispute)
    payment = payment_rows.lock_payment_for_charge(session, charge_id, intent_id)
    if payment is None:
        return no_payment_yet(event, f"charge {charge_id} of dispute {dispute.get('id')}", now)
    was_closed = _closed_before(session, dispute["id"])
    row = _record(session, payment, dispute, reported_status(event["type"], dispute["status"]), now)
    source = source_of(event)
    batch = ledger.TransitionBatch(now)
    settle_in_batch(session, batch, payment, charge_id, intent_id, source=source)
    decision = decide(
        row.status,
        reversed_=row.reversal is not None or payment.status == P.DISPUTED,
        reinstated=row.reinstated_at is not None,
        disputable=payment.status in DISPUTABLE,
    )
    if decision.needs_review is not None:
        batch.set_columns(payment, {"needs_review": decision.needs_review})
    detail = {
        "event_type": event["type"],
        "dispute": dispute["id"],
        "reason": dispute.get("reason"),
        "dispute_status": row.status,
    }
    _STEPS[decision.step](session, batch, payment, row, source, detail)
    if not was_closed and row.closed_at is not None and row.status in DISPUTE_CLOSED:
        # After the reversal or reinstatement it caused, for the ERP's ledger feed.
        batch.fact(
            payment, DISPUTE_CLOSED[row.status], dispute=row.stripe_dispute_id, dispute_minor=row.amount_minor
        )
    batch.flush(session)
    return PROCESSED


def _closed_before(session: Session, stripe_dispute_id: str) -> bool:
    known = payment_rows.find_dispute(session, stripe_dispute_id)
    return known is not None and known.closed_at is not None


def _record(session: Session, payment: Any, dispute: dict[str, Any], status: str, now: datetime) -> Dispute:
    row = payment_rows.insert_dispute(
        session,
        payment_id=payment.id,
        stripe_dispute_id=dispute["id"],
        amount_minor=dispute["amount"],
        currency=dispute["currency"],
        reason=dispute.get("reason"),
        status=status,
    )
    row.status = next_dispute_status(row.status, status)
    if dispute_is_closed(row.status) and row.closed_at is None:
        row.closed_at = now
    return row


def _reverse(session: Session, batch: Batch, payment: Any, row: Dispute, source: str, detail: dict) -> None:
    # The reversal email leads with what the chargeback took and names the dispute.
    payment.reversal_email = {"reversed_minor": row.amount_minor, "dispute_id": row.stripe_dispute_id}
    dispute_money.reverse(session, batch, payment, row, source=source, detail=detail)


def _reinstate(session: Session, batch: Batch, payment: Any, row: Dispute, source: str, detail: dict) -> None:
    if payment.status != P.DISPUTED:  # first seen won: the chargeback happened all the same
        _reverse(session, batch, payment, row, source, {**detail, "implied": True})
    plan = dispute_money.reinstate(session, batch, payment, row, source=source, detail=detail)
    if plan is None:
        # Reversed before disputes recorded what they reversed, and refunded in part: ops re-apply it.
        batch.set_columns(payment, {"needs_review": True})
        batch.note(payment, source=source, detail={**detail, "reinstate": "reversal unknown: ops"})
    elif plan.credit_minor:
        batch.set_columns(payment, {"needs_review": True})  # money the seller may want to refund


def _note(session: Session, batch: Batch, payment: Any, row: Dispute, source: str, detail: dict) -> None:
    batch.note(payment, source=source, detail={**detail, "inquiry": dispute_is_inquiry(row.status)})


_STEPS = {Step.REVERSE: _reverse, Step.REINSTATE: _reinstate, Step.NOTE: _note}
