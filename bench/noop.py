"""A no-op actor on its own queue: the raw Dramatiq throughput the ingest benchmark divides by."""

from __future__ import annotations

import dramatiq

from workers import broker  # noqa: F401  (the broker must exist before any actor is declared)

NOOP_QUEUE = "bench_noop"
broker.broker.declare_queue(NOOP_QUEUE)


@dramatiq.actor(queue_name=NOOP_QUEUE, max_retries=0)
def noop() -> None:
    """Do nothing: measures the broker and worker overhead alone."""
