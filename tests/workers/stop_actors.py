"""An actor for tests/workers/test_stop.py, loaded by a real `dramatiq` worker process."""

from __future__ import annotations

import os
import time

import dramatiq
import redis

from workers import broker  # noqa: F401  (declares the broker before any actor)


@dramatiq.actor(queue_name="maintenance", max_retries=0, time_limit=30_000)
def slow_mark(key: str, seconds: float) -> None:
    client = redis.Redis.from_url(os.environ["BROKER_URL"])
    client.set(f"{key}:started", 1)
    time.sleep(seconds)
    client.set(f"{key}:done", 1)
