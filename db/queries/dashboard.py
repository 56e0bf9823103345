"""Read queries behind the dashboard's lists and detail pages; each page is a few queries, never one per row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (Account, Allocation, Dispute, Email, FailedJob, Invoice, Payment, PaymentEvent,
                       PaymentMethod, Refund)

# A screenful that still renders in milliseconds.
PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    page: int
    total: int

    @property
    def pages(self) -> int:
        return max((self.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)


def list_failed_jobs(session: Session, *, queue: str = "", actor: str = "", status: str = "",
                     page: int = 1) -> Page:
    """Dead letters, newest first, filtered by exact queue, actor and status when given."""
    where = [c for c, v in ((FailedJob.queue == queue, queue), (FailedJob.actor == actor, actor),
                            (FailedJob.status == status, status)) if v]
    total = session.scalar(select(func.count()).select_from(FailedJob).where(*where))
    rows = session.scalars(select(FailedJob).where(*where).order_by(FailedJob.failed_at.desc(), FailedJob.id.desc())
                           .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return Page(list(rows), page, total)


def find_failed_job(session: Session, job_id: int) -> FailedJob | None:
    return session.get(FailedJob, job_id)


def list_payments(session: Session, now: datetime, *, status: str = "", account_number: str = "",
                  older_than_seconds: int = 0, page: int = 1) -> Page:
    """Payments with their account, newest first; age is time since creation."""
    where = []
    if status:
        where.append(Payment.status == status)
    if account_number:
        where.append(Account.number == account_number)
    if older_than_seconds:
        where.append(Payment.created_at < now - timedelta(seconds=older_than_seconds))
    base = select(Payment, Account).join(Account, Account.id == Payment.account_id).where(*where)
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    rows = session.execute(base.order_by(Payment.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return Page([tuple(r) for r in rows], page, total)


@dataclass(frozen=True)
class PaymentDetail:
    payment: Payment
    account: Account
    method: PaymentMethod
    allocations: list[tuple[Allocation, Invoice]]
    refunds: list[Refund]
    disputes: list[Dispute]
    emails: list[Email]
    events: list[PaymentEvent]


def find_payment_detail(session: Session, payment_id: int) -> PaymentDetail | None:
    """A payment with everything that hangs off it, the timeline oldest first."""
    found = session.execute(
        select(Payment, Account, PaymentMethod).join(Account, Account.id == Payment.account_id)
        .join(PaymentMethod, PaymentMethod.id == Payment.payment_method_id).where(Payment.id == payment_id)).first()
    if found is None:
        return None
    payment, account, method = found
    allocations = session.execute(select(Allocation, Invoice).join(Invoice, Invoice.id == Allocation.invoice_id)
                                  .where(Allocation.payment_id == payment_id).order_by(Allocation.id)).all()
    return PaymentDetail(
        payment=payment, account=account, method=method,
        allocations=[tuple(r) for r in allocations],
        refunds=_children(session, Refund, payment_id),
        disputes=_children(session, Dispute, payment_id),
        emails=_children(session, Email, payment_id),
        events=list(session.scalars(select(PaymentEvent).where(PaymentEvent.payment_id == payment_id)
                                    .order_by(PaymentEvent.at, PaymentEvent.id))),
    )


def _children(session: Session, model, payment_id: int) -> list:
    return list(session.scalars(select(model).where(model.payment_id == payment_id).order_by(model.id)))
