"""One payment as its customer sees it (method, credit, timeline), and payments waiting for authentication."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from db.models import Account, Credit, Payment, PaymentEvent, PaymentMethod, Seller
from tasks.domain.states import CreditState, MethodKind, PaymentStatus


def find_method_display(session: Session, method_id: int) -> Row | None:
    """(kind, brand, last4, bank_name, stripe_payment_method_id) of a saved method."""
    return session.execute(
        select(
            PaymentMethod.kind,
            PaymentMethod.brand,
            PaymentMethod.last4,
            PaymentMethod.bank_name,
            PaymentMethod.stripe_payment_method_id,
        ).where(PaymentMethod.id == method_id)
    ).first()


# The payment's timeline, oldest first, as one array per column (typed as stored: timestamptz, text,
# boolean, jsonb), so the receipt's row carries it and no second statement reads it.
_TIMELINE = {
    name: select(func.array_agg(aggregate_order_by(column, PaymentEvent.id)))
    .where(PaymentEvent.payment_id == Payment.id)
    .correlate(Payment)
    .scalar_subquery()
    .label(f"timeline_{name}")
    for name, column in (
        ("at", PaymentEvent.at),
        ("from_status", PaymentEvent.from_status),
        ("to_status", PaymentEvent.to_status),
        ("applied", PaymentEvent.applied),
        ("detail", PaymentEvent.detail),
    )
}


# Built once: a statement with five correlated subqueries cost more to build and key for the compiled
# cache than to run, at every receipt.
_SHOWN = (
    select(
        Payment.id,
        Payment.status,
        Payment.reference,
        Payment.credit_used_minor,
        Payment.refunded_minor,
        Payment.failure_code,
        Payment.failure_message,
        Payment.created_at,
        Payment.finished_at,
        PaymentMethod.kind.label("method_kind"),
        PaymentMethod.brand.label("method_brand"),
        PaymentMethod.last4.label("method_last4"),
        PaymentMethod.bank_name.label("method_bank_name"),
        *_TIMELINE.values(),
    )
    .outerjoin(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
    .where(Payment.id == bindparam("id"))
)


def find_shown(session: Session, payment_id: int) -> Row | None:
    """What a receipt shows of the payment beyond its request, its method's display (method_kind,
    method_brand, method_last4, method_bank_name: None when credit paid it all) and its timeline (see
    timeline_of), in one row. It reads the rows as written: every caller writes through statements (or
    has flushed its mapped objects) before asking."""
    return session.connection().execute(_SHOWN, {"id": payment_id}).first()


def timeline_of(shown: Row) -> list[tuple]:
    """(at, from_status, to_status, applied, detail) of each timeline line of a find_shown row, in order."""
    columns = [getattr(shown, f"timeline_{name}") or [] for name in _TIMELINE]
    return list(zip(*columns, strict=True))


def sum_credit_created(session: Session, payment_id: int) -> int:
    """What the payment left as credit on the account, unless that credit was reversed (never existed)."""
    return session.scalar(
        select(func.coalesce(func.sum(Credit.amount_minor), 0)).where(
            Credit.payment_id == payment_id, Credit.state != CreditState.REVERSED
        )
    )


def has_timeline_mark(session: Session, payment_id: int, key: str) -> bool:
    """Whether a timeline line of the payment carries this detail key."""
    return (
        session.scalar(
            select(func.count())
            .select_from(PaymentEvent)
            .where(PaymentEvent.payment_id == payment_id, PaymentEvent.detail.has_key(key))
        )
        > 0
    )


def _waiting_since():
    """When a payment last entered requires_action, the start of its authentication window: read per
    waiting payment through the timeline's payment_id index, never by scanning the whole timeline."""
    return (
        select(func.max(PaymentEvent.at))
        .where(PaymentEvent.payment_id == Payment.id)
        .where(PaymentEvent.to_status == PaymentStatus.REQUIRES_ACTION, PaymentEvent.applied)
        # A transition into it, not a note written while it waited (which moves no status).
        .where(PaymentEvent.from_status.is_distinct_from(PaymentEvent.to_status))
        .correlate(Payment)
        .scalar_subquery()
    )


def find_waiting_since(session: Session, payment_id: int) -> Row | None:
    """(since, off_session, seller's on-session hours, seller's off-session hours) of a waiting card
    payment."""
    return session.execute(_WAITING.where(Payment.id == payment_id)).first()


def list_waiting_for_authentication(
    session: Session, before: datetime, limit: int, after: tuple[datetime, int] | None = None
) -> list[Row]:
    """(id, since, off_session, seller hours...) of card payments waiting for authentication since before
    a moment, longest waiting first; after (since, id) of the last row of the previous page."""
    waiting = _WAITING.subquery()
    statement = select(waiting).where(waiting.c.since < before)
    if after is not None:
        statement = statement.where(tuple_(waiting.c.since, waiting.c.id) > after)
    return list(session.execute(statement.order_by(waiting.c.since, waiting.c.id).limit(limit)))


_WAITING = (
    select(
        Payment.id,
        _waiting_since().label("since"),
        Payment.scheduled_for.is_not(None).label("off_session"),
        Seller.auth_window_on_session_hours,
        Seller.auth_window_off_session_hours,
    )
    .join(Account, Account.id == Payment.account_id)
    .join(Seller, Seller.id == Account.seller_id)
    # A bank debit waits on microdeposits for days, on Stripe's own clock: no card window applies.
    .join(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
    .where(Payment.status == PaymentStatus.REQUIRES_ACTION, PaymentMethod.kind == MethodKind.CARD)
)
