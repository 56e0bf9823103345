"""charge.dispute.* events: a card dispute or a late ACH return takes the money back.

Any chargeback, created or closed, won or lost, marks the payment disputed, reverses its applied
allocations (the invoices reopen) and flags it for ops, so that any delivery order ends alike.
A won dispute returns the funds but leaves the payment disputed with needs_review: ops re-apply
the money, because the reopened invoices may have been paid again meanwhile. An inquiry (a
warning_* status) moves no money: it is recorded and flagged for a response, and reverses the
payment only if it escalates to a chargeback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import payments as payment_rows
from tasks.domain.events import dispute_is_closed, dispute_is_inquiry, next_dispute_status
from tasks.domain.feed import DISPUTE_CLOSED
from tasks.domain.states import PaymentStatus
from tasks.flows import ledger
from tasks.handlers.common import PROCESSED, Handled, no_payment_yet, obj, source_of
from tasks.handlers.settle import charge_ids, settle_in_batch

P = PaymentStatus
DISPUTABLE = (P.SUCCEEDED, P.PARTIALLY_REFUNDED)


def handle(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Record the dispute; reverse the payment once it is a chargeback."""
    dispute = obj(event)
    charge_id, intent_id = charge_ids(dispute)
    payment = payment_rows.lock_payment_for_charge(session, charge_id, intent_id)
    if payment is None:
        return no_payment_yet(event, f"charge {charge_id} of dispute {dispute.get('id')}", now)
    row = payment_rows.insert_dispute(
        session,
        payment_id=payment.id,
        stripe_dispute_id=dispute["id"],
        amount_minor=dispute["amount"],
        currency=dispute["currency"],
        reason=dispute.get("reason"),
        status=dispute["status"],
    )
    row.status = next_dispute_status(row.status, dispute["status"])
    closing = dispute_is_closed(row.status) and row.closed_at is None
    if closing:
        row.closed_at = now
    source = source_of(event)
    batch = ledger.TransitionBatch(now)
    settle_in_batch(session, batch, payment, charge_id, intent_id, source=source)
    batch.set_columns(payment, {"needs_review": True})  # an inquiry needs a response too
    detail = {
        "event_type": event["type"],
        "dispute": dispute["id"],
        "reason": dispute.get("reason"),
        "dispute_status": dispute["status"],
    }
    if dispute_is_inquiry(row.status):
        batch.note(payment, source=source, detail={**detail, "inquiry": True})
    elif payment.status in DISPUTABLE:
        payment.reversal_email = {"reversed_minor": dispute["amount"], "dispute_id": dispute["id"]}
        batch.add(session, payment, P.DISPUTED, source=source, detail=detail)
    else:
        batch.note(payment, source=source, detail=detail)
    if closing and row.status in DISPUTE_CLOSED:  # after the reversal it may have caused, for the ERP
        batch.fact(payment, DISPUTE_CLOSED[row.status], dispute=dispute["id"], dispute_minor=row.amount_minor)
    batch.flush(session)
    return PROCESSED
