"""Scheduled payments falling due at once, drained by the Procfile's workers and clock under a Stripe budget.

    .venv/bin/python -m bench.scheduled [--payments 10000] [--budgets 100 25]

For each budget (requests per second): a fresh database with --payments card payments scheduled
yesterday for today (through tasks.api.pay_invoices), the Stripe emulator limited to the budget and the
shared limiter set to it; then the Procfile's money and bulk workers (their processes, threads, prefetch
and poll timeout, as `remit worker` starts them) and the clock (`remit clock`, whose first tick sends
dispatch_due_payments) start, and the time until every payment is final is set beside the floor the
budget allows, payments / budget.

Prints one JSON object on stdout (target: at most 1.1 x the floor with no payment failed by rate limiting,
at every budget); progress goes to stderr. Exits 1 when a budget's burst does not finish in time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.common import (
    ROOT,
    WORKER_STOP_TIMEOUT_SECONDS,
    EmulatorProcess,
    Stack,
    Workers,
    analyze_database,
    clear_redis,
    create_database,
    log,
    release_stack,
    request_rate,
    stack_environ,
)
from bench.payments import API_KEY, FINAL_STATES, PAYMENTS_PER_ACCOUNT, _servers, seed
from sandbox.smtp_capture import SmtpCapture

# The target: the burst is final within this multiple of payments / budget, with none failed by rate limiting.
TARGET_RATIO_TO_FLOOR = 1.1
# Seeding (customers and cards at the emulator) must not be held back by the budget under test.
SEED_LIMITER_RPS = 1000
# How often the bench counts final payments: within 0.5% of a 100 s floor. Each count reads every payment
# (~10 ms of PostgreSQL's time at 10,000): counting five times a second took a fortieth of a core from the
# workers under test.
POLL_SECONDS = 0.5
# The workers started: the Procfile's lines, parsed as `remit` parses them.
PROCFILE_WORKERS = ("worker-money", "worker-bulk")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduled", description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=10_000, help="payments falling due at once")
    parser.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=[100, 25],
        help=(
            "Stripe requests per second, one burst each (Stripe: 100 live, 25 per endpoint and in a sandbox)"
        ),
    )
    parser.add_argument(
        "--timeout-ratio",
        type=float,
        default=3.0,
        help="a burst may take this multiple of its floor (plus a minute) before the bench gives up",
    )
    parser.add_argument("--submitters", type=int, default=4, help="threads scheduling the payments")
    parser.add_argument(
        "--money-processes", type=int, default=None, help="instead of the Procfile's worker-money --processes"
    )
    parser.add_argument(
        "--money-threads", type=int, default=None, help="instead of the Procfile's worker-money --threads"
    )
    parser.add_argument(
        "--worker-log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "remit-bench-scheduled.log",
        help="where the workers' and the clock's output goes (truncated at the start of a run)",
    )
    parser.add_argument("--database", default="remit_bench_scheduled")
    parser.add_argument(
        "--redis-url", default=None, help="Redis for the queues (default: the local or embedded Redis, db 13)"
    )
    parser.add_argument(
        "--admin-url",
        default=None,
        help="a PostgreSQL URL allowed to create databases (default: the local or embedded server)",
    )
    parser.add_argument("--namespace", default="remit-bench-scheduled")
    return parser.parse_args(argv)


def procfile_workers() -> dict[str, argparse.Namespace]:
    """The Procfile's worker lines as `remit worker` reads them: group, processes, threads, poll timeout."""
    from workers.cli import build_parser

    found = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() in PROCFILE_WORKERS:
            found[name.strip()] = build_parser().parse_args(shlex.split(command)[1:])
    missing = set(PROCFILE_WORKERS) - found.keys()
    if missing:
        raise SystemExit(f"bench: the Procfile has no {', '.join(sorted(missing))} line")
    return found


class Clock:
    """`remit clock` in its own process group."""

    def __init__(self, environ: dict[str, str], log_path: Path):
        with open(log_path, "ab") as sink:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "clock"],
                env=environ,
                cwd=ROOT,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(WORKER_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()


def schedule_burst(count: int, submitters: int) -> list[int]:
    """count card payments, each scheduled yesterday for today (UTC, the bench seller's timezone)."""
    from tasks.api import pay_invoices

    orders = seed(count)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    today = date.today()

    def schedule(item) -> int:
        index, order = item
        receipt = pay_invoices(
            order.account_id,
            [order.invoice_id],
            order.method_id,
            f"bench-scheduled-{index}",
            pay_on=today,
            now=yesterday,
        )
        return receipt.payment_id

    with ThreadPoolExecutor(submitters, thread_name_prefix="bench-schedule") as pool:
        return list(pool.map(schedule, enumerate(orders)))


def run_burst(budget: int, args: argparse.Namespace, stack: Stack, emulator, workers_spec) -> dict:
    """Seed a burst due now, start the workers and the clock under the budget, time the drain."""
    from db.session import reset_engine
    from workers.run import GROUPS, worker_environ

    reset_engine()  # the previous burst's database is gone
    create_database(stack)
    clear_redis(stack)
    # The emulator keeps idempotency keys: a second burst's payment ids would meet the first's.
    emulator.reset()
    payment_ids = schedule_burst(args.payments, args.submitters)
    statuses = _statuses()
    if statuses != {"scheduled": args.payments}:
        raise RuntimeError(f"the seeded payments are not all scheduled: {statuses}")
    analyze_database(stack)
    log(f"budget {budget}/s: {len(payment_ids)} payments scheduled for today; starting workers and the clock")
    emulator.set_rate_limit(budget)
    environ = stack_environ(stack, emulator.url, API_KEY, budget, {"SMTP_URL": os.environ["SMTP_URL"]})
    started_workers = []
    clock = None
    floor = args.payments / budget
    try:
        for spec in workers_spec.values():
            group_environ = {**environ, **worker_environ(spec.group, spec.threads, spec.poll_timeout_ms)}
            started_workers.append(
                Workers(group_environ, spec.processes, spec.threads, GROUPS[spec.group], args.worker_log)
            )
        for workers in started_workers:
            workers.wait_ready()
        started = time.time()
        clock = Clock(environ, args.worker_log)
        dispatched_at, finished_at, statuses = _wait(args, floor, started)
        ended = time.time()
    finally:
        if clock is not None:
            clock.stop()
        for workers in started_workers:
            workers.stop()
    return _measure(budget, floor, started, ended, dispatched_at, finished_at, statuses, emulator, args)


def _statuses() -> dict[str, int]:
    from sqlalchemy import text

    from db.session import transaction

    with transaction() as session:
        rows = session.execute(text("SELECT status, count(*) FROM payments GROUP BY status")).all()
    return {status: count for status, count in rows}


def _wait(args: argparse.Namespace, floor: float, started: float):
    """Poll until every payment is final or time is up: (all dispatched at, all final at, statuses)."""
    deadline = started + args.timeout_ratio * floor + 60
    dispatched_at = finished_at = None
    next_report = time.time() + 5
    statuses: dict[str, int] = {}
    while time.time() < deadline:
        time.sleep(POLL_SECONDS)
        statuses, now = _statuses(), time.time()
        if dispatched_at is None and not statuses.get("scheduled"):
            dispatched_at = now
        final = sum(n for status, n in statuses.items() if status in FINAL_STATES)
        if final == args.payments:
            finished_at = now
            break
        if now >= next_report:
            log(f"{final}/{args.payments} final after {now - started:.0f}s (floor {floor:.0f}s): {statuses}")
            next_report += 5
    return dispatched_at, finished_at, statuses


def _measure(budget, floor, started, ended, dispatched_at, finished_at, statuses, emulator, args) -> dict:
    from sqlalchemy import text

    from db.session import transaction

    with transaction() as session:
        failures = Counter(
            code or "unknown"
            for (code,) in session.execute(text("SELECT failure_code FROM payments WHERE status = 'failed'"))
        )
    calls = [r for r in emulator.requests() if started <= r["at"] <= ended and r["path"].startswith("/v1/")]
    answered = [r["at"] for r in calls if r["status"] != 429]
    seconds = finished_at - started if finished_at else None
    return {
        "budget_rps": budget,
        "payments": args.payments,
        "finished": finished_at is not None,
        "floor_seconds": round(floor, 1),
        "seconds_to_final": round(seconds, 1) if seconds else None,
        "ratio_to_floor": round(seconds / floor, 3) if seconds else None,
        "seconds_to_dispatched": round(dispatched_at - started, 1) if dispatched_at else None,
        "final_states": {s: n for s, n in statuses.items() if s in FINAL_STATES},
        "not_final": {s: n for s, n in statuses.items() if s not in FINAL_STATES},
        "stripe_requests": len(calls),
        "stripe_requests_per_payment": round(len(calls) / args.payments, 2),
        "stripe_requests_per_busy_second": round(request_rate(answered), 1),
        # Where the time beyond the budget's went: before the first Stripe call (the clock's start and first
        # page) and after the last one (recording the last outcomes).
        "seconds_to_first_stripe_call": round(min(answered) - started, 2) if answered else None,
        "seconds_from_last_stripe_call_to_final": (
            round(finished_at - max(answered), 2) if answered and finished_at else None
        ),
        "stripe_429s": sum(1 for r in calls if r["status"] == 429),
        "failures_by_code": dict(failures),
        "failed_by_rate_limit": sum(n for code, n in failures.items() if "rate" in code),
    }


def run(args: argparse.Namespace) -> dict:
    """Set up a private stack, run one burst per budget, tear the stack down; return the report."""
    admin_url, redis_url = _servers(args)
    stack = Stack(database=args.database, redis_url=redis_url, namespace=args.namespace, admin_url=admin_url)
    args.worker_log.write_text("")
    workers_spec = procfile_workers()
    money = workers_spec["worker-money"]
    money.processes = args.money_processes or money.processes
    money.threads = args.money_threads or money.threads
    emulator = EmulatorProcess().start()
    # Each payment's receipt goes out by email from the bulk workers: into a sink, not refused and retried.
    smtp = SmtpCapture().start()
    # Settings are read once per process: the environment must be right before tasks or workers are imported.
    os.environ.update(stack_environ(stack, emulator.url, API_KEY, SEED_LIMITER_RPS, {"SMTP_URL": smtp.url}))
    try:
        report = {
            "payments": args.payments,
            "accounts": math.ceil(args.payments / PAYMENTS_PER_ACCOUNT),
            "target": {"ratio_to_floor_at_most": TARGET_RATIO_TO_FLOOR, "failed_by_rate_limit": 0},
            "workers": {
                name: {"group": s.group, "processes": s.processes, "threads": s.threads}
                for name, s in workers_spec.items()
            },
            "bursts": [],
        }
        for budget in args.budgets:
            report["bursts"].append(run_burst(budget, args, stack, emulator, workers_spec))
        report["target_met"] = all(
            burst["finished"]
            and burst["ratio_to_floor"] <= TARGET_RATIO_TO_FLOOR
            and burst["failed_by_rate_limit"] == 0
            for burst in report["bursts"]
        )
        return report
    finally:
        emulator.stop()
        smtp.stop()
        release_stack(stack)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(json.dumps(report, indent=2))
    return 0 if all(burst["finished"] for burst in report["bursts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
