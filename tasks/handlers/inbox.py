"""Processing one stored event: apply it and mark it in one transaction; count failures in another."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from db.event_queries import lock_event, mark_event, record_event_failure
from db.session import transaction
from tasks.domain.states import EventStatus
from tasks.handlers import handle_event

DONE = (EventStatus.PROCESSED, EventStatus.IGNORED)


def process_event(event_id: str, now: datetime) -> str | None:
    """Apply a stored event unless it is done already; return its new status (None if nothing to do)."""
    with transaction() as session:
        row = lock_event(session, event_id)
        if row is None or row.status in DONE:
            return None
        handled = handle_event(session, row.payload, now)
        mark_event(session, event_id, handled.status, handled.note, now)
        return handled.status


@contextmanager
def counting_failures(event_id: str, final: bool) -> Iterator[None]:
    """Keep attempts and the last error on the event row; the last failure marks it failed."""
    try:
        yield
    except BaseException as exc:
        with transaction() as session:
            record_event_failure(session, event_id, f"{type(exc).__name__}: {exc}", final)
        raise
