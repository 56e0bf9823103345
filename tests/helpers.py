"""Small helpers the tests share: polling with a deadline, and reading what waits on a queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dramatiq import Message


def wait_until(predicate: Callable[[], Any], timeout_s: float = 15.0, interval_s: float = 0.02) -> Any:
    """Poll until predicate is truthy and return its value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        time.sleep(interval_s)


def queued_messages(broker, queue: str) -> list[Message]:
    """The messages the Redis broker holds for a queue (waiting or unacknowledged)."""
    return [Message.decode(raw) for raw in broker.client.hvals(f"{broker.namespace}:{queue}.msgs")]
