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
from tasks.domain.states import EVENT_DONE, EventStatus

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
# The event a message names (locked unless done: a done event's status is final and its payload not
# needed; waited for if someone holds it, or passed over), then up to :others fresh waiting events no one
# holds, oldest first, locked (remit_claim_waiting_events, migration 0015: an ordered scan of the partial
# index). One statement, the named event first; `named` tells the rows apart.
_TAKE_EVENTS_SQL = (
    "WITH named AS MATERIALIZED (SELECT id, status, payload FROM stripe_events"
    " WHERE id = :id AND status NOT IN ({done}) FOR UPDATE{skip})"
    " SELECT true AS named, id, status, payload FROM named"
    " UNION ALL SELECT true, id, status, NULL FROM stripe_events WHERE id = :id AND status IN ({done})"
    " UNION ALL SELECT false, c.id, c.status, c.payload FROM remit_claim_waiting_events(:id, :others) AS c"
)
_DONE_SQL = ", ".join(f"'{status}'" for status in EVENT_DONE)
_TAKE_EVENTS = {
    wait: text(_TAKE_EVENTS_SQL.format(done=_DONE_SQL, skip="" if wait else " SKIP LOCKED"))
    for wait in (True, False)
}
_MARK_EVENTS = text(
    "UPDATE stripe_events SET status = done.status, error = done.note, processed_at = :now,"
    " attempts = stripe_events.attempts + 1"
    " FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:notes AS text[]))"
    " AS done (id, status, note)"
    " WHERE stripe_events.id = done.id"
)


def find_event(session: Session, event_id: str) -> StripeEvent | None:
    return session.get(StripeEvent, event_id)


def take_events(
    session: Session, event_id: str, others: int, wait: bool = True
) -> tuple[Row | None, list[Row]]:
    """The named event's (id, status, payload) and up to `others` more waiting events', in one statement.

    The named event is locked FOR UPDATE (two deliveries of one event run in turn) unless it is processed
    or ignored already: then it comes back unlocked, with no payload. It is None when it does not exist,
    when it was finished while this statement waited for it, and (without wait) when another transaction
    holds it. The others are fresh events (never attempted) no one else holds, locked: an event that failed
    before is left to its own message, so it cannot hold back a batch twice.
    """
    rows = session.connection().execute(_TAKE_EVENTS[wait], {"id": event_id, "others": others}).all()
    named = next((row for row in rows if row.named), None)
    return named, [row for row in rows if not row.named]


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
