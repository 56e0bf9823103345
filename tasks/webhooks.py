"""Queue `webhooks`: process_stripe_event applies one stored Stripe event through tasks.handlers."""

from __future__ import annotations

from datetime import UTC, datetime

import dramatiq
from dramatiq.middleware import CurrentMessage

from tasks.flows.webhooks import counting_failures, process_event  # noqa: I001
from workers import broker  # noqa: F401,I001  (the broker must exist before any actor is declared)

# Handlers do no network I/O, so failures are lock timeouts, DB blips or bugs: a few quick tries,
# then a dead letter for ops (the sweeper and the reconciler cover anything longer).
MAX_RETRIES = 5
MIN_BACKOFF_MS = 500
MAX_BACKOFF_MS = 60_000
# One event touches a handful of rows; anything slower is stuck on a lock.
TIME_LIMIT_MS = 30_000


@dramatiq.actor(
    queue_name="webhooks",
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    # Every business outcome is recorded as the event's status: anything raised is retried.
    throws=(),
)
def process_stripe_event(event_id: str) -> None:
    """Apply the stored event with this id and mark it processed or ignored."""
    with counting_failures(event_id, final=_last_attempt()):
        process_event(event_id, datetime.now(UTC))


def _last_attempt() -> bool:
    message = CurrentMessage.get_current_message()
    if message is None:
        return True
    max_retries = message.options.get("max_retries", process_stripe_event.options["max_retries"])
    return message.options.get("retries", 0) >= max_retries
