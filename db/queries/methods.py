"""Payment methods."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import bindparam, func, null, select, update
from sqlalchemy.orm import Session

from db.models import PaymentMethod
from db.queries._views import _view
from tasks.domain.states import MethodStatus


def lock_method_by_stripe_id(session: Session, stripe_payment_method_id: str | None) -> PaymentMethod | None:
    if not stripe_payment_method_id:
        return None
    return session.scalar(
        select(PaymentMethod)
        .where(PaymentMethod.stripe_payment_method_id == stripe_payment_method_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def lock_method_for_setup_intent(
    session: Session, setup_intent_id: str, stripe_payment_method_id: str | None
) -> PaymentMethod | None:
    """The method a SetupIntent set up: by SetupIntent id, else by its PaymentMethod id; locked."""
    found = session.scalar(
        select(PaymentMethod)
        .where(PaymentMethod.stripe_setup_intent_id == setup_intent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found if found is not None else lock_method_by_stripe_id(session, stripe_payment_method_id)


def find_method(session: Session, method_id: int) -> PaymentMethod | None:
    return session.get(PaymentMethod, method_id)


_METHODS = PaymentMethod.__table__
_FIND_METHOD_ROW = select(_METHODS).where(_METHODS.c.id == bindparam("id"))


def find_method_row(session: Session, method_id: int) -> SimpleNamespace | None:
    """The method's columns as plain values, for requests, which only read them: no mapped object loaded
    (loading one cost a tenth of a payment request). Code that changes the method uses find_method."""
    row = session.connection().execute(_FIND_METHOD_ROW, {"id": method_id}).first()
    return None if row is None else _view(row._mapping, _METHODS, {})


def lock_method(session: Session, method_id: int) -> PaymentMethod | None:
    """The method locked FOR UPDATE and freshly loaded."""
    return session.scalar(
        select(PaymentMethod)
        .where(PaymentMethod.id == method_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def lock_due_unsynced_methods(session: Session, now: datetime, grace: timedelta, limit: int) -> list[int]:
    """Ids of pending methods never synced with Stripe (no SetupIntent) and untouched for longer than grace,
    locked; ones others hold are passed over."""
    return list(
        session.scalars(
            select(PaymentMethod.id)
            .where(
                PaymentMethod.status == MethodStatus.VERIFICATION_PENDING,
                PaymentMethod.stripe_setup_intent_id.is_(None),
                PaymentMethod.updated_at < now - grace,
            )
            .order_by(PaymentMethod.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def mark_methods_touched(session: Session, method_ids: Sequence[int], now: datetime) -> None:
    """Set updated_at, so a sweep passes over these methods for another grace period."""
    session.execute(update(PaymentMethod).where(PaymentMethod.id.in_(method_ids)).values(updated_at=now))


def find_method_by_stripe_id(session: Session, stripe_payment_method_id: str) -> PaymentMethod | None:
    return session.scalar(
        select(PaymentMethod).where(PaymentMethod.stripe_payment_method_id == stripe_payment_method_id)
    )


def list_methods_not_removed(session: Session, account_id: int) -> list[PaymentMethod]:
    """The account's saved methods that were not removed, the default first (one-time ones never show)."""
    return list(
        session.scalars(
            select(PaymentMethod)
            .where(
                PaymentMethod.account_id == account_id,
                PaymentMethod.saved,
                PaymentMethod.status != MethodStatus.REMOVED,
            )
            .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id)
        )
    )


def insert_method(session: Session, method: PaymentMethod) -> None:
    """Write a new method now (flushed), so a unique constraint refuses it here."""
    session.add(method)
    session.flush()


def mark_others_not_default(session: Session, account_id: int, method_id: int) -> None:
    """Clear the default flag of the account's other methods (loaded ones included)."""
    session.execute(
        update(PaymentMethod)
        .where(
            PaymentMethod.account_id == account_id, PaymentMethod.is_default, PaymentMethod.id != method_id
        )
        .values(is_default=False)
        .execution_options(synchronize_session="fetch")
    )


def count_other_methods(session: Session, account_id: int, method_id: int, statuses: Sequence[str]) -> int:
    """How many of the account's methods besides this one are in these statuses."""
    return session.scalar(
        select(func.count())
        .select_from(PaymentMethod)
        .where(
            PaymentMethod.account_id == account_id,
            PaymentMethod.id != method_id,
            PaymentMethod.saved,
            PaymentMethod.status.in_(statuses),
        )
    )


def clear_old_mandate_details(session: Session, removed_before: datetime, limit: int) -> int:
    """Forget the IP and user agent, billing details and nickname of up to `limit` methods removed before
    the cutoff; return how many.

    The mandate's acceptance time and text version stay: they are the record that a mandate existed.
    updated_at is kept as it was, since it dates the removal.
    """
    due = (
        select(PaymentMethod.id)
        .where(
            PaymentMethod.status == MethodStatus.REMOVED,
            PaymentMethod.updated_at < removed_before,
            (PaymentMethod.mandate_ip.is_not(None))
            | (PaymentMethod.mandate_user_agent.is_not(None))
            | (PaymentMethod.billing_details.is_not(None))
            | (PaymentMethod.nickname.is_not(None)),
        )
        .order_by(PaymentMethod.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(PaymentMethod)
        .where(PaymentMethod.id.in_(due))
        .values(
            mandate_ip=None,
            mandate_user_agent=None,
            billing_details=null(),  # SQL NULL: None would store JSON null
            nickname=None,
            updated_at=PaymentMethod.updated_at,
        )
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount
