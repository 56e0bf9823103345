"""Sweepers for payments: rows are the truth, so anything left behind is found and nudged again."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, literal, or_, select

from db.models import Account, Payment, Seller
from db.session import on_commit, transaction
from tasks.domain.states import PaymentStatus
from tasks.ledger import apply_transition

# A pending payment's message normally runs within a second; a minute means the send was lost.
PENDING_GRACE = timedelta(seconds=60)
# Longer than execute_payment's own retry backoff (max 60 s), so the sweeper only catches given-up work.
SUBMITTING_GRACE = timedelta(minutes=3)
# Bounds one pass; the next pass takes the rest.
SWEEP_LIMIT = 500


def sweep_payments(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Re-send execute_payment for payments stuck pending or submitting; return counts by status."""
    from tasks.payments import execute_payment
    from workers.broker import send_all

    with transaction() as session:
        rows = session.execute(
            select(Payment.id, Payment.status).where(or_(
                and_(Payment.status == PaymentStatus.PENDING, Payment.updated_at < now - PENDING_GRACE),
                and_(Payment.status == PaymentStatus.SUBMITTING,
                     func.coalesce(Payment.last_attempt_at, Payment.updated_at) < now - SUBMITTING_GRACE),
            )).order_by(Payment.id).limit(limit)
        ).all()
    counts = {"pending": 0, "submitting": 0}
    send_all([execute_payment.message(payment_id) for payment_id, _ in rows])
    for _, status in rows:
        counts[status] += 1
    return counts


def dispatch_due_payments(now: datetime, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Move scheduled payments due today (at the seller) to pending and send them, after commit."""
    from tasks.payments import execute_payment
    from workers.broker import send_all

    seller_today = func.date(func.timezone(Seller.timezone, literal(now)))
    with transaction() as session:
        due = list(session.scalars(
            select(Payment).join(Account, Account.id == Payment.account_id).join(Seller, Seller.id == Account.seller_id)
            .where(Payment.status == PaymentStatus.SCHEDULED, Payment.scheduled_for <= seller_today)
            .order_by(Payment.scheduled_for, Payment.id).limit(limit)
            .with_for_update(of=Payment, skip_locked=True)
        ))
        for payment in due:
            apply_transition(session, payment, PaymentStatus.PENDING, source="clock", now=now)
        messages = [execute_payment.message(payment.id) for payment in due]
        on_commit(session, lambda: send_all(messages))
    return {"dispatched": len(due)}
