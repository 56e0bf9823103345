"""Payment methods."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import PaymentMethod


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
