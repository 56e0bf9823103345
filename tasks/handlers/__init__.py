"""Stripe event handlers, one module per object family, and the dispatch by event type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tasks.domain.events import route_for
from tasks.handlers import disputes, mandates, payment_intents, payment_methods, refunds, setup_intents
from tasks.handlers.common import Handled, ignored

Handler = Callable[[Session, dict[str, Any], datetime], Handled]
BatchHandler = Callable[[Session, Sequence[dict[str, Any]], datetime], list[Handled]]

# Families whose events are applied together: one lock and a few set-wise writes for all of them.
BATCH_HANDLERS: dict[str, BatchHandler] = {
    "payment_intents": payment_intents.handle_batch,
    "refunds": refunds.handle_batch,
}
HANDLERS: dict[str, Handler] = {
    "disputes": disputes.handle,
    "setup_intents": setup_intents.handle,
    "payment_methods": payment_methods.handle,
    "mandates": mandates.handle,
}


def handle_events(session: Session, events: Sequence[dict[str, Any]], now: datetime) -> list[Handled]:
    """Apply stored events in one transaction; how each ended, in the order given.

    The batch families go first, all their events at once; then every other event, one by one. Each
    handler reads what the ones before it wrote, and events are order-independent by design
    (transitions only move forwards), so applying a family first changes no outcome.
    """
    handled: list[Handled | None] = [None] * len(events)
    families = [route_for(event.get("type", "")) for event in events]
    for family, batch_handler in BATCH_HANDLERS.items():
        positions = [n for n, f in enumerate(families) if f == family]
        if positions:
            for n, outcome in zip(positions, batch_handler(session, [events[n] for n in positions], now)):
                handled[n] = outcome
    for n, (event, family) in enumerate(zip(events, families)):
        if family is None:
            handled[n] = ignored(f"event type {event.get('type')} is not handled")
        elif family in HANDLERS:
            handled[n] = HANDLERS[family](session, event, now)
    return handled  # type: ignore[return-value]
