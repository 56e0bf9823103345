"""Dashboard reads across tables: paged lists, a payment's detail, overview counts; a few queries a page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session

from db.models import (
    Account,
    Allocation,
    BalanceDrift,
    Dispute,
    Email,
    FailedJob,
    Invoice,
    Payment,
    PaymentEvent,
    PaymentMethod,
    Refund,
    ScheduleRun,
    StripeEvent,
)
from db.queries import failed_jobs as failed_job_rows
from tasks.domain.dead_letters import DeadLetterFilter
from tasks.domain.states import PaymentStatus

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


def list_failed_jobs(session: Session, f: DeadLetterFilter, *, page: int = 1) -> Page:
    """Dead letters the filter matches, newest first."""
    total = failed_job_rows.count_failed_jobs(session, f)
    rows = failed_job_rows.list_newest_failed_jobs(session, f, PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return Page(rows, page, total)


def find_failed_job(session: Session, job_id: int) -> FailedJob | None:
    return session.get(FailedJob, job_id)


def list_payments(
    session: Session,
    now: datetime,
    *,
    status: str = "",
    account_number: str = "",
    older_than_seconds: int = 0,
    needs_review: bool = False,
    page: int = 1,
) -> Page:
    """Payments with their account, newest first; age is time since creation."""
    where = [Payment.needs_review.is_(True)] if needs_review else []
    if status:
        where.append(Payment.status == status)
    if account_number:
        where.append(Account.number == account_number)
    if older_than_seconds:
        where.append(Payment.created_at < now - timedelta(seconds=older_than_seconds))
    base = select(Payment, Account).join(Account, Account.id == Payment.account_id).where(*where)
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    rows = session.execute(
        base.order_by(Payment.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
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
        select(Payment, Account, PaymentMethod)
        .join(Account, Account.id == Payment.account_id)
        .outerjoin(PaymentMethod, PaymentMethod.id == Payment.payment_method_id)
        .where(Payment.id == payment_id)
    ).first()
    if found is None:
        return None
    payment, account, method = found
    allocations = session.execute(
        select(Allocation, Invoice)
        .join(Invoice, Invoice.id == Allocation.invoice_id)
        .where(Allocation.payment_id == payment_id)
        .order_by(Allocation.id)
    ).all()
    return PaymentDetail(
        payment=payment,
        account=account,
        method=method,
        allocations=[tuple(r) for r in allocations],
        refunds=_children(session, Refund, payment_id),
        disputes=_children(session, Dispute, payment_id),
        emails=_children(session, Email, payment_id),
        events=list(
            session.scalars(
                select(PaymentEvent)
                .where(PaymentEvent.payment_id == payment_id)
                .order_by(PaymentEvent.at, PaymentEvent.id)
            )
        ),
    )


def _children(session: Session, model, payment_id: int) -> list:
    return list(session.scalars(select(model).where(model.payment_id == payment_id).order_by(model.id)))


def count_failed_jobs(session: Session) -> list[Row]:
    """(queue, status, count) of failed jobs."""
    return list(
        session.execute(
            select(FailedJob.queue, FailedJob.status, func.count()).group_by(
                FailedJob.queue, FailedJob.status
            )
        ).all()
    )


def count_payments(session: Session) -> list[Row]:
    """(status, count, oldest updated_at) of payments."""
    return list(
        session.execute(
            select(Payment.status, func.count(), func.min(Payment.updated_at)).group_by(Payment.status)
        )
    )


def count_scheduled_before(session: Session, day: date) -> Row:
    """(count, earliest scheduled_for) of scheduled payments due before this day."""
    return session.execute(
        select(func.count(), func.min(Payment.scheduled_for)).where(
            Payment.status == PaymentStatus.SCHEDULED, Payment.scheduled_for < day
        )
    ).one()


def count_events(session: Session, late: datetime) -> list[Row]:
    """(status, count, count received before late, oldest received_at) of Stripe events."""
    return list(
        session.execute(
            select(
                StripeEvent.status,
                func.count(),
                func.count().filter(StripeEvent.received_at < late),
                func.min(StripeEvent.received_at),
            ).group_by(StripeEvent.status)
        )
    )


def count_emails(session: Session, statuses: Sequence[str]) -> list[Row]:
    """(status, count, oldest created_at) of emails in these statuses."""
    return list(
        session.execute(
            select(Email.status, func.count(), func.min(Email.created_at))
            .where(Email.status.in_(statuses))
            .group_by(Email.status)
        )
    )


def count_stale_accounts(session: Session, since: datetime) -> Row:
    """(count, oldest mark) of accounts flagged stale before since."""
    return session.execute(
        select(func.count(), func.min(Account.balance_stale_since)).where(Account.balance_stale_since < since)
    ).one()


def count_balance_drifts(session: Session, since: datetime) -> Row:
    """(drift records in all, accounts found drifted since then, when drift was last found)."""
    return session.execute(
        select(
            func.count(),
            func.count(func.distinct(BalanceDrift.account_id)).filter(BalanceDrift.found_at >= since),
            func.max(BalanceDrift.found_at),
        )
    ).one()


def list_events(session: Session, *, status: str = "", type_: str = "", page: int = 1) -> Page:
    """Stripe events in the inbox, newest first, by exact status and type prefix."""
    where = [StripeEvent.status == status] if status else []
    if type_:
        where.append(StripeEvent.type.startswith(type_, autoescape=True))
    total = session.scalar(select(func.count()).select_from(StripeEvent).where(*where))
    rows = session.scalars(
        select(StripeEvent)
        .where(*where)
        .order_by(StripeEvent.received_at.desc(), StripeEvent.id)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return Page(list(rows), page, total)


def find_event(session: Session, event_id: str) -> StripeEvent | None:
    return session.get(StripeEvent, event_id)


def list_emails(session: Session, *, status: str = "", recipient: str = "", page: int = 1) -> Page:
    """Outbox rows, newest first, by exact status and recipient substring."""
    where = [Email.status == status] if status else []
    if recipient:
        where.append(Email.recipient.icontains(recipient, autoescape=True))
    total = session.scalar(select(func.count()).select_from(Email).where(*where))
    rows = session.scalars(
        select(Email).where(*where).order_by(Email.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    )
    return Page(list(rows), page, total)


def find_email(session: Session, email_id: int) -> Email | None:
    return session.get(Email, email_id)


def count_flagged_payments(session: Session) -> int:
    """Payments flagged needs_review."""
    return session.scalar(select(func.count()).select_from(Payment).where(Payment.needs_review.is_(True)))


def count_failing_events(session: Session) -> tuple[int, int]:
    """(events failed for good, events still waiting after a failed attempt)."""
    failed, retrying = session.execute(
        select(
            func.count().filter(StripeEvent.status == "failed"),
            func.count().filter(StripeEvent.status == "received", StripeEvent.attempts > 0),
        )
    ).one()
    return failed, retrying


def count_per_minute(session: Session, since: datetime) -> dict[str, dict[datetime, int]]:
    """Per minute since `since`: Stripe events received, payments that succeeded, payments that failed."""
    minute = func.date_trunc("minute", StripeEvent.received_at)
    events = session.execute(
        select(minute, func.count()).where(StripeEvent.received_at >= since).group_by(minute)
    ).all()
    at = func.date_trunc("minute", PaymentEvent.at)
    moves = session.execute(
        select(PaymentEvent.to_status, at, func.count())
        .where(
            PaymentEvent.at >= since,
            PaymentEvent.applied.is_(True),
            PaymentEvent.to_status.in_([PaymentStatus.SUCCEEDED, PaymentStatus.FAILED]),
            PaymentEvent.from_status.is_distinct_from(PaymentEvent.to_status),
        )
        .group_by(PaymentEvent.to_status, at)
    ).all()
    series: dict[str, dict[datetime, int]] = {
        "webhooks_in": dict(events),
        "succeeded": {},
        "failed_payments": {},
    }
    for status, when, count in moves:
        series["succeeded" if status == PaymentStatus.SUCCEEDED else "failed_payments"][when] = count
    return series


def list_last_schedule_runs(session: Session) -> dict[str, datetime]:
    """When the clock last sent each job, by job name."""
    return dict(
        session.execute(
            select(ScheduleRun.job, func.max(ScheduleRun.started_at)).group_by(ScheduleRun.job)
        ).all()
    )
