"""Small helpers the tests share: polling with a deadline, reading what waits on a queue, and recording
what a call loads and executes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


@dataclass
class Recorded:
    """What ran while recording: the mapped objects loaded (class names), the statement objects executed."""

    loaded: list[str] = field(default_factory=list)
    executed: list[Any] = field(default_factory=list)


@contextmanager
def recording_loads_and_statements() -> Iterator[Recorded]:
    """Record every mapped object loaded and every statement object executed until the block ends: a hot
    path that builds its statements once executes the very same objects at every call."""
    from sqlalchemy import event

    from db.models import Base
    from db.session import get_engine

    recorded = Recorded()

    def on_load(target, context):
        recorded.loaded.append(type(target).__name__)

    def on_execute(connection, clauseelement, multiparams, params, execution_options):
        recorded.executed.append(clauseelement)

    event.listen(Base, "load", on_load, propagate=True)
    event.listen(get_engine(), "before_execute", on_execute)
    try:
        yield recorded
    finally:
        event.remove(get_engine(), "before_execute", on_execute)
        event.remove(Base, "load", on_load)
