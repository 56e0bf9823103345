"""Queue `payments`: execute_payment turns one accepted payment into exactly one Stripe charge."""

from datetime import datetime, timezone

import dramatiq

from workers import broker  # noqa: F401  (declares the broker before any actor)
from tasks.flows import payments as execution


@dramatiq.actor(queue_name="payments", max_retries=8, min_backoff=1_000, max_backoff=60_000,
                time_limit=120_000, throws=())
def execute_payment(payment_id: int) -> None:
    """Charge the payment through Stripe once, whatever was interrupted before."""
    execution.execute_payment(payment_id, now=datetime.now(timezone.utc))
