"""A stop signal to a worker's whole process group, as honcho and Heroku do, finishes the message in hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import redis

from tests.helpers import wait_until
from workers.middleware import DUPLICATE_STOP_WINDOW_S, StopGently

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_stopped_through_its_process_group_finishes_its_message_and_exits_cleanly(broker):
    from tests.workers.stop_actors import slow_mark

    client = redis.Redis.from_url(os.environ["BROKER_URL"])
    key = f"stop-test:{uuid.uuid4().hex}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dramatiq",
            "tests.workers.stop_actors",
            "--processes",
            "1",
            "--threads",
            "1",
            "--queues",
            "maintenance",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        slow_mark.send(key, 2.0)
        wait_until(lambda: client.get(f"{key}:started") is not None, timeout_s=30.0)
        os.killpg(worker.pid, signal.SIGTERM)  # every process of the group, then Dramatiq forwards it again
        assert worker.wait(timeout=30) == 0
        assert client.get(f"{key}:done") == b"1"  # the message in hand ran to its end
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        client.delete(f"{key}:started", f"{key}:done")


def test_a_second_stop_within_the_window_is_the_same_stop_and_a_later_one_still_kills(monkeypatch):
    calls = []
    clock = [100.0]
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(clock[0]))
    try:
        monkeypatch.setattr("workers.middleware.time.monotonic", lambda: clock[0])
        StopGently().after_process_boot(broker=None)
        on_stop = signal.getsignal(signal.SIGTERM)
        on_stop(signal.SIGTERM, None)
        clock[0] += DUPLICATE_STOP_WINDOW_S / 10
        on_stop(signal.SIGTERM, None)  # the forwarded copy of the same stop
        assert calls == [100.0]
        clock[0] += DUPLICATE_STOP_WINDOW_S
        on_stop(signal.SIGTERM, None)  # someone asking again: Dramatiq's handler decides (it kills)
        assert len(calls) == 2
    finally:
        signal.signal(signal.SIGTERM, previous)
