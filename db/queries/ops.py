"""Operator actions' conditional moves: a Stripe event back to waiting, an email back to the outbox."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Email, StripeEvent
from tasks.domain.states import EmailStatus, EventStatus


def move_event_to_received(session: Session, event_id: str, *, from_: str) -> str | None:
    """The event's status after moving it from from_ to received (unchanged if it was not in from_); None if
    there is no such event. The row stays locked until commit."""
    moved = session.scalar(
        update(StripeEvent)
        .where(StripeEvent.id == event_id, StripeEvent.status == from_)
        .values(status=EventStatus.RECEIVED, processed_at=None)
        .returning(StripeEvent.status)
    )
    return moved or session.scalar(select(StripeEvent.status).where(StripeEvent.id == event_id))


def move_email_to_queued(session: Session, email_id: int, *, from_: str) -> str | None:
    """As move_event_to_received, for an outbox row going back to queued."""
    moved = session.scalar(
        update(Email)
        .where(Email.id == email_id, Email.status == from_)
        .values(status=EmailStatus.QUEUED)
        .returning(Email.status)
    )
    return moved or session.scalar(select(Email.status).where(Email.id == email_id))
