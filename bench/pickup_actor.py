"""An actor that only notes when it started: raw Dramatiq's pickup, which bench.pickup sets Remit's beside."""

from __future__ import annotations

import time

import dramatiq

from workers import broker  # noqa: F401  (the broker must exist before any actor is declared)

PICKUP_QUEUE = "bench_pickup"
broker.broker.declare_queue(PICKUP_QUEUE)


@dramatiq.actor(queue_name=PICKUP_QUEUE, max_retries=0)
def stamp(key: str) -> None:
    """Push the moment this actor started onto the Redis list `key`."""
    broker.broker.client.rpush(key, repr(time.time()))
