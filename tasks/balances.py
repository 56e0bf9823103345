"""Queue `balances`: recompute_balance stores an account's figures from the ledger, never by increments."""

from datetime import UTC, datetime

import dramatiq

from tasks.flows import balances as accounts
from workers import broker  # noqa: F401  (declares the broker before any actor)


@dramatiq.actor(
    queue_name="balances", max_retries=5, min_backoff=1_000, max_backoff=60_000, time_limit=60_000
)
def recompute_balance(account_id: int) -> None:
    """Recompute one stale account (a no-op when another run already did)."""
    accounts.recompute_balance(account_id, datetime.now(UTC))
