"""Queue `maintenance`: sweepers and dispatchers the clock sends; each returns counts for tests."""

import logging
from datetime import UTC, datetime

import dramatiq

from tasks.flows import ach, balances, dead_letters, emails, payments, reconcile, retention
from workers import broker  # noqa: I001  (declares the broker before any actor)
from workers.broker import QUEUES

_log = logging.getLogger("remit.maintenance")

# The clock sends every job again on its next tick (schedules/schedule.py), so a failed pass is the next
# pass's work; a retry would only run beside it.
MAX_RETRIES = 0
# A pass is bounded by its sweeper's limit and takes seconds; two minutes stops only a stuck one (a lock
# wait, a hung connection) so the passes after it can run.
TIME_LIMIT_MS = 120_000
# reconcile_stripe makes a Stripe call per missed event and per stuck payment (up to flows.reconcile's
# RECONCILE_LIMIT), paced by the rate limiter; ten minutes lets a slow pass finish and still ends it before
# the next one, 15 minutes on.
RECONCILE_TIME_LIMIT_MS = 600_000


def _now() -> datetime:
    return datetime.now(UTC)


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def sweep_payments() -> None:
    """Nudge payments left pending or submitting (the next run retries, so no retries here)."""
    _log.info("sweep_payments %s", payments.sweep_payments(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def dispatch_due_payments() -> None:
    """Start scheduled payments whose day has come."""
    _log.info("dispatch_due_payments %s", payments.dispatch_due_payments(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def sweep_stale_balances() -> None:
    """Nudge recomputation of accounts whose figures stayed stale past the grace period."""
    _log.info("sweep_stale_balances %s", balances.sweep_stale_balances(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def mark_all_balances_stale() -> None:
    """The nightly full pass: overdue amounts change when a day passes, with no money moving."""
    _log.info("mark_all_balances_stale %s", balances.mark_all_stale(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def sweep_stripe_events() -> None:
    """Re-send processing for webhook events still `received` past the grace period."""
    _log.info("sweep_stripe_events %s", reconcile.sweep_received_events(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=RECONCILE_TIME_LIMIT_MS)
def reconcile_stripe() -> None:
    """Ask Stripe about undelivered events and payments held in flight too long."""
    _log.info("reconcile_stripe %s", reconcile.reconcile_with_stripe(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def sweep_emails() -> None:
    """Re-send send_email for outbox rows still queued past their grace period."""
    _log.info("sweep_emails %s", emails.sweep_emails(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def sweep_saved_methods() -> None:
    """Re-send sync_payment_method for saved methods whose first sync message was lost."""
    _log.info("sweep_saved_methods %s", ach.resend_stuck_methods(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def mirror_dead_letters() -> None:
    """Record Redis dead letters that failed_jobs missed, before Redis expires them."""
    _log.info("mirror_dead_letters %s", dead_letters.mirror_dead_letters(broker.broker, QUEUES))


@dramatiq.actor(queue_name="maintenance", max_retries=MAX_RETRIES, time_limit=TIME_LIMIT_MS)
def purge_personal_data() -> None:
    """Redact webhook payloads, email contexts and mandate details past their retention."""
    _log.info("purge_personal_data %s", retention.purge_personal_data(_now()))
