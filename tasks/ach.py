"""Queue `ach`: Stripe's saved methods: attach cards, set up and verify bank accounts, detach removed ones."""

from datetime import UTC, datetime

import dramatiq

from tasks.flows import ach as method_flow
from tasks.flows import method_edits
from workers import broker  # noqa: F401  (declares the broker before any actor)

# 2 s, 4 s, 8 s ... capped at 5 min: about 15 minutes of retries ride out a Stripe incident;
# resend_stuck_methods picks up a pending method after that.
MAX_RETRIES = 8
MIN_BACKOFF_MS = 2_000
MAX_BACKOFF_MS = 300_000
# At most three Stripe calls (customer, setup or attach, retrieve), each bounded by the gateway's timeout.
TIME_LIMIT_MS = 60_000


def _now() -> datetime:
    return datetime.now(UTC)


# Business outcomes (refused cards, failed verifications) are recorded on the method, never raised:
# anything raised is transient or a bug, and is retried, then dead-lettered.
@dramatiq.actor(
    queue_name="ach",
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=(),
)
def sync_payment_method(method_id: int) -> None:
    """Attach a newly saved card, or set up a newly saved bank account, at Stripe once."""
    method_flow.sync_payment_method(method_id, now=_now())


@dramatiq.actor(
    queue_name="ach",
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=(),
)
def verify_bank_account(
    method_id: int, amounts: list[int] | None = None, descriptor_code: str | None = None
) -> None:
    """Send the customer's microdeposit amounts or descriptor code to Stripe and record the verdict."""
    method_flow.verify_bank_account(method_id, amounts, descriptor_code, now=_now())


@dramatiq.actor(
    queue_name="ach",
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=(),
)
def detach_payment_method(method_id: int) -> None:
    """Detach a removed method from the account's Stripe customer."""
    method_flow.detach_payment_method(method_id, now=_now())


@dramatiq.actor(
    queue_name="ach",
    max_retries=MAX_RETRIES,
    min_backoff=MIN_BACKOFF_MS,
    max_backoff=MAX_BACKOFF_MS,
    time_limit=TIME_LIMIT_MS,
    throws=(),
)
def update_payment_method(method_id: int, version: int) -> None:
    """Send the customer's edit (billing details, card expiry) of a saved method to Stripe."""
    method_edits.push_method_update(method_id, version, now=_now())
