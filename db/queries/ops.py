"""Operator actions' conditional moves: a Stripe event back to waiting, an email back to the outbox."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Email, StripeEvent
from tasks.domain.states import EmailStatus, EventStatus


def move_event_to_received(session: Session, event_id: str, *, from_: str) -> bool | None:
    """Move the event from from_ to received: True if it moved, False if it is in another status, None if
    there is no such event. A moved row stays locked until commit."""
    moved = session.scalar(
        update(StripeEvent)
        .where(StripeEvent.id == event_id, StripeEvent.status == from_)
        .values(status=EventStatus.RECEIVED, processed_at=None)
        .returning(StripeEvent.id)
    )
    if moved is not None:
        return True
    return False if session.scalar(select(StripeEvent.id).where(StripeEvent.id == event_id)) else None


def move_email_to_queued(session: Session, email_id: int, *, from_: str) -> bool | None:
    """As move_event_to_received, for an outbox row going back to queued."""
    moved = session.scalar(
        update(Email)
        .where(Email.id == email_id, Email.status == from_)
        .values(status=EmailStatus.QUEUED)
        .returning(Email.id)
    )
    if moved is not None:
        return True
    return False if session.scalar(select(Email.id).where(Email.id == email_id)) else None
