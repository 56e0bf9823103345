"""Payment methods."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import PaymentMethod
from tasks.domain.states import MethodStatus


def lock_method_by_stripe_id(session: Session, stripe_payment_method_id: str | None) -> PaymentMethod | None:
    if not stripe_payment_method_id:
        return None
    return session.scalar(
        select(PaymentMethod).where(PaymentMethod.stripe_payment_method_id == stripe_payment_method_id)
        .with_for_update().execution_options(populate_existing=True)
    )


def lock_method_for_setup_intent(session: Session, setup_intent_id: str, stripe_payment_method_id: str | None
                                 ) -> PaymentMethod | None:
    """The method a SetupIntent set up: by SetupIntent id, else by its PaymentMethod id; locked."""
    found = session.scalar(
        select(PaymentMethod).where(PaymentMethod.stripe_setup_intent_id == setup_intent_id)
        .with_for_update().execution_options(populate_existing=True)
    )
    return found if found is not None else lock_method_by_stripe_id(session, stripe_payment_method_id)


def find_method(session: Session, method_id: int) -> PaymentMethod | None:
    return session.get(PaymentMethod, method_id)


def lock_method(session: Session, method_id: int) -> PaymentMethod | None:
    """The method locked FOR UPDATE and freshly loaded."""
    return session.scalar(select(PaymentMethod).where(PaymentMethod.id == method_id).with_for_update()
                          .execution_options(populate_existing=True))


def lock_due_unsynced_methods(session: Session, now: datetime, grace: timedelta, limit: int) -> list[int]:
    """Ids of pending methods never synced with Stripe (no SetupIntent) and untouched for longer than grace,
    locked; ones others hold are passed over."""
    return list(session.scalars(
        select(PaymentMethod.id)
        .where(PaymentMethod.status == MethodStatus.VERIFICATION_PENDING, PaymentMethod.stripe_setup_intent_id.is_(None),
               PaymentMethod.updated_at < now - grace)
        .order_by(PaymentMethod.id).limit(limit).with_for_update(skip_locked=True)
    ))


def mark_methods_touched(session: Session, method_ids: Sequence[int], now: datetime) -> None:
    """Set updated_at, so a sweep passes over these methods for another grace period."""
    session.execute(update(PaymentMethod).where(PaymentMethod.id.in_(method_ids)).values(updated_at=now))
