"""Process launchers: Dramatiq workers per queue group, webhook receiver (granian), dashboard (gunicorn)."""

from __future__ import annotations

import os
import sys

from workers.broker import BULK_QUEUES, FEED_QUEUES, MONEY_QUEUES, QUEUES, WEBHOOK_QUEUES

GROUPS = {
    "webhooks": WEBHOOK_QUEUES,
    "money": MONEY_QUEUES,
    "bulk": BULK_QUEUES,
    "feed": FEED_QUEUES,
    "all": QUEUES,
}
# Dramatiq's prefetch counts unacknowledged messages per process, not per thread. Money queues hold
# one per thread (fair, few duplicates after a crash); bulk queues two per thread. Webhook events
# take a few milliseconds each and arrive in bursts: with one or two per thread a worker spends more
# time polling Redis than applying them (no-op throughput 430/s at 4 prefetched, 1,700/s at 64).
PREFETCH_PER_THREAD = {"webhooks": 16, "money": 1, "bulk": 2, "feed": 1, "all": 1}
# How long (ms) a consumer with nothing to fetch waits before asking Redis again: Dramatiq backs off from
# 5 ms, doubling with jitter, to between half and all of this (its worker_timeout, default 1,000 ms), so a
# message sent to an idle worker waits for the rest of the current sleep: p50 about 300 ms at 1,000.
# Money queues: a customer waits on a payment's outcome, so 100 ms (pickup p50 ~40 ms). Webhooks: a
# Stripe event moves a payment the customer may be watching, so 100 ms too. Bulk (emails, balances,
# maintenance) is seconds-tolerant, so Dramatiq's 1,000 ms. The cost of polling faster at idle is one
# Lua fetch per consumer (a queue and its delay queue) per 50-100 ms: measured in README's Benchmarks.
POLL_TIMEOUT_MS = {"webhooks": 100, "money": 100, "bulk": 1000, "feed": 1000, "all": 100}
# Below this an idle worker spins on Redis for nothing: the backoff starts at 5 ms anyway.
MIN_POLL_TIMEOUT_MS = 10
# Threads per receiver process: each mostly waits on one INSERT and one Redis call. Two, not four: on
# 2 cores, 16 concurrent senders got p99 14.6-26.3 ms (five runs, mean 20.9) against 23.9-31.6 (mean
# 26.6) at the same throughput, and the end-to-end bench's p99 was lower too; more threads per process
# only wait for the interpreter lock.
WEBHOOK_THREADS = 2
# A client gets this long to send its request headers (granian's default is 30 s).
HEADER_READ_TIMEOUT_MS = 5000


def worker_argv(group: str, processes: int, threads: int) -> list[str]:
    """The dramatiq command line for a queue group."""
    return [
        sys.executable,
        "-m",
        "dramatiq",
        "workers.actors",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--queues",
        *GROUPS[group],
    ]


def worker_environ(group: str, threads: int, poll_timeout_ms: int | None = None) -> dict[str, str]:
    """The Dramatiq settings a group's workers read from the environment: prefetch and poll timeout."""
    timeout = POLL_TIMEOUT_MS[group] if poll_timeout_ms is None else poll_timeout_ms
    if timeout < MIN_POLL_TIMEOUT_MS:
        raise ValueError(
            f"poll timeout {timeout} ms is below {MIN_POLL_TIMEOUT_MS} ms: an idle worker would spin on Redis"
        )
    return {
        "dramatiq_queue_prefetch": str(PREFETCH_PER_THREAD[group] * threads),
        "dramatiq_worker_timeout": str(timeout),
    }


def run_worker(group: str, processes: int, threads: int, poll_timeout_ms: int | None = None) -> int:
    """Replace this process with Dramatiq workers for the group."""
    os.environ.update(worker_environ(group, threads, poll_timeout_ms))
    argv = worker_argv(group, processes, threads)
    os.execv(sys.executable, argv)
    return 0  # not reached


def webhooks_argv(host: str, port: int, workers: int) -> list[str]:
    """granian serving the webhook receiver: HTTP parsed in Rust, the ASGI app on one event loop per process.

    Bodies are awaited on the loop under WEBHOOK_BODY_TIMEOUT_SECONDS, so slow clients hold no thread;
    complete ones are ingested on WEBHOOK_THREADS threads (workers.webhook_app). Headers must arrive within
    HEADER_READ_TIMEOUT_MS. (Under WSGI, granian read a body on a serving thread with no deadline.)
    The loop is uvloop and each process's Rust runtime single-threaded: measured beside asyncio's loop on
    the multi-threaded runtime, 5,000 deliveries cost ~610 us of receiver CPU each instead of ~830.
    """
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "workers.webhook_app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--http1-header-read-timeout",
        str(HEADER_READ_TIMEOUT_MS),
        "--no-ws",
        "--loop",
        "uvloop",
        "--runtime-mode",
        "st",
        "--log-level",
        "warning",
    ]


def run_webhooks(port: int, workers: int, host: str = "0.0.0.0") -> int:
    """Replace this process with granian serving the webhook receiver."""
    argv = webhooks_argv(host, port, workers)
    os.execv(sys.executable, argv)
    return 0  # not reached


def run_dashboard(port: int, workers: int, host: str = "127.0.0.1") -> int:
    """Replace this process with gunicorn serving the ops dashboard."""
    return _gunicorn("workers.dashboard.app:app", host, port, workers)


def _gunicorn(app: str, host: str, port: int, workers: int) -> int:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "--worker-class",
        "gthread",
        "--access-logfile",
        "-",
    ]
    os.execv(sys.executable, argv)
    return 0  # not reached
