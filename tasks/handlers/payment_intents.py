"""payment_intent.* events: move the payment the intent belongs to, forwards only.

Webhook batches go through handle_batch: the payments of all the batch's intents are locked in one
statement and their transitions written set-wise (ledger.TransitionBatch). The reconciler, holding
one loaded payment, goes through apply_intent. Both decide with decide().
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.queries import payments as payment_rows
from tasks.domain.events import (
    Recorded,
    contradicts,
    foreign_intent,
    intent_event_applies,
    intent_event_target,
    payment_id_from_metadata,
)
from tasks.domain.intents import failure_fields
from tasks.domain.states import PaymentStatus
from tasks.domain.transitions import can_transition
from tasks.flows import ledger
from tasks.handlers.common import PROCESSED, Handled, ignored, obj, object_id, source_of
from workers.settings import get_settings

_log = logging.getLogger(__name__)

P = PaymentStatus


def handle_batch(session: Session, events: Sequence[dict[str, Any]], now: datetime) -> list[Handled]:
    """Apply what each intent's event says happened, unless its payment has moved past it: one lock
    statement and a few writes for all of them."""
    intents = [obj(event) for event in events]
    keys = [(intent.get("id"), payment_id_from_metadata(intent.get("metadata"))) for intent in intents]
    payments = payment_rows.lock_payment_views(
        session,
        intent_ids=[k[0] for k in keys if isinstance(k[0], str)],
        payment_ids=[k[1] for k in keys if k[1] is not None],
    )
    by_intent = {p.stripe_payment_intent_id: p for p in payments if p.stripe_payment_intent_id}
    by_id = {p.id: p for p in payments}
    batch = ledger.TransitionBatch(now)
    handled = []
    for event, intent, (intent_id, payment_id) in zip(events, intents, keys):
        # By the intent's id; by our id in its metadata only when the intent proves to be that payment's.
        payment = by_intent.get(intent_id)
        if payment is None and payment_id in by_id:
            refusal = _refusal(by_id[payment_id], intent)
            if refusal is not None:
                if by_id[payment_id].stripe_payment_intent_id is not None:  # worth a line on our timeline
                    detail = {"event_type": event["type"], "ignored": refusal.note}
                    batch.note(by_id[payment_id], source=source_of(event), detail=detail)
                handled.append(refusal)
                continue
            payment = by_id[payment_id]
        handled.append(_apply(session, batch, payment, event, intent))
    batch.flush(session)
    return handled


def _apply(
    session: Session,
    batch: ledger.TransitionBatch,
    payment: Any,
    event: dict[str, Any],
    intent: dict[str, Any],
) -> Handled:
    if payment is None:
        return ignored(f"no payment for PaymentIntent {intent.get('id')}")
    _write(session, batch, payment, event["type"], intent, source_of(event))
    return PROCESSED


def _refusal(payment: Any, intent: dict[str, Any]) -> Handled | None:
    """Why an intent that names this payment only in its metadata may not move it (ignored), or None."""
    recorded = Recorded(
        payment.stripe_payment_intent_id,
        payment.account_id,
        payment.amount_minor,
        payment.currency,
        payment.account.stripe_customer_id,
    )
    reason = foreign_intent(recorded, intent, get_settings().deployment)
    return None if reason is None else ignored(reason)


def _write(
    session: Session,
    batch: ledger.TransitionBatch,
    payment: Any,
    event_type: str,
    intent: dict[str, Any],
    source: str,
) -> None:
    target, detail, values = decide(payment, event_type, intent)
    if target is None:
        if "contradiction" in detail:
            _log.error("payment %s: %s", payment.id, detail["contradiction"])
        batch.set_columns(payment, values)
        batch.note(payment, source=source, detail=detail)
    else:
        batch.add(session, payment, target, source=source, detail=detail, values=values)


def apply_intent(
    session: Session, payment: Any, event_type: str, intent: dict[str, Any], *, source: str, now: datetime
) -> Handled:
    """The reconciler's path for one payment: the same decision and writes, as a batch of one."""
    batch = ledger.TransitionBatch(now)
    _write(session, batch, payment, event_type, intent, source)
    batch.flush(session)
    return PROCESSED


def decide(
    payment: Any, event_type: str, intent: dict[str, Any]
) -> tuple[PaymentStatus | None, dict[str, Any], dict[str, Any]]:
    """(target, timeline detail, payment columns) for the event; no target when the payment is past it."""
    target = intent_event_target(event_type, intent.get("last_payment_error"))
    detail = {"event_type": event_type, "intent_status": intent.get("status")}
    if target is not None and contradicts(payment.status, target):
        # Never dropped silently: Stripe has the money our row says it does not. Ops decide.
        said = (
            f"Stripe reports {target} for PaymentIntent {intent.get('id')}; the payment is {payment.status}"
        )
        return (
            None,
            {**detail, "ignored": "payment already past this event", "contradiction": said},
            {"needs_review": True},
        )
    if target is None or not intent_event_applies(payment.status):
        return None, {**detail, "ignored": "payment already past this event"}, {}
    moves = payment.status != target and can_transition(payment.status, target)
    return target, detail, _fields(payment, intent, target) if moves else {}


def _fields(payment: Any, intent: dict[str, Any], target: PaymentStatus) -> dict[str, Any]:
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
            error.get("code"), error.get("decline_code"), error.get("message")
        )
    return values
