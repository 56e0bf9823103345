"""Queue `feed`: the sellers' ledger feeds; deliver_ledger_events posts one seller's events in order."""

from datetime import UTC, datetime

import dramatiq

from tasks.flows import feed_delivery
from workers import broker  # noqa: F401  (declares the broker before any actor)

# A failing endpoint is state (its delivery row and next_attempt_at), not an exception: these retries
# only ride out our own database or broker restarting, 5 s, 10 s, 20 s apart; the clock's
# sweep_ledger_feed (tasks/maintenance.py) covers the rest.
MAX_RETRIES = 3
MIN_BACKOFF_MS = 5_000
MAX_BACKOFF_MS = 20_000
# A pass holds the seller's lease (flows.feed_delivery.LEASE, 10 min) and gives up before it expires.
TIME_LIMIT_MS = 9 * 60_000


@dramatiq.actor(
    queue_name="feed",
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=(),
)
def deliver_ledger_events(seller_id: int) -> None:
    """Post the seller's undelivered ledger events to its endpoint, in sequence order."""
    feed_delivery.deliver_feed(seller_id, now=datetime.now(UTC))
