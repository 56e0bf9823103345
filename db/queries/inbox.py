"""The webhook inbox: stripe_events, claimed, locked and marked by the workers that process them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import StripeEvent
from tasks.domain.retention import REDACTED_KEY
from tasks.domain.states import EventStatus

_EVENTS = StripeEvent.__table__
# The receiver's one statement (db.inbox runs it on its own connections, in psycopg's parameter style).
# Stored when new, and the status of the stored row when not (the same snapshot does not see the
# row this statement inserts, so a new event reads NULL there). Raw JSON goes straight to jsonb.
STORE_DELIVERY = (
    "WITH stored AS (INSERT INTO stripe_events (id, type, livemode, payload, stripe_created_at, received_at,"
    " status, attempts) VALUES (%(id)s, %(type)s, %(livemode)s, CAST(%(payload)s AS jsonb),"
    f" to_timestamp(%(created)s), now(), '{EventStatus.RECEIVED}', 0) ON CONFLICT (id) DO NOTHING"
    " RETURNING id)"
    " SELECT EXISTS (SELECT 1 FROM stored), (SELECT status FROM stripe_events WHERE id = %(id)s)"
)
# The event a message names: waited for if someone holds it, or passed over.
_LOCK_EVENT = {
    True: text("SELECT id, status, payload FROM stripe_events WHERE id = :id FOR UPDATE"),
    False: text("SELECT id, status, payload FROM stripe_events WHERE id = :id FOR UPDATE SKIP LOCKED"),
}
# Other fresh waiting events nobody holds, oldest first.
_CLAIM_WAITING = text(
    f"SELECT id, status, payload FROM stripe_events WHERE status = '{EventStatus.RECEIVED}' AND attempts = 0"
    " AND id <> :id"
    " ORDER BY received_at LIMIT :others FOR UPDATE SKIP LOCKED"
)
_MARK_EVENTS = text(
    "UPDATE stripe_events SET status = done.status, error = done.note, processed_at = :now,"
    " attempts = stripe_events.attempts + 1"
    " FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:notes AS text[]))"
    " AS done (id, status, note)"
    " WHERE stripe_events.id = done.id"
)


def find_event(session: Session, event_id: str) -> StripeEvent | None:
    return session.get(StripeEvent, event_id)


def lock_event(session: Session, event_id: str, wait: bool = True) -> Row | None:
    """(id, status, payload) of the event, locked FOR UPDATE: two deliveries of one event run in turn.

    Without wait, None also when another transaction holds the event.
    """
    return session.connection().execute(_LOCK_EVENT[wait], {"id": event_id}).first()


def lock_waiting_events(session: Session, event_id: str, others: int) -> list[Row]:
    """(id, status, payload) of up to `others` waiting events besides this one, locked.

    Only fresh events (never attempted) no one else holds: an event that failed before is left to its
    own message, so it cannot hold back a batch twice.
    """
    return list(session.connection().execute(_CLAIM_WAITING, {"id": event_id, "others": others}))


def mark_events(session: Session, outcomes: Sequence[tuple[str, str, str | None]], now: datetime) -> None:
    """Record how processing ended for each (event id, status, note), counting the attempt; one statement."""
    ids, statuses, notes = zip(*outcomes)
    session.connection().execute(
        _MARK_EVENTS, {"ids": list(ids), "statuses": list(statuses), "notes": list(notes), "now": now}
    )


def insert_event(session: Session, event: dict[str, Any], now: datetime) -> bool:
    """Store an event fetched from Stripe (the reconciler's path); True if it was new."""
    created = event.get("created")
    statement = (
        insert(StripeEvent)
        .values(
            id=event["id"],
            type=event["type"],
            livemode=bool(event.get("livemode")),
            payload=event,
            stripe_created_at=datetime.fromtimestamp(created, now.tzinfo) if created else None,
            received_at=now,
            status=EventStatus.RECEIVED,
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=[StripeEvent.id])
        .returning(StripeEvent.id)
    )
    return session.scalar(statement) is not None


def mark_event_failed(session: Session, event_id: str, error: str, final: bool) -> None:
    """Count a failed processing attempt; on the last one the event is failed for good."""
    values: dict[str, Any] = {"attempts": StripeEvent.attempts + 1, "error": error[:4000]}
    if final:
        values["status"] = EventStatus.FAILED
    session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id, StripeEvent.status.in_([EventStatus.RECEIVED, EventStatus.FAILED]))
        .values(**values)
    )


def list_due_received_events(session: Session, now: datetime, grace: timedelta, limit: int) -> list[str]:
    """Ids of events still `received` past the grace period, oldest first."""
    statement = (
        select(StripeEvent.id)
        .where(StripeEvent.status == EventStatus.RECEIVED, StripeEvent.received_at < now - grace)
        .order_by(StripeEvent.received_at)
        .limit(limit)
    )
    return list(session.scalars(statement))


def list_known_event_ids(session: Session, event_ids: Sequence[str]) -> set[str]:
    if not event_ids:
        return set()
    return set(session.scalars(select(StripeEvent.id).where(StripeEvent.id.in_(list(event_ids)))))


def lock_payloads_to_redact(session: Session, received_before: datetime, limit: int) -> list[Row]:
    """(id, payload) of handled events received before the cutoff, not yet redacted, oldest first, locked."""
    statement = (
        select(StripeEvent.id, StripeEvent.payload)
        .where(
            StripeEvent.received_at < received_before,
            StripeEvent.status != EventStatus.RECEIVED,
            ~StripeEvent.payload.has_key(REDACTED_KEY),
        )
        .order_by(StripeEvent.received_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(statement))


def replace_payloads(session: Session, payloads: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Write each (event id, payload) back."""
    if payloads:
        session.execute(
            update(StripeEvent.__table__).where(StripeEvent.id == bindparam("event_id")),
            [{"event_id": event_id, "payload": payload} for event_id, payload in payloads],
        )
