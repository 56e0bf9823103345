"""Queue `maintenance`: sweepers and dispatchers the clock sends; each returns counts for tests."""

from datetime import datetime, timezone

import logging

import dramatiq

from workers import broker  # noqa: F401  (declares the broker before any actor)
from tasks import sweeps


_log = logging.getLogger("remit.maintenance")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dramatiq.actor(queue_name="maintenance", max_retries=0, time_limit=120_000)
def sweep_payments() -> None:
    """Nudge payments left pending or submitting (the next run retries, so no retries here)."""
    _log.info("sweep_payments %s", sweeps.sweep_payments(_now()))


@dramatiq.actor(queue_name="maintenance", max_retries=0, time_limit=120_000)
def dispatch_due_payments() -> None:
    """Start scheduled payments whose day has come."""
    _log.info("dispatch_due_payments %s", sweeps.dispatch_due_payments(_now()))
