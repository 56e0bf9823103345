"""Stripe event handlers, one module per object family, and the dispatch by event type."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session

from tasks.domain.events import route_for
from tasks.handlers import disputes, mandates, payment_intents, payment_methods, refunds, setup_intents
from tasks.handlers.common import Handled, ignored

Handler = Callable[[Session, dict[str, Any], datetime], Handled]

HANDLERS: dict[str, Handler] = {
    "payment_intents": payment_intents.handle,
    "refunds": refunds.handle,
    "disputes": disputes.handle,
    "setup_intents": setup_intents.handle,
    "payment_methods": payment_methods.handle,
    "mandates": mandates.handle,
}


def handle_event(session: Session, event: dict[str, Any], now: datetime) -> Handled:
    """Apply one stored event; unknown types are ignored."""
    family = route_for(event.get("type", ""))
    if family is None:
        return ignored(f"event type {event.get('type')} is not handled")
    return HANDLERS[family](session, event, now)
