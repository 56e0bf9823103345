"""The numbers ops watch, each with the threshold past which it is abnormal; a few aggregate queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.queries import dashboard as dashboard_rows
from db.queries import feed_endpoints as feed_rows
from tasks.domain.states import EmailStatus, EventStatus, FailedJobStatus, PaymentStatus
from tasks.flows.balances import DRIFT_REPORT_WINDOW
from tasks.flows.emails import EMAIL_GRACE
from tasks.flows.payments import PENDING_GRACE
from tasks.flows.reconcile import RECEIVED_GRACE_SECONDS, STUCK_AFTER_SECONDS
from workers.dashboard.queues import QueueStats, QueuesUnavailable, read_queue_stats

P = PaymentStatus
# An idle worker picks a message up within a second; a minute at the head means workers are behind or down.
QUEUE_AGE_ALERT_SECONDS = 60
# The balance sweeper nudges after a minute; five means recomputation is not keeping up.
STALE_BALANCE_ALERT = timedelta(minutes=5)
# Past these, the row should already have moved: the sweeper's grace for pending, the reconciler's for others.
IN_FLIGHT_ALERT_SECONDS = {P.PENDING: PENDING_GRACE.total_seconds(), **STUCK_AFTER_SECONDS}
IN_FLIGHT = (P.PENDING, P.SUBMITTING, P.PROCESSING, P.REQUIRES_ACTION)


@dataclass(frozen=True)
class Row:
    """One line of the overview: a label, a count, its oldest member's age and whether that is abnormal."""

    label: str
    count: int
    oldest_seconds: float | None = None
    alert: bool = False
    note: str = ""


@dataclass
class Overview:
    queues: list[QueueStats]
    queues_error: str | None
    failed_dead_by_queue: dict[str, int]
    failed_by_status: dict[str, int]
    payments: list[Row]
    scheduled_past_due: Row
    events: list[Row]
    emails: list[Row]
    stale_balances: Row
    alerts: int = field(default=0)
    failing_feeds: Row = field(default_factory=lambda: Row("failing", 0))
    # Stored figures a recompute found different from the ledger (tasks.flows.balances): the last hour's
    # accounts, and every drift record (for /metrics).
    balance_drifts: Row = field(default_factory=lambda: Row("drifted in the last hour", 0))
    balance_drifts_total: int = 0


def build_overview(session: Session, broker, queues: tuple[str, ...], now: datetime) -> Overview:
    """Everything on the front page, from Redis and Postgres as they are now."""
    try:
        stats, error = read_queue_stats(broker, queues, int(now.timestamp() * 1000)), None
    except QueuesUnavailable as exc:
        stats, error = [], str(exc)
    dead_by_queue, by_status = _failed_jobs(session)
    overview = Overview(
        queues=stats,
        queues_error=error,
        failed_dead_by_queue=dead_by_queue,
        failed_by_status=by_status,
        payments=_payments(session, now),
        scheduled_past_due=_scheduled_past_due(session, now),
        events=_events(session, now),
        emails=_emails(session, now),
        stale_balances=_stale_balances(session, now),
    )
    overview.failing_feeds = _failing_feeds(session, now)
    overview.balance_drifts, overview.balance_drifts_total = _balance_drifts(session, now)
    overview.alerts = _count_alerts(overview)
    return overview


def queue_alert(stats: QueueStats, dead_jobs: int) -> bool:
    old = stats.oldest_age_seconds is not None and stats.oldest_age_seconds > QUEUE_AGE_ALERT_SECONDS
    return old or stats.dead_letters > 0 or dead_jobs > 0


def _count_alerts(o: Overview) -> int:
    rows = [
        *o.payments,
        o.scheduled_past_due,
        *o.events,
        *o.emails,
        o.stale_balances,
        o.failing_feeds,
        o.balance_drifts,
    ]
    queue_alerts = sum(queue_alert(s, o.failed_dead_by_queue.get(s.queue, 0)) for s in o.queues)
    return sum(r.alert for r in rows) + queue_alerts + bool(o.queues_error)


def _failing_feeds(session: Session, now: datetime) -> Row:
    """Sellers' feed endpoints whose next event keeps failing: their ERP is not getting its ledger."""
    count, oldest = feed_rows.count_failing_endpoints(session)
    age = _age(now, oldest) if count else None
    return Row("failing", count, age, count > 0, "remit feed status --failing" if count else "")


def _failed_jobs(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    rows = dashboard_rows.count_failed_jobs(session)
    by_status = {s.value: 0 for s in FailedJobStatus}
    dead_by_queue: dict[str, int] = {}
    for queue, status, count in rows:
        by_status[status] = by_status.get(status, 0) + count
        if status == FailedJobStatus.DEAD:
            dead_by_queue[queue] = count
    return dead_by_queue, by_status


def _payments(session: Session, now: datetime) -> list[Row]:
    rows = {status: (count, oldest) for status, count, oldest in dashboard_rows.count_payments(session)}
    result = []
    for status in PaymentStatus:
        count, oldest = rows.get(status.value, (0, None))
        if status in IN_FLIGHT:
            age = _age(now, oldest) if count else None
            result.append(Row(status.value, count, age, bool(age and age > IN_FLIGHT_ALERT_SECONDS[status])))
        else:
            result.append(Row(status.value, count))
    return result


def _scheduled_past_due(session: Session, now: datetime) -> Row:
    count, oldest = dashboard_rows.count_scheduled_before(session, now.date())
    age = (
        (now - datetime.combine(oldest, datetime.min.time(), now.tzinfo)).total_seconds() if oldest else None
    )
    return Row("scheduled, past due", count, age, count > 0, "the clock dispatches due rows every minute")


def _events(session: Session, now: datetime) -> list[Row]:
    late = now - timedelta(seconds=RECEIVED_GRACE_SECONDS)
    rows = {s: (c, l, o) for s, c, l, o in dashboard_rows.count_events(session, late)}
    result = []
    for status in EventStatus:
        count, overdue, oldest = rows.get(status.value, (0, 0, None))
        if status == EventStatus.RECEIVED:
            result.append(
                Row(
                    status.value,
                    count,
                    _age(now, oldest) if count else None,
                    overdue > 0,
                    f"{overdue} older than {RECEIVED_GRACE_SECONDS // 60} minutes" if overdue else "",
                )
            )
        else:
            result.append(Row(status.value, count, alert=status == EventStatus.FAILED and count > 0))
    return result


def _emails(session: Session, now: datetime) -> list[Row]:
    wanted = (EmailStatus.QUEUED, EmailStatus.FAILED)
    rows = {s: (c, o) for s, c, o in dashboard_rows.count_emails(session, wanted)}
    queued, oldest = rows.get(EmailStatus.QUEUED.value, (0, None))
    queued_age = _age(now, oldest) if queued else None
    failed = rows.get(EmailStatus.FAILED.value, (0, None))[0]
    return [
        Row("queued", queued, queued_age, bool(queued_age and queued_age > EMAIL_GRACE.total_seconds())),
        Row("failed", failed, alert=failed > 0),
    ]


def _stale_balances(session: Session, now: datetime) -> Row:
    count, oldest = dashboard_rows.count_stale_accounts(session, now - STALE_BALANCE_ALERT)
    return Row("stale for over 5 minutes", count, _age(now, oldest) if count else None, count > 0)


def _balance_drifts(session: Session, now: datetime) -> tuple[Row, int]:
    total, recent, last = dashboard_rows.count_balance_drifts(session, now - DRIFT_REPORT_WINDOW)
    note = f"{total} drift records in all" if total else ""
    return Row(
        "drifted in the last hour", recent, _age(now, last) if recent else None, recent > 0, note
    ), total


def _age(now: datetime, then: datetime | None) -> float | None:
    return max((now - then).total_seconds(), 0.0) if then else None
