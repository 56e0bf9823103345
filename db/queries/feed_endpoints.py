"""Sellers' feed endpoints (where, signed how, delivered how far) and the deliveries made to them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, text
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.orm import Session

from db.models import FeedDelivery, FeedEndpoint
from tasks.domain.states import FeedDeliveryStatus

# One deliverer per seller: whoever sets the lease posts the seller's events, in order, until it ends it.
# An endpoint waiting for its next retry is not taken before then.
_LEASE = text(
    "UPDATE feed_endpoints SET leased_until = :until WHERE seller_id = :seller_id"
    " AND (leased_until IS NULL OR leased_until < :now)"
    " AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
    " RETURNING url, secrets, delivered_sequence"
)
_DUE = text(
    "SELECT e.seller_id FROM feed_endpoints e JOIN ledger_sequences s ON s.seller_id = e.seller_id"
    " WHERE s.last_sequence > e.delivered_sequence AND (e.leased_until IS NULL OR e.leased_until < :now)"
    " AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= :now) ORDER BY e.seller_id LIMIT :limit"
)
_STATUS = text(
    "SELECT e.seller_id, e.url, cardinality(e.secrets) AS secrets, e.delivered_sequence,"
    " coalesce(s.last_sequence, 0) AS last_sequence, e.next_attempt_at,"
    " d.sequence AS failing_sequence, d.attempts, d.response_code, d.last_error, d.first_attempt_at"
    " FROM feed_endpoints e LEFT JOIN ledger_sequences s ON s.seller_id = e.seller_id"
    " LEFT JOIN LATERAL (SELECT * FROM feed_deliveries f WHERE f.seller_id = e.seller_id"
    " AND f.status = 'failing' AND NOT f.replay ORDER BY f.sequence DESC LIMIT 1) d ON true"
    " WHERE (:failing_only = false OR d.sequence IS NOT NULL) ORDER BY e.seller_id"
)

_FAILING = text(
    "SELECT count(DISTINCT seller_id), min(first_attempt_at) FROM feed_deliveries"
    " WHERE status = 'failing' AND NOT replay"
)
_SETTLE_FAILING = text(
    "UPDATE feed_deliveries SET status = 'succeeded', attempts = attempts + 1, response_code = :code,"
    " last_error = NULL, last_attempt_at = :now WHERE seller_id = :seller_id AND NOT replay"
    " AND status = 'failing' AND sequence = ANY(CAST(:sequences AS bigint[])) RETURNING sequence"
)


def upsert_endpoint(session: Session, seller_id: int, url: str, secrets: list[str]) -> None:
    """Set the seller's endpoint URL and secrets; how far its feed went is kept."""
    statement = upsert(FeedEndpoint).values(
        seller_id=seller_id, url=url, secrets=secrets, delivered_sequence=0
    )
    session.execute(
        statement.on_conflict_do_update(index_elements=["seller_id"], set_={"url": url, "secrets": secrets})
    )


def lock_endpoint(session: Session, seller_id: int) -> FeedEndpoint | None:
    """The seller's endpoint, locked FOR UPDATE, or None."""
    return session.get(FeedEndpoint, seller_id, with_for_update=True, populate_existing=True)


def lease_endpoint(session: Session, seller_id: int, now: datetime, until: datetime) -> Row | None:
    """(url, secrets, delivered_sequence) if the endpoint is free and due, leased until until; else None."""
    params = {"seller_id": seller_id, "now": now, "until": until}
    return session.connection().execute(_LEASE, params).first()


def end_lease(session: Session, seller_id: int, values: dict[str, Any]) -> None:
    """Release the lease, storing how far the feed went and when to try again."""
    session.query(FeedEndpoint).filter(FeedEndpoint.seller_id == seller_id).update(
        {**values, "leased_until": None}, synchronize_session=False
    )


def renew_lease(session: Session, seller_id: int, delivered_sequence: int, until: datetime) -> None:
    """Store progress and keep the lease until until."""
    session.query(FeedEndpoint).filter(FeedEndpoint.seller_id == seller_id).update(
        {"delivered_sequence": delivered_sequence, "leased_until": until}, synchronize_session=False
    )


def list_due_endpoints(session: Session, now: datetime, limit: int) -> list[int]:
    """Sellers whose endpoint is behind their last event, free and due."""
    return [row[0] for row in session.connection().execute(_DUE, {"now": now, "limit": limit})]


def list_endpoint_status(session: Session, failing_only: bool) -> list[Row]:
    """Every endpoint with its lag and its failing delivery, if any (the ops view)."""
    return list(session.connection().execute(_STATUS, {"failing_only": failing_only}))


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Deliveries as attempted: seller_id, event_id, sequence, replay, status, attempts, response_code,
    last_error, first_attempt_at, last_attempt_at."""
    if rows:
        session.execute(insert(FeedDelivery), list(rows))


def settle_failing_deliveries(
    session: Session, seller_id: int, sequences: Sequence[int], response_code: int, now: datetime
) -> set[int]:
    """Mark the failing deliveries of these events succeeded at one more attempt; their sequences."""
    rows = session.connection().execute(
        _SETTLE_FAILING,
        {"seller_id": seller_id, "sequences": list(sequences), "code": response_code, "now": now},
    )
    return {row[0] for row in rows}


def lock_failing_delivery(session: Session, seller_id: int, sequence: int) -> FeedDelivery | None:
    """The failing (not replayed) delivery of this event, locked, or None."""
    return (
        session.query(FeedDelivery)
        .filter_by(seller_id=seller_id, sequence=sequence, replay=False, status=FeedDeliveryStatus.FAILING)
        .with_for_update()
        .first()
    )


def count_failing_endpoints(session: Session) -> tuple[int, datetime | None]:
    """How many endpoints have a failing delivery, and when the oldest of those first failed."""
    row = session.connection().execute(_FAILING).one()
    return int(row[0]), row[1]
