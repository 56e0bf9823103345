"""payment_intent.* events: move the payment the intent belongs to, forwards only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.event_queries import lock_payment_for_intent
from db.models import Payment
from tasks import ledger
from tasks.domain.events import intent_event_applies, intent_event_target, payment_id_from_metadata
from tasks.domain.intents import failure_fields
from tasks.domain.states import PaymentStatus, can_transition
from tasks.handlers.common import PROCESSED, Handled, ignored, obj, object_id, source_of

P = PaymentStatus


def handle(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Apply what the intent's event says happened, unless the payment has moved past it."""
    intent = obj(event)
    payment = lock_payment_for_intent(session, intent.get("id"), payment_id_from_metadata(intent.get("metadata")))
    if payment is None:
        return ignored(f"no payment for PaymentIntent {intent.get('id')}")
    if payment.stripe_payment_intent_id not in (None, intent["id"]):
        ledger.record_event(session, payment, source=source_of(event), now=now,
                            detail={"event_type": event["type"], "ignored": f"other PaymentIntent {intent['id']}"})
        return ignored(f"payment {payment.id} has another PaymentIntent")
    return apply_intent(session, payment, event["type"], intent, source=source_of(event), now=now)


def apply_intent(session: Session, payment: Payment, event_type: str, intent: dict[str, Any], *, source: str,
                 now: datetime) -> Handled:
    """The shared path of webhooks and the reconciler: fields first, then the transition."""
    target = intent_event_target(event_type, intent.get("last_payment_error"))
    detail = {"event_type": event_type, "intent_status": intent.get("status")}
    if target is None or not intent_event_applies(payment.status):
        ledger.record_event(session, payment, source=source, now=now,
                            detail={**detail, "ignored": "payment already past this event"})
        return PROCESSED
    moves = payment.status != target and can_transition(payment.status, target)
    values = _fields(payment, intent, target) if moves else {}
    ledger.apply_transition(session, payment, target, source=source, now=now, detail=detail, values=values)
    return PROCESSED


def _fields(payment: Payment, intent: dict[str, Any], target: PaymentStatus) -> dict[str, Any]:
    """The payment columns the intent fills in: ids we did not have yet, and why it failed."""
    values: dict[str, Any] = {}
    if payment.stripe_payment_intent_id is None:
        values["stripe_payment_intent_id"] = intent["id"]
    charge_id = object_id(intent.get("latest_charge"))
    if charge_id and target in (P.SUCCEEDED, P.PROCESSING) and payment.stripe_charge_id is None:
        values["stripe_charge_id"] = charge_id
    error = intent.get("last_payment_error") or {}
    if target in (P.FAILED, P.REQUIRES_ACTION) and error:
        values["failure_code"], values["failure_message"] = failure_fields(
            error.get("code"), error.get("decline_code"), error.get("message"))
    return values
