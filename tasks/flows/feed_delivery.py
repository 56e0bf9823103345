"""Delivering the ledger feed: each seller's events posted, signed, one at a time in sequence order.

One deliverer per seller holds a lease on its endpoint. An event that fails stops the seller's feed (so the
receiver never sees a later one first) and is retried with backoff; after three days it is abandoned, the
feed goes on, and the receiver sees the gap in the sequence numbers (ops can replay it).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from db.models import LedgerEvent
from db.queries import feed_endpoints as endpoint_rows
from db.queries import ledger_events as event_rows
from db.session import transaction
from tasks.domain import feed as rules
from tasks.domain.states import FeedDeliveryStatus as D
from tasks.flows import messages
from tasks.gateways.feed_http import Posted, post_event

# Events read and recorded per transaction: a crash re-posts at most this many (receivers dedupe by id).
PAGE_EVENTS = 50
# Longer than a page can take (PAGE_EVENTS x the gateway's 10 s timeout); renewed with every page.
LEASE = timedelta(minutes=10)
# A pass posts for at most this long, then sends itself again: well inside the lease and the actor's time
# limit (tasks/feed.py), which the pass's fixed `now` is measured from.
PASS_SECONDS = 240
# Endpoints the sweeper nudges per pass.
SWEEP_LIMIT = 500


@dataclass
class Run:
    """A deliverer's progress through one seller's events."""

    seller_id: int
    url: str
    secrets: list[str]
    cursor: int
    delivered: int = 0
    stopped: bool = False


def deliver_feed(seller_id: int, now: datetime | None = None) -> int:
    """Post the seller's undelivered events in order until done or one fails; how many were delivered."""
    now = now or datetime.now(UTC)
    with transaction() as session:
        leased = endpoint_rows.lease_endpoint(session, seller_id, now, now + LEASE)
    if leased is None:
        return 0
    run = Run(seller_id, leased.url, list(leased.secrets), leased.delivered_sequence)
    retry_at = None
    ends = time.monotonic() + PASS_SECONDS
    try:
        while not run.stopped and time.monotonic() < ends:
            with transaction() as session:
                events = event_rows.list_events_after(session, seller_id, run.cursor, PAGE_EVENTS)
            if not events:
                break
            retry_at = _deliver_page(run, events, now)
    finally:
        with transaction() as session:
            endpoint_rows.end_lease(
                session, seller_id, {"delivered_sequence": run.cursor, "next_attempt_at": retry_at}
            )
    if not run.stopped and _behind(seller_id, run.cursor):
        messages.send_now("deliver_ledger_events", [(seller_id,)])  # written while we held the lease
    return run.delivered


def _behind(seller_id: int, cursor: int) -> bool:
    with transaction() as session:
        return event_rows.find_last_sequence(session, seller_id) > cursor


def _deliver_page(run: Run, events: list[LedgerEvent], now: datetime) -> datetime | None:
    """Post the page's events in order, then record them; the time to retry if one failed."""
    done: list[dict[str, Any]] = []
    failed: tuple[LedgerEvent, Posted] | None = None
    for event in events:
        posted = post(run, event)
        if not rules.delivered(posted.status_code):
            failed = (event, posted)
            break
        done.append(_row(run.seller_id, event, D.SUCCEEDED, posted, now, 1))
        run.cursor = event.sequence
    with transaction() as session:
        if done:
            retried = endpoint_rows.settle_failing_deliveries(
                session, run.seller_id, [done[0]["sequence"]], done[0]["response_code"], now
            )
            endpoint_rows.insert_deliveries(session, [row for row in done if row["sequence"] not in retried])
        retry_at = _record_failure(session, run, *failed, now) if failed else None
        endpoint_rows.renew_lease(session, run.seller_id, run.cursor, now + LEASE)
    run.delivered += len(done)
    return retry_at


def _record_failure(session, run: Run, event: LedgerEvent, posted: Posted, now: datetime) -> datetime | None:
    """Count the failed attempt; abandon the event after three days (the feed goes on), else stop the feed."""
    row = endpoint_rows.lock_failing_delivery(session, run.seller_id, event.sequence)
    if row is None:
        endpoint_rows.insert_deliveries(session, [_row(run.seller_id, event, D.FAILING, posted, now, 1)])
        first, attempts = now, 1
    else:
        row.attempts += 1
        row.response_code, row.last_error, row.last_attempt_at = posted.status_code, posted.error, now
        first, attempts = row.first_attempt_at, row.attempts
    if rules.gives_up(first, now):
        if row is not None:
            row.status = D.ABANDONED
        run.cursor = event.sequence
        return None
    run.stopped = True
    return rules.next_attempt_at(attempts, now)


def post(run: Run, event: LedgerEvent) -> Posted:
    """Sign the event's body with every current secret and post it."""
    body = event_body(event)
    return post_event(run.url, body, rules.signature_header(run.secrets, int(time.time()), body))


def event_body(event: LedgerEvent) -> bytes:
    """The JSON an endpoint receives, and the pull API returns, for one event."""
    return json.dumps(event_json(event), separators=(",", ":")).encode()


def event_json(event: LedgerEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "seller_id": event.seller_id,
        "sequence": event.sequence,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "data": event.data,
    }


def _row(seller_id: int, event: LedgerEvent, status: D, posted: Posted, now: datetime, attempts: int) -> dict:
    return {
        "seller_id": seller_id,
        "event_id": event.id,
        "sequence": event.sequence,
        "replay": False,
        "status": status,
        "attempts": attempts,
        "response_code": posted.status_code,
        "last_error": posted.error,
        "first_attempt_at": now,
        "last_attempt_at": now,
    }


def replay(seller_id: int, first: int, last: int, now: datetime | None = None) -> tuple[int, int]:
    """Post the seller's events first..last again, in order, now; (delivered, failed). The feed's own
    progress is untouched: a replay is for a receiver that lost or skipped events."""
    now = now or datetime.now(UTC)
    with transaction() as session:
        endpoint = endpoint_rows.lock_endpoint(session, seller_id)
        if endpoint is None:
            return 0, 0
        run = Run(seller_id, endpoint.url, list(endpoint.secrets), endpoint.delivered_sequence)
        events = event_rows.list_events_between(session, seller_id, first, last)
    rows = []
    for event in events:
        posted = post(run, event)
        status = D.SUCCEEDED if rules.delivered(posted.status_code) else D.ABANDONED
        rows.append({**_row(seller_id, event, status, posted, now, 1), "replay": True})
    with transaction() as session:
        endpoint_rows.insert_deliveries(session, rows)
    failed = sum(1 for r in rows if r["status"] != D.SUCCEEDED)
    return len(rows) - failed, failed


def nudge_due_endpoints(now: datetime | None = None) -> int:
    """Send a delivery for every endpoint behind and due (a retry's time came, or a nudge was lost)."""
    with transaction() as session:
        sellers = endpoint_rows.list_due_endpoints(session, now or datetime.now(UTC), SWEEP_LIMIT)
    messages.send_now("deliver_ledger_events", [(s,) for s in sellers])
    return len(sellers)
