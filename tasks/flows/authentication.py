"""Card authentication ends: Stripe's word on a waiting payment applied (after Stripe.js ran, or from the
window's job), a waiting payment canceled at Stripe, and the authentication window's expiry pass
(queue `maintenance`).

Stripe is called with no transaction open; what it answered is applied under the payment's lock through
the handlers a webhook goes through (tasks.handlers.payment_intents), so a webhook about the same intent,
before or after, finds the payment already moved and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from db.queries import payment_detail as detail_rows
from db.session import transaction
from tasks.domain import authentication as rules
from tasks.domain.errors import StripeRefused
from tasks.domain.events import intent_event_target, intent_event_type
from tasks.domain.payment_view import CUSTOMER_NOTE, readable_failure
from tasks.domain.states import PaymentStatus
from tasks.flows.ledger import apply_transition, record_event, update_payment
from tasks.flows.payments import lock_in_order
from tasks.flows.reconcile import intent_snapshot
from tasks.gateways.stripe import IntentResult, get_gateway
from tasks.handlers.payment_intents import apply_intent
from workers.settings import get_settings

_log = logging.getLogger(__name__)
P = PaymentStatus
# Stripe's cancellation reasons: the customer asked, or the window ran out on them.
REQUESTED = "requested_by_customer"
ABANDONED = "abandoned"
# Payments canceled per pass, each a Stripe call paced by the shared limiter: a minute's work at worst.
EXPIRE_LIMIT = 200
# Waiting payments read per query while looking for due ones; few wait at once, as each waits on a person.
WAITING_PAGE = 500


def default_windows() -> rules.Windows:
    settings = get_settings()
    return rules.Windows(settings.auth_window_on_session_hours, settings.auth_window_off_session_hours)


def current_intent(intent_id: str) -> IntentResult:
    """The intent as Stripe has it now, its client secret included: handed on, never stored."""
    return get_gateway().retrieve_payment_intent(intent_id)


def expires_at(session: Session, payment_id: int) -> datetime | None:
    """When the payment's authentication window ends, if it is waiting."""
    row = detail_rows.find_waiting_since(session, payment_id)
    return None if row is None else _deadline(row, default_windows())


def settle(payment_id: int, now: datetime, source: str) -> PaymentStatus | None:
    """Retrieve the waiting payment's intent and apply what Stripe says; the status after, or None when
    the payment was not waiting for authentication (nothing asked of Stripe)."""
    intent_id = _waiting_intent(payment_id)
    if intent_id is None:
        return None
    intent = get_gateway().retrieve_payment_intent(intent_id)
    with transaction() as session:
        payment = lock_in_order(session, payment_id)
        _apply(session, payment, intent, source, now)
        return P(payment.status)


def cancel(payment_id: int, now: datetime, source: str, reason: str) -> tuple[PaymentStatus, bool]:
    """Cancel a scheduled payment, or one waiting for authentication at Stripe (keyed on our row), and
    free its invoices: (status after, whether this call's cancel won). A payment Stripe finished first
    keeps Stripe's outcome and the refused cancel is on its timeline."""
    with transaction() as session:
        payment = lock_in_order(session, payment_id)
        if payment.status == P.SCHEDULED:
            apply_transition(session, payment, P.CANCELED, source=source, now=now)
            return P.CANCELED, True
        if payment.status in (P.SUCCEEDED, P.PROCESSING):
            _note_cancel_refused(session, payment, payment.status, source, now)
        if payment.status != P.REQUIRES_ACTION or payment.stripe_payment_intent_id is None:
            return P(payment.status), False
        intent_id = payment.stripe_payment_intent_id
    key = rules.cancel_key(payment_id, intent_id)
    intent = get_gateway().cancel_payment_intent(intent_id, reason=reason, idempotency_key=key)
    with transaction() as session:
        payment = lock_in_order(session, payment_id)
        waiting = payment.status == P.REQUIRES_ACTION
        if intent.status == "canceled" and waiting and reason == ABANDONED:
            failure = {"failure_code": rules.WINDOW_EXPIRED}
            failure["failure_message"] = readable_failure(rules.WINDOW_EXPIRED, None)
            update_payment(session, payment, failure, now=now)
        _apply(session, payment, intent, source, now)
        won = intent.status == "canceled" and waiting
        if not won and intent.status != "canceled":
            _note_cancel_refused(session, payment, f"{intent.status} at Stripe", source, now)
        return P(payment.status), won


def expire_waiting(now: datetime, limit: int = EXPIRE_LIMIT) -> dict[str, int]:
    """Cancel at Stripe every payment waiting for authentication past its window (up to limit a pass);
    counts for the clock."""
    waiting, due = _due_payments(now, limit)
    canceled = refused = 0
    for payment_id in due:
        try:
            _, won = cancel(payment_id, now, "maintenance:expire_authentication", ABANDONED)
        except StripeRefused:
            # Stripe refusing one intent (gone, not ours) must not stop the pass for every payment behind it.
            _log.exception("could not cancel payment %s at the end of its authentication window", payment_id)
            refused += 1
            continue
        canceled += won
    return {"waiting": waiting, "expired": len(due), "canceled": canceled, "refused": refused}


def _due_payments(now: datetime, limit: int) -> tuple[int, list[int]]:
    """(payments looked at, ids past their window): every page of waiting payments, since sellers' windows
    differ and the longest waiting is not always the first due."""
    shortest = timedelta(hours=1)  # no window is shorter (workers.settings, the sellers' check constraint)
    defaults, after, looked, due = default_windows(), None, 0, []
    while len(due) < limit:
        with transaction() as session:
            rows = detail_rows.list_waiting_for_authentication(session, now - shortest, WAITING_PAGE, after)
        looked += len(rows)
        due += [row.id for row in rows if _deadline(row, defaults) <= now][: limit - len(due)]
        if len(rows) < WAITING_PAGE:
            return looked, due
        after = (rows[-1].since, rows[-1].id)
    return looked, due


def note_late_confirmation(payment_id: int, now: datetime, source: str) -> None:
    """A customer finished authenticating a payment that had already ended: once on its timeline."""
    with transaction() as session:
        payment = lock_in_order(session, payment_id)
        if detail_rows.has_timeline_mark(session, payment_id, "late_confirmation"):
            return
        text = f"Your confirmation came after the payment was {payment.status}; nothing more was charged."
        record_event(
            session, payment, source=source, now=now, detail={"late_confirmation": True, CUSTOMER_NOTE: text}
        )


def _deadline(row: Any, defaults: rules.Windows) -> datetime:
    """The end of a waiting payment's window, from payment_detail's (since, off_session, seller hours)."""
    windows = rules.window_for(row.auth_window_on_session_hours, row.auth_window_off_session_hours, defaults)
    return rules.deadline(row.since, row.off_session, windows)


def _waiting_intent(payment_id: int) -> str | None:
    with transaction() as session:
        payment = lock_in_order(session, payment_id)
        if payment is None or payment.status != P.REQUIRES_ACTION:
            return None
        return payment.stripe_payment_intent_id


def _apply(session: Session, payment: Any, intent: IntentResult, source: str, now: datetime) -> None:
    """What a webhook for the intent's current status would do, unless the payment is there already."""
    event_type = intent_event_type(intent.status)
    snapshot = intent_snapshot(intent)
    if (
        event_type is None
        or intent_event_target(event_type, snapshot["last_payment_error"]) == payment.status
    ):
        return
    apply_intent(session, payment, event_type, snapshot, source=source, now=now)


def _note_cancel_refused(session: Session, payment: Any, said: str, source: str, now: datetime) -> None:
    """A cancel that lost to the payment going through: once on its timeline, for ops and the customer."""
    if detail_rows.has_timeline_mark(session, payment.id, "cancel_refused"):
        return
    detail = {"cancel_refused": f"the payment was {said}"}
    if payment.status in (P.SUCCEEDED, P.PROCESSING):
        detail[CUSTOMER_NOTE] = "The cancellation came too late: the payment had already gone through."
    record_event(session, payment, source=source, now=now, detail=detail)
