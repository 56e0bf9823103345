"""Queue `maintenance`: sweepers and dispatchers the clock sends; each returns counts for tests."""

import logging
from datetime import UTC, datetime

import dramatiq
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from tasks.domain.errors import TransientError
from tasks.flows import (
    ach,
    authentication,
    balances,
    dead_letters,
    emails,
    feed_delivery,
    payments,
    reconcile,
    retention,
)
from workers import broker  # noqa: I001  (declares the broker before any actor)
from workers.broker import QUEUES

_log = logging.getLogger("remit.maintenance")

# A pass hit by a restart (PostgreSQL, Redis), a deadlock or a Stripe 429 or 5xx would otherwise wait for the
# clock's next tick, and an hourly job lost its hour. Three retries, 2 s, 4 s then 8 s apart (Dramatiq doubles
# from MIN_BACKOFF_MS, capped at MAX_BACKOFF_MS), ride out a fast restart and are over in under 15 s, well
# inside the shortest period (one minute): a retry never runs beside the next tick's pass.
MAX_RETRIES = 3
MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 8_000
# What may work a few seconds later. Anything else (Stripe refusing a call, our key refused, a bug) fails the
# same way again: it becomes a dead letter at once for someone to look at, and the next tick tries anew.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,  # Stripe unavailable or rate limited, the shared limiter's backlog
    OperationalError,  # PostgreSQL restarting or unreachable, a deadlock, a serialization failure
    InterfaceError,  # a pooled connection PostgreSQL closed
    PoolTimeoutError,  # no connection free in the pool
    RedisConnectionError,  # the broker restarting (sending the nudges a pass owes)
    RedisTimeoutError,
    dramatiq.errors.BrokerConnectionError,
)
# Passes record their outcomes as state; no exception is a business outcome.
THROWS: tuple[type[Exception], ...] = ()
# A pass is bounded by its sweeper's limit and takes seconds; two minutes stops only a stuck one (a lock
# wait, a hung connection) so the passes after it can run.
TIME_LIMIT_MS = 120_000
# reconcile_stripe makes a Stripe call per missed event and per stuck payment (up to flows.reconcile's
# RECONCILE_LIMIT), paced by the rate limiter; ten minutes lets a slow pass finish and still ends it before
# the next one, 15 minutes on.
RECONCILE_TIME_LIMIT_MS = 600_000


def retry_transient(retries: int, exception: BaseException) -> bool:
    """Dramatiq's retry_when: a transient failure, while retries are left."""
    return retries < MAX_RETRIES and isinstance(exception, TRANSIENT_ERRORS)


def _policy(time_limit_ms: int) -> dict:
    return {
        "queue_name": "maintenance",
        "max_retries": MAX_RETRIES,
        "min_backoff": MIN_BACKOFF_MS,
        "max_backoff": MAX_BACKOFF_MS,
        "retry_when": retry_transient,
        "throws": THROWS,
        "time_limit": time_limit_ms,
    }


def _now() -> datetime:
    return datetime.now(UTC)


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def sweep_payments() -> None:
    """Nudge payments left pending or submitting."""
    _log.info("sweep_payments %s", payments.sweep_payments(_now()))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def dispatch_due_payments() -> None:
    """Start scheduled payments whose day has come."""
    counts = payments.dispatch_due_payments(_now())
    _log.info("dispatch_due_payments %s", counts)
    if counts["more"]:
        # Its time ran out on a full page: the rest goes on at once, behind whatever waits on the queue,
        # not a page per tick of the clock.
        dispatch_due_payments.send()


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def sweep_stale_balances() -> None:
    """Nudge recomputation of accounts whose figures stayed stale past the grace period."""
    _log.info("sweep_stale_balances %s", balances.sweep_stale_balances(_now()))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def recompute_all_balances() -> None:
    """The hourly full pass, set-wise: overdue amounts change when a day passes, with no money moving."""
    _log.info("recompute_all_balances %s", balances.recompute_all_balances(_now()))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def sweep_stripe_events() -> None:
    """Re-send processing for webhook events still `received` past the grace period."""
    _log.info("sweep_stripe_events %s", reconcile.sweep_received_events(_now()))


@dramatiq.actor(**_policy(RECONCILE_TIME_LIMIT_MS))
def reconcile_stripe() -> None:
    """Ask Stripe about undelivered events and payments held in flight too long."""
    _log.info("reconcile_stripe %s", reconcile.reconcile_with_stripe(_now()))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def sweep_emails() -> None:
    """Re-send send_email for outbox rows still queued past their grace period."""
    _log.info("sweep_emails %s", emails.sweep_emails(_now()))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def sweep_saved_methods() -> None:
    """Re-send sync_payment_method for saved methods whose first sync message was lost."""
    _log.info("sweep_saved_methods %s", ach.resend_stuck_methods(_now()))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def mirror_dead_letters() -> None:
    """Record Redis dead letters that failed_jobs missed, before Redis expires them."""
    _log.info("mirror_dead_letters %s", dead_letters.mirror_dead_letters(broker.broker, QUEUES))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def purge_personal_data() -> None:
    """Redact webhook payloads, email contexts and mandate details past their retention."""
    _log.info("purge_personal_data %s", retention.purge_personal_data(_now()))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def expire_authentications() -> None:
    """Cancel at Stripe the payments still waiting for card authentication past their window."""
    _log.info("expire_authentications %s", authentication.expire_waiting(_now()))


@dramatiq.actor(**_policy(TIME_LIMIT_MS))
def sweep_ledger_feed() -> None:
    """Nudge feed endpoints behind their seller's last event whose retry is due (or whose nudge was lost)."""
    _log.info("sweep_ledger_feed nudged %s", feed_delivery.nudge_due_endpoints(_now()))
