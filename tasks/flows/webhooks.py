"""Processing stored events: apply them and mark them in one transaction; count failures in another.

A message names one event. Its transaction also takes up to BATCH_SIZE - 1 other waiting events
that no one else holds, so a backlog drains at the cost of one commit per batch instead of one per
event, and every worker thread with a message has work while a backlog lasts: the message of an
event already applied finds it done and takes others (measured: draining a backlog without that
ran at half the rate). When another batch holds the named event right now, the message applies
other waiting events instead, then waits for that batch and looks again. Should
anything in a batch fail, the batch is rolled back and the named event is applied alone: one bad
event never holds back another, and the events of the rolled-back batch are still waiting for their
own messages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from db.queries import inbox as inbox_rows
from db.session import transaction
from tasks.domain.states import EVENT_DONE
from tasks.handlers import handle_events

_log = logging.getLogger(__name__)

# Events one transaction applies at most. Draining an 8,000-event backlog on 2 cores (2 processes x
# 2 threads) ran at 470/s with 10, 650/s with 20, 1,000/s with 50, 1,350/s with 100 and 1,230/s with
# 200: most of an event's cost is per transaction and per scan for waiting events. A batch of 100
# holds its payments locked for a few hundred milliseconds at most, well inside the 5 s lock timeout.
BATCH_SIZE = 100


def process_event(event_id: str, now: datetime, batch_size: int = BATCH_SIZE) -> str | None:
    """Apply a stored event unless it is done already, with up to batch_size - 1 other waiting events.

    Returns the named event's new status (None if it had nothing to do).
    """
    if batch_size > 1:
        try:
            status = _apply(event_id, now, batch_size - 1, wait=False)
            if status is not _BUSY:
                return status
            # Another batch holds the named event (this transaction took other waiting events meanwhile):
            # wait for that batch and see whether it applied the event.
            return _apply(event_id, now, batch_size - 1, wait=True)
        except Exception as exc:  # the named event alone decides whether this message failed
            _log.info(
                "batch with event %s rolled back (%s: %s); applying it alone",
                event_id,
                type(exc).__name__,
                exc,
            )
    return _apply(event_id, now, 0, wait=True)


_BUSY = "busy"


def _apply(event_id: str, now: datetime, others: int, wait: bool) -> str | None:
    """One transaction: the named event (if waiting), up to `others` more; _BUSY if the named one was held."""
    with transaction() as session:
        named, claimed = inbox_rows.take_events(session, event_id, others, wait=wait)
        waiting = [
            row for row in ([named] if named is not None else []) + claimed if row.status not in EVENT_DONE
        ]
        waiting.sort(key=_lock_order)
        handled = handle_events(session, [row.payload for row in waiting], now) if waiting else []
        if waiting:
            inbox_rows.mark_events(
                session, [(row.id, h.status, h.note) for row, h in zip(waiting, handled)], now
            )
    if named is None:
        return _BUSY if not wait else None
    return next((h.status for row, h in zip(waiting, handled) if row.id == event_id), None)


def _lock_order(row: Row) -> str:
    """Events about one PaymentIntent next to each other, and intents in one order across batches.

    Two batches then take the payments they share in the same order, which keeps them from waiting
    on each other in a cycle; should they deadlock anyway, one rolls back and applies its event alone.
    """
    subject: Any = row.payload.get("data", {}).get("object", {})
    intent = subject.get("payment_intent") if isinstance(subject, dict) else None
    if isinstance(intent, dict):
        intent = intent.get("id")
    return str(intent or (subject.get("id") if isinstance(subject, dict) else "") or "")


@contextmanager
def counting_failures(event_id: str, final: bool) -> Iterator[None]:
    """Keep attempts and the last error on the event row; the last failure marks it failed."""
    try:
        yield
    except BaseException as exc:
        with transaction() as session:
            inbox_rows.mark_event_failed(session, event_id, f"{type(exc).__name__}: {exc}", final)
        raise
