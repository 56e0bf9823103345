"""Process launchers: Dramatiq workers per queue group, and the webhook receiver under gunicorn."""

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


def worker_argv(group: str, processes: int, threads: int) -> list[str]:
    """The dramatiq command line for a queue group."""
    return [
        sys.executable, "-m", "dramatiq", "workers.actors",
        "--processes", str(processes), "--threads", str(threads),
        "--queues", *GROUPS[group],
    ]


def run_worker(group: str, processes: int, threads: int) -> int:
    """Replace this process with Dramatiq workers for the group."""
    os.environ["dramatiq_queue_prefetch"] = str(PREFETCH_PER_THREAD[group] * threads)
    argv = worker_argv(group, processes, threads)
    os.execv(sys.executable, argv)
    return 0  # not reached


def run_webhooks(port: int, workers: int, host: str = "0.0.0.0") -> int:
    """Replace this process with gunicorn serving the webhook receiver."""
    return _gunicorn("workers.webhook_app:app", host, port, workers)


def run_dashboard(port: int, workers: int, host: str = "0.0.0.0") -> int:
    """Replace this process with gunicorn serving the ops dashboard."""
    return _gunicorn("workers.dashboard.app:app", host, port, workers)


def _gunicorn(app: str, host: str, port: int, workers: int) -> int:
    argv = [
        sys.executable, "-m", "gunicorn", app, "--bind", f"{host}:{port}", "--workers", str(workers),
        "--threads", "4", "--worker-class", "gthread", "--access-logfile", "-",
    ]
    os.execv(sys.executable, argv)
    return 0  # not reached
