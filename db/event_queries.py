"""Query functions for the webhook inbox and its handlers, session first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Dispute, Payment, PaymentMethod, Refund, StripeEvent
from db.queries import lock_payment_by
from tasks.domain.states import EventStatus, PaymentStatus

_EVENTS = StripeEvent.__table__
# The event a message names: waited for if someone holds it, or passed over.
_LOCK_EVENT = {
    True: text("SELECT id, status, payload FROM stripe_events WHERE id = :id FOR UPDATE"),
    False: text("SELECT id, status, payload FROM stripe_events WHERE id = :id FOR UPDATE SKIP LOCKED"),
}
# Other fresh waiting events nobody holds, oldest first.
_CLAIM_WAITING = text(
    "SELECT id, status, payload FROM stripe_events WHERE status = 'received' AND attempts = 0 AND id <> :id"
    " ORDER BY received_at LIMIT :others FOR UPDATE SKIP LOCKED"
)
_MARK_EVENTS = text(
    "UPDATE stripe_events SET status = done.status, error = done.note, processed_at = :now,"
    " attempts = stripe_events.attempts + 1"
    " FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:notes AS text[])) AS done (id, status, note)"
    " WHERE stripe_events.id = done.id"
)


def find_event(session: Session, event_id: str) -> StripeEvent | None:
    return session.get(StripeEvent, event_id)


def lock_event(session: Session, event_id: str, wait: bool = True) -> Row | None:
    """(id, status, payload) of the event, locked FOR UPDATE: two deliveries of one event run one after the other.

    Without wait, None also when another transaction holds the event.
    """
    return session.connection().execute(_LOCK_EVENT[wait], {"id": event_id}).first()


def claim_waiting_events(session: Session, event_id: str, others: int) -> list[Row]:
    """(id, status, payload) of up to `others` waiting events besides this one, locked.

    Only fresh events (never attempted) no one else holds: an event that failed before is left to its
    own message, so it cannot hold back a batch twice.
    """
    return list(session.connection().execute(_CLAIM_WAITING, {"id": event_id, "others": others}))


def mark_events(session: Session, outcomes: Sequence[tuple[str, str, str | None]], now: datetime) -> None:
    """Record how processing ended for each (event id, status, note), counting the attempt; one statement."""
    ids, statuses, notes = zip(*outcomes)
    session.connection().execute(_MARK_EVENTS, {"ids": list(ids), "statuses": list(statuses), "notes": list(notes),
                                                "now": now})


def store_event(session: Session, event: dict[str, Any], now: datetime) -> bool:
    """Store an event fetched from Stripe (the reconciler's path); True if it was new."""
    created = event.get("created")
    statement = insert(StripeEvent).values(
        id=event["id"], type=event["type"], livemode=bool(event.get("livemode")), payload=event,
        stripe_created_at=datetime.fromtimestamp(created, now.tzinfo) if created else None,
        received_at=now, status=EventStatus.RECEIVED, attempts=0,
    ).on_conflict_do_nothing(index_elements=[StripeEvent.id]).returning(StripeEvent.id)
    return session.scalar(statement) is not None


def record_event_failure(session: Session, event_id: str, error: str, final: bool) -> None:
    """Count a failed processing attempt; on the last one the event is failed for good."""
    values: dict[str, Any] = {"attempts": StripeEvent.attempts + 1, "error": error[:4000]}
    if final:
        values["status"] = EventStatus.FAILED
    session.execute(update(StripeEvent).where(StripeEvent.id == event_id,
                                              StripeEvent.status.in_([EventStatus.RECEIVED, EventStatus.FAILED]))
                    .values(**values))


def list_due_received_events(session: Session, now: datetime, grace: timedelta, limit: int) -> list[str]:
    """Ids of events still `received` past the grace period, oldest first."""
    statement = (
        select(StripeEvent.id).where(StripeEvent.status == EventStatus.RECEIVED,
                                     StripeEvent.received_at < now - grace)
        .order_by(StripeEvent.received_at).limit(limit)
    )
    return list(session.scalars(statement))


def find_existing_event_ids(session: Session, event_ids: Sequence[str]) -> set[str]:
    if not event_ids:
        return set()
    return set(session.scalars(select(StripeEvent.id).where(StripeEvent.id.in_(list(event_ids)))))


def list_due_unsettled_payments(session: Session, now: datetime, status: PaymentStatus, older_than: timedelta,
                                limit: int) -> list[int]:
    """Ids of payments with a PaymentIntent held in this status longer than expected: never reconciled first,
    then least recently reconciled, then oldest update; so a payment Stripe keeps waiting on goes to the back."""
    statement = (
        select(Payment.id).where(Payment.status == status, Payment.stripe_payment_intent_id.is_not(None),
                              Payment.updated_at < now - older_than)
        .order_by(Payment.reconciled_at.asc().nulls_first(), Payment.updated_at).limit(limit)
    )
    return list(session.scalars(statement))


def mark_reconciled(session: Session, payment_id: int, now: datetime) -> None:
    """Record that the reconciler asked Stripe about the payment, leaving updated_at as it is."""
    session.execute(update(Payment).where(Payment.id == payment_id)
                    .values(reconciled_at=now, updated_at=Payment.updated_at)
                    .execution_options(synchronize_session=False))


def lock_payment_for_intent(session: Session, intent_id: str | None, payment_id: int | None) -> Payment | None:
    """The payment a PaymentIntent belongs to, by intent id or else by our id in its metadata, locked."""
    if intent_id:
        found = lock_payment_by(session, "stripe_payment_intent_id", intent_id)
        if found is not None:
            return found
    if payment_id is None:
        return None
    return lock_payment_by(session, "id", payment_id)


def lock_payment_for_charge(session: Session, charge_id: str | None, intent_id: str | None,
                            payment_id: int | None) -> Payment | None:
    """The payment a charge belongs to: by charge id, then intent id, then metadata; locked."""
    if charge_id:
        found = lock_payment_by(session, "stripe_charge_id", charge_id)
        if found is not None:
            return found
    return lock_payment_for_intent(session, intent_id, payment_id)


# A refund in these statuses stays in them: its money never left, whatever a late event says.
REFUND_FINAL = ("failed", "canceled")
# Statuses a refund only passes through: a late event saying one never undoes an outcome (Stripe
# can still fail a refund it reported succeeded, so succeeded is not in REFUND_FINAL).
REFUND_WAITING = ("pending", "requires_action")


def upsert_refund(session: Session, *, payment_id: int, stripe_refund_id: str, amount_minor: int, currency: str,
                  status: str, reason: str | None) -> bool:
    """Record a Stripe refund, its status moving only forwards; True if new."""
    statement = insert(Refund).values(payment_id=payment_id, stripe_refund_id=stripe_refund_id,
                                      amount_minor=amount_minor, currency=currency, status=status, reason=reason)
    statement = statement.on_conflict_do_update(
        index_elements=[Refund.stripe_refund_id], set_={"status": statement.excluded.status},
        where=Refund.status.not_in(REFUND_FINAL)
        & (statement.excluded.status.not_in(REFUND_WAITING) | Refund.status.in_(REFUND_WAITING)),
    ).returning(text("(xmax = 0) AS inserted"))
    return bool(session.scalar(statement))


def find_dispute(session: Session, stripe_dispute_id: str) -> Dispute | None:
    return session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == stripe_dispute_id))


def insert_dispute(session: Session, *, payment_id: int, stripe_dispute_id: str, amount_minor: int, currency: str,
                   reason: str | None, status: str) -> Dispute:
    """The dispute row, created on first sight (unique Stripe id makes repeats harmless)."""
    session.execute(
        insert(Dispute).values(payment_id=payment_id, stripe_dispute_id=stripe_dispute_id, amount_minor=amount_minor,
                               currency=currency, reason=reason, status=status)
        .on_conflict_do_nothing(index_elements=[Dispute.stripe_dispute_id])
    )
    return session.scalar(
        select(Dispute).where(Dispute.stripe_dispute_id == stripe_dispute_id).with_for_update()
        .execution_options(populate_existing=True)
    )


def lock_method_by_stripe_id(session: Session, stripe_payment_method_id: str | None) -> PaymentMethod | None:
    if not stripe_payment_method_id:
        return None
    return session.scalar(
        select(PaymentMethod).where(PaymentMethod.stripe_payment_method_id == stripe_payment_method_id)
        .with_for_update().execution_options(populate_existing=True)
    )


def lock_method_for_setup_intent(session: Session, setup_intent_id: str, stripe_payment_method_id: str | None
                                 ) -> PaymentMethod | None:
    """The method a SetupIntent set up: by SetupIntent id, else by its PaymentMethod id; locked."""
    found = session.scalar(
        select(PaymentMethod).where(PaymentMethod.stripe_setup_intent_id == setup_intent_id)
        .with_for_update().execution_options(populate_existing=True)
    )
    return found if found is not None else lock_method_by_stripe_id(session, stripe_payment_method_id)
