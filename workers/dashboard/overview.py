"""The numbers ops watch, each with the threshold past which it is abnormal; the health rules that fire on
them and clear when the cause is gone; the worker processes, the retry set and the last hour's rates."""

from __future__ import annotations

from collections.abc import Callable
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
from workers import telemetry
from workers.broker import HEARTBEAT_TIMEOUT_MS
from workers.dashboard.queues import (
    Delayed,
    Process,
    QueueStats,
    QueuesUnavailable,
    read_delayed,
    read_processes,
    read_queue_stats,
)

P = PaymentStatus
# An idle worker picks a message up within a second; a minute at the head means workers are behind or down.
QUEUE_AGE_ALERT_SECONDS = 60
# The balance sweeper nudges after a minute; five means recomputation is not keeping up.
STALE_BALANCE_ALERT = timedelta(minutes=5)
# The clock sends a job every minute; three minutes without one means no clock process holds the lock.
CLOCK_SILENT_ALERT = timedelta(minutes=3)
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


@dataclass(frozen=True)
class Rule:
    """A health rule: its name, whether it fires now, what it saw, and where to look."""

    name: str
    firing: bool
    detail: str
    link: str = ""


@dataclass(frozen=True)
class Chart:
    """Counts per minute over the last hour, oldest first."""

    label: str
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


# More rules, each (session, now) -> Rule: append at import.
EXTRA_RULES: list[Callable[[Session, datetime], Rule]] = []


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
    processes: list[Process] = field(default_factory=list)
    delayed: list[Delayed] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    history: list[Chart] = field(default_factory=list)
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
    _read_live(overview, broker, queues, now)
    overview.rules = health_rules(session, overview, now)
    overview.charts = _charts(session, broker, now)
    overview.history = _history(broker, now)
    overview.alerts = sum(rule.firing for rule in overview.rules)
    return overview


def _read_live(overview: Overview, broker, queues: tuple[str, ...], now: datetime) -> None:
    now_ms = int(now.timestamp() * 1000)
    try:
        overview.processes = read_processes(broker, now_ms, HEARTBEAT_TIMEOUT_MS)
        overview.delayed = read_delayed(broker, queues, now_ms)
    except QueuesUnavailable as exc:
        overview.queues_error = overview.queues_error or str(exc)


def health_rules(session: Session, o: Overview, now: datetime) -> list[Rule]:
    """Every rule, firing or not: each reads the state as it is now, so it clears once the cause is gone."""
    failed_events, retrying_events = dashboard_rows.count_failing_events(session)
    flagged = dashboard_rows.count_flagged_payments(session)
    retrying = [d for d in o.delayed if d.retries > 0]
    old = [q for q in o.queues if (q.oldest_age_seconds or 0) > QUEUE_AGE_ALERT_SECONDS]
    stuck = [r for r in o.payments if r.alert] + (
        [o.scheduled_past_due] if o.scheduled_past_due.alert else []
    )
    dead = o.failed_by_status.get(FailedJobStatus.DEAD, 0)
    rules = [
        Rule("broker readable", bool(o.queues_error), o.queues_error or "queues, workers and retries read"),
        Rule(
            "workers running", not o.processes and not o.queues_error, f"{len(o.processes)} worker processes"
        ),
        Rule(
            "retrying failures",
            bool(retrying),
            f"{len(retrying)} messages failed and are backing off",
            "#retries",
        ),
        Rule(
            "old messages",
            bool(old),
            ", ".join(f"{q.queue} waits {int(q.oldest_age_seconds or 0)}s" for q in old)
            or "every queue fresh",
            "#queues",
        ),
        Rule(
            "stuck payments",
            bool(stuck),
            ", ".join(f"{r.label}: {r.count}" for r in stuck) or "none",
            "/payments",
        ),
        Rule(
            "failing webhook deliveries",
            bool(failed_events or retrying_events),
            f"{failed_events} failed, {retrying_events} retrying",
            "/events?status=failed",
        ),
        Rule("flagged payments", bool(flagged), f"{flagged} need review", "/review"),
        Rule("dead letters", bool(dead), f"{dead} dead", "/failed?status=dead"),
        *(Rule(f"emails {r.label}", r.alert, f"{r.count}", "/emails?status=" + r.label) for r in o.emails),
        Rule("stale balances", o.stale_balances.alert, f"{o.stale_balances.count} accounts"),
        Rule(
            "balance drift",
            o.balance_drifts.alert,
            f"{o.balance_drifts.count} accounts drifted in the last hour ({o.balance_drifts_total} records)",
        ),
        Rule(
            "failing ledger feeds",
            o.failing_feeds.alert,
            f"{o.failing_feeds.count} sellers' ERP endpoints failing",
        ),
        _clock_rule(session, now),
    ]
    return rules + [rule(session, now) for rule in EXTRA_RULES]


def _clock_rule(session: Session, now: datetime) -> Rule:
    """Fires once the clock, having run, sends nothing for CLOCK_SILENT_ALERT (fresh installs stay clear)."""
    last = max(dashboard_rows.list_last_schedule_runs(session).values(), default=None)
    silent = last is not None and now - last > CLOCK_SILENT_ALERT
    seen = "never ran" if last is None else f"last sent a job {int((now - last).total_seconds())}s ago"
    return Rule("clock running", silent, seen, "/schedule")


def _charts(session: Session, broker, now: datetime) -> list[Chart]:
    minutes = telemetry.CHART_MINUTES
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    stamps = [first + timedelta(minutes=i) for i in range(minutes)]
    from_db = dashboard_rows.count_per_minute(session, first)
    charts = [
        Chart("webhooks in", [from_db["webhooks_in"].get(t, 0) for t in stamps]),
        Chart("payments succeeded", [from_db["succeeded"].get(t, 0) for t in stamps]),
        Chart("payments failed", [from_db["failed_payments"].get(t, 0) for t in stamps]),
    ]
    client, namespace = getattr(broker, "client", None), getattr(broker, "namespace", None)
    if client is None:
        return charts
    try:
        counted = telemetry.read_minutes(client, namespace, now.timestamp(), minutes)
    except Exception:  # redis-py raises RedisError and OSError alike; the queue table says Redis is down
        return charts
    labels = {
        "processed": "jobs processed",
        "failed": "job attempts failed",
        "stripe_requests": "Stripe requests",
        "stripe_rate_limited": "Stripe 429s",
    }
    return [Chart(labels[name], counted[name]) for name in telemetry.SERIES] + charts


def _history(broker, now: datetime) -> list[Chart]:
    client, namespace = getattr(broker, "client", None), getattr(broker, "namespace", None)
    if client is None:
        return []
    try:
        days = telemetry.read_days(client, namespace, now.timestamp())
    except Exception:  # as in _charts
        return []
    return [
        Chart("jobs processed per day", days["processed"]),
        Chart("job attempts failed per day", days["failed"]),
    ]


def queue_alert(stats: QueueStats, dead_jobs: int) -> bool:
    old = stats.oldest_age_seconds is not None and stats.oldest_age_seconds > QUEUE_AGE_ALERT_SECONDS
    return old or stats.dead_letters > 0 or dead_jobs > 0


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
