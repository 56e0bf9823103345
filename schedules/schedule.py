"""The clock's schedule, as data: which maintenance actor runs how often."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    actor: str
    every_seconds: int


SCHEDULE: tuple[Job, ...] = (
    # Due scheduled payments start within a minute of the seller's midnight: the pass pages through every due
    # payment (flows.payments.DISPATCH_PAGE per transaction) and re-sends itself if its time runs out.
    Job("dispatch-due-payments", "dispatch_due_payments", 60),
    # Payments left behind by a lost message or a dead worker are picked up within a minute.
    Job("sweep-payments", "sweep_payments", 60),
    # Webhook events stored but never processed (broker down at receipt) are picked up within a minute.
    Job("sweep-stripe-events", "sweep_stripe_events", 60),
    # A final failure the middleware could not record (database down) reaches failed_jobs within minutes.
    Job("mirror-dead-letters", "mirror_dead_letters", 300),
    # Events Stripe failed to deliver, and payments stuck in flight, are checked four times an hour.
    Job("reconcile-stripe", "reconcile_stripe", 900),
    # An email whose nudge was lost goes out within about three minutes (2 min grace + 1 min interval).
    Job("sweep-emails", "sweep_emails", 60),
    # A ledger event whose retry came due, or whose delivery nudge was lost, is posted within a minute.
    Job("sweep-ledger-feed", "sweep_ledger_feed", 60),
    # A saved method whose sync message was lost is attached or set up within about 20 minutes (15 min grace).
    Job("sweep-saved-methods", "sweep_saved_methods", 300),
    # A lost recompute nudge leaves a balance wrong for at most about two minutes.
    Job("sweep-stale-balances", "sweep_stale_balances", 60),
    # Once an hour, so every seller's midnight (any timezone) is followed by a full pass within the hour.
    Job("recompute-all-balances", "recompute_all_balances", 3600),
    # Personal data past retention is redacted within the hour; a backlog (a first run) drains at
    # flows.retention's PURGE_LIMIT per kind per pass, about 24,000 a day each.
    Job("purge-personal-data", "purge_personal_data", 3600),
    # A payment whose authentication window ran out is canceled and its invoices freed within five minutes:
    # windows are hours long, so a few minutes late is nothing to the customer, and few payments wait.
    Job("expire-authentications", "expire_authentications", 300),
)


def period_of(job: Job, unix_seconds: float) -> str:
    """The period a moment falls in for this job: the clock runs each (job, period) once."""
    return str(int(unix_seconds // job.every_seconds))
