"""Queue `payments`: execute_payment turns one accepted payment into exactly one Stripe charge."""

from datetime import UTC, datetime

import dramatiq

from tasks.flows import payments as execution
from workers import broker  # noqa: F401  (declares the broker before any actor)

# 1 s, 2 s, 4 s ... capped at 60 s: eight retries span about three minutes, enough to ride out a Stripe or
# database blip; then sweep_payments resends a payment left submitting (flows.payments.SUBMITTING_GRACE).
MAX_RETRIES = 8
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 60_000
# Each Stripe call waits up to 20 s (STRIPE_TIMEOUT_SECONDS), retried once by the SDK; a run makes one or two
# calls, three at most (customer, search, create), so two minutes bounds even the slowest honest run.
TIME_LIMIT_MS = 120_000
# No outcome is an exception: a decline or a last-look refusal is recorded on the payment and returned, so
# every exception (a lost answer, a state Stripe should never report) is worth a retry with the same key.
THROWS: tuple[type[Exception], ...] = ()


@dramatiq.actor(
    queue_name="payments",
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=THROWS,
)
def execute_payment(payment_id: int) -> None:
    """Charge the payment through Stripe once, whatever was interrupted before."""
    execution.execute_payment(payment_id, now=datetime.now(UTC))
