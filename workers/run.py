"""Process launchers: Dramatiq workers per queue group; the webhook receiver (granian) and dashboard (gunicorn)."""

from __future__ import annotations

import os
import sys

from workers.broker import BULK_QUEUES, MONEY_QUEUES, QUEUES, WEBHOOK_QUEUES

GROUPS = {"webhooks": WEBHOOK_QUEUES, "money": MONEY_QUEUES, "bulk": BULK_QUEUES, "all": QUEUES}
# Dramatiq's prefetch counts unacknowledged messages per process, not per thread. Money queues hold
# one per thread (fair, few duplicates after a crash); bulk queues two per thread. Webhook events
# take a few milliseconds each and arrive in bursts: with one or two per thread a worker spends more
# time polling Redis than applying them (no-op throughput 430/s at 4 prefetched, 1,700/s at 64).
PREFETCH_PER_THREAD = {"webhooks": 16, "money": 1, "bulk": 2, "all": 1}
# Threads per receiver process: each mostly waits on one INSERT and one Redis call.
WEBHOOK_THREADS = 4
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


def run_worker(group: str, processes: int, threads: int) -> int:
    """Replace this process with Dramatiq workers for the group."""
    os.environ["dramatiq_queue_prefetch"] = str(PREFETCH_PER_THREAD[group] * threads)
    argv = worker_argv(group, processes, threads)
    os.execv(sys.executable, argv)
    return 0  # not reached


def webhooks_argv(host: str, port: int, workers: int) -> list[str]:
    """granian serving the webhook receiver: HTTP parsed in Rust, the ASGI app on one event loop per process.

    Bodies are awaited on the loop under WEBHOOK_BODY_TIMEOUT_SECONDS, so slow clients hold no thread;
    complete ones are ingested on WEBHOOK_THREADS threads (workers.webhook_app). Headers must arrive within
    HEADER_READ_TIMEOUT_MS. (Under WSGI, granian read a body on a serving thread with no deadline.)
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
