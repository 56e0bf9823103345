"""Process launchers: Dramatiq workers per queue group, and the webhook receiver under gunicorn."""

from __future__ import annotations

import os
import sys

from workers.broker import BULK_QUEUES, MONEY_QUEUES, QUEUES

GROUPS = {"money": MONEY_QUEUES, "bulk": BULK_QUEUES, "all": QUEUES}
# Money queues take one message at a time per thread: fair, and fewer duplicates after a crash.
PREFETCH_BY_GROUP = {"money": "1", "bulk": "4", "all": "1"}


def worker_argv(group: str, processes: int, threads: int) -> list[str]:
    """The dramatiq command line for a queue group."""
    return [
        sys.executable, "-m", "dramatiq", "workers.actors",
        "--processes", str(processes), "--threads", str(threads),
        "--queues", *GROUPS[group],
    ]


def run_worker(group: str, processes: int, threads: int) -> int:
    """Replace this process with Dramatiq workers for the group."""
    os.environ["dramatiq_queue_prefetch"] = PREFETCH_BY_GROUP[group]
    argv = worker_argv(group, processes, threads)
    os.execv(sys.executable, argv)
    return 0  # not reached


def run_webhooks(port: int, workers: int) -> int:
    """Replace this process with gunicorn serving the webhook receiver."""
    argv = [
        sys.executable, "-m", "gunicorn", "workers.webhook_app:app",
        "--bind", f"0.0.0.0:{port}", "--workers", str(workers), "--threads", "4",
        "--worker-class", "gthread", "--access-logfile", "-",
    ]
    os.execv(sys.executable, argv)
    return 0  # not reached
