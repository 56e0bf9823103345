"""The fault kinds by name, importable before the run's environment exists (faults.FAULTS maps them)."""

# Each fault kind fires once per this many seconds of workload (at least once), at seeded random moments.
SECONDS_PER_REPEAT = 90

FAULT_KINDS = (
    "worker_killed_mid_payment",
    "worker_killed_mid_webhooks",
    "receiver_killed",
    "redis_restarted_keeping_data",
    "redis_restarted_losing_data",
    "postgres_restarted_fast",
    "postgres_restarted_immediate",
    "stripe_500",
    "stripe_500_stored",
    "stripe_429",
    "stripe_hang",
    "stripe_response_lost",
    "webhooks_duplicated",
    "webhooks_shuffled",
    "webhooks_held_then_released",
    "webhooks_never_delivered",
    "webhooks_stale_signature",
    "stale_signature_replayed",
    "smtp_down",
    "two_clocks",
    "burst_of_20",
)
