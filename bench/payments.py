"""Payments end to end against the Stripe emulator: unthrottled, then under a requests-per-second limit.

    .venv/bin/python -m bench.payments [--payments 300] [--limited-payments 600] [--backlog-payments 600]
                                       [--workers 2] [--threads 8] [--rps 100] [--arrival-rps 120]
                                       [--warmup 50]

The target (95% of the Stripe budget used, nothing failed by rate limiting) is judged on the
rate-limited end-to-end phase; the backlog phase shows the same workers draining a queue of
already-requested payments, where request handling does not compete for the CPU.

The two end-to-end phases start on warm workers, as long-running workers are: --warmup payments
(not counted) go through each phase's fresh worker processes first, so their connection pools,
prepared statements and caches exist before the clock starts. The backlog phase starts cold.

Prints one JSON object on stdout; progress goes to stderr. Exits 1 when a phase does not finish in time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from bench.common import (
    EmulatorProcess,
    Stack,
    Workers,
    analyze_database,
    busiest_second,
    clear_redis,
    create_database,
    log,
    percentile_ms,
    release_stack,
    request_rate,
    stack_environ,
)

API_KEY = "sk_test_bench"
FINAL_STATES = ("succeeded", "failed", "requires_action", "processing")
# Fine enough to resolve p50 at 100 payments/s, coarse enough to cost Postgres nothing.
POLL_SECONDS = 0.05
# One account per this many payments: several payments per account exercise its row lock like real traffic.
PAYMENTS_PER_ACCOUNT = 10
# The unthrottled phase must not be held back by our own limiter.
UNTHROTTLED_LIMITER_RPS = 1000
# The share of the Stripe budget the rate-limited phase must use.
TARGET_BUDGET_USED = 0.95
# Requests arrive in the rate-limited phase a little faster than the budget, so there is always
# work waiting for it; arriving all at once only builds a queue the budget drains anyway (the
# backlog phase measures that).
ARRIVAL_OVER_BUDGET = 1.2


@dataclass(frozen=True)
class Order:
    """One payment to request: an invoice of an account, paid with the account's card."""

    account_id: int
    method_id: int
    invoice_id: int


@dataclass(frozen=True)
class Phase:
    name: str
    orders: list[Order]
    emulator_rps: int | None
    limiter_rps: float
    warmup: tuple[Order, ...] = ()
    # Requests per second handed to the submitters; None hands them all out at once.
    arrival_rps: float | None = None
    # Request everything before the workers start: a backlog (DESIGN's burst of due payments) drained
    # at the Stripe budget, with no request traffic competing for the CPU.
    backlog: bool = False
    # Stripe's per-endpoint limit at both the emulator and our limiter; None: the whole budget for each.
    endpoint_rps: float | None = None

    @property
    def tightest_rps(self) -> float | None:
        """The limit that binds a payment's one call (creating its PaymentIntent)."""
        limits = [rps for rps in (self.emulator_rps, self.endpoint_rps) if rps]
        return min(limits) if limits else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.payments", description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=300, help="payments in the unthrottled phase")
    parser.add_argument(
        "--limited-payments",
        type=int,
        default=600,
        help="payments in the rate-limited phase (600 lasts about 6 s at 100/s)",
    )
    parser.add_argument(
        "--backlog-payments",
        type=int,
        default=600,
        help="payments requested before the workers start, then drained under the limit (0 skips)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="uncounted payments through each end-to-end phase's workers before timing (0: cold)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=8,
        help="threads per worker process: a payment mostly waits on Stripe and the shared limiter",
    )
    parser.add_argument("--rps", type=int, default=100, help="the emulator's limit in the rate-limited phase")
    parser.add_argument(
        "--arrival-rps",
        type=float,
        default=None,
        help="payment requests per second in the rate-limited phase (default: 1.2 x --rps, a "
        "little more demand than the budget; 0 requests them all at once)",
    )
    parser.add_argument(
        "--endpoint-payments",
        type=int,
        default=200,
        help="payments in the phase under Stripe's per-endpoint limit as well (0 skips)",
    )
    parser.add_argument(
        "--endpoint-rps",
        type=int,
        default=25,
        help="Stripe's per-endpoint limit in that phase (its documented default: 25)",
    )
    parser.add_argument(
        "--limiter-rps",
        type=float,
        default=None,
        help="STRIPE_REQUESTS_PER_SECOND in the rate-limited phase (default: --rps)",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=None,
        help="dramatiq_queue_prefetch, per process (default: --threads, one message per thread)",
    )
    parser.add_argument(
        "--submitters",
        type=int,
        default=4,
        help="threads calling pay_invoices concurrently, as a web tier's request threads",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds a phase may take to reach final states"
    )
    parser.add_argument(
        "--worker-log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "remit-bench-workers.log",
        help="where the workers' output goes (truncated at the start of a run)",
    )
    parser.add_argument("--database", default="remit_bench")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="Redis for the queues (default: the local or embedded Redis, database 13)",
    )
    parser.add_argument(
        "--admin-url",
        default=None,
        help="a PostgreSQL URL allowed to create databases (default: the local or embedded server)",
    )
    parser.add_argument("--namespace", default="remit-bench")
    return parser.parse_args(argv)


def seed(count: int) -> list[Order]:
    """One seller, an account (Stripe customer, saved visa) per ten payments, one invoice per payment."""
    from db.models import Account, Invoice, PaymentMethod, Seller
    from db.session import transaction
    from tasks.gateways.stripe import get_gateway

    gateway, today = get_gateway(), date.today()
    with transaction() as session:
        seller = Seller(
            slug="bench",
            name="Bench Supply",
            timezone="UTC",
            payments_enabled=True,
            cards_enabled=True,
            ach_enabled=True,
            deposits_enabled=False,
            short_pay_reasons=["Other"],
        )
        session.add(seller)
        session.flush()
        cards = []
        for n in range(math.ceil(count / PAYMENTS_PER_ACCOUNT)):
            account = Account(
                seller_id=seller.id,
                number=f"B-{n:05d}",
                name=f"Bench Customer {n}",
                billing_email=f"ap{n}@bench.test",
                currency="usd",
                portal_enabled=True,
            )
            session.add(account)
            session.flush()
            account.stripe_customer_id = gateway.create_customer(
                account_id=account.id,
                email=account.billing_email,
                name=account.name,
                idempotency_key=f"bench-customer-{account.id}",
            )
            card = gateway.attach_payment_method(
                payment_method="pm_card_visa",
                customer_id=account.stripe_customer_id,
                idempotency_key=f"bench-attach-{account.id}",
            )
            method = PaymentMethod(
                account_id=account.id,
                stripe_payment_method_id=card.id,
                kind=card.kind,
                brand=card.brand,
                last4=card.last4,
                exp_month=card.exp_month,
                exp_year=card.exp_year,
                status="active",
                is_default=True,
            )
            session.add(method)
            session.flush()
            cards.append((account.id, method.id))
        invoices = []
        for n in range(count):
            account_id, method_id = cards[n % len(cards)]
            invoice = Invoice(
                account_id=account_id,
                number=f"BINV-{n:06d}",
                currency="usd",
                total_minor=10_000 + n % 97 * 100,
                issued_on=today,
                due_on=today + timedelta(days=30),
                discount_minor=0,
                voided=False,
                customer_visible=True,
            )
            session.add(invoice)
            invoices.append((account_id, method_id, invoice))
        session.flush()
        return [Order(a, m, i.id) for a, m, i in invoices]


def run_phase(phase: Phase, args: argparse.Namespace, stack: Stack, emulator) -> dict:
    """Start workers for the phase, request every payment, wait for final states, measure."""
    clear_redis(stack)
    # Prefetch caps a whole process's unacked messages: 1 (workers/run.py's money group) runs one at a time.
    emulator.set_rate_limit(phase.emulator_rps, phase.endpoint_rps)
    environ = stack_environ(
        stack,
        emulator.url,
        API_KEY,
        phase.limiter_rps,
        {"dramatiq_queue_prefetch": str(args.prefetch or args.threads)},
        endpoint_rps=phase.endpoint_rps,
    )
    if phase.backlog:
        return _run_backlog(phase, args, emulator, environ)
    workers = Workers(environ, args.workers, args.threads, ("payments",), args.worker_log)
    try:
        workers.wait_ready()
        if phase.warmup:
            warmup = Phase(
                f"{phase.name}_warmup",
                list(phase.warmup),
                phase.emulator_rps,
                phase.limiter_rps,
                endpoint_rps=phase.endpoint_rps,
            )
            _, _, _, warmed = _drive(warmup, args)
            if not warmed:
                raise RuntimeError(f"{warmup.name}: the warm-up payments did not all reach a final state")
        log(
            f"{phase.name}: {args.workers}x{args.threads} workers ready, "
            f"requesting {len(phase.orders)} payments"
        )
        started = time.time()
        requested, finals, failures, finished = _drive(phase, args)
        ended = time.time()
    finally:
        workers.stop()
    return _measure(phase, started, ended, requested, finals, failures, finished, emulator)


def _run_backlog(phase: Phase, args: argparse.Namespace, emulator, environ: dict[str, str]) -> dict:
    """Request every payment with no worker running, then start the workers and time the drain."""
    from tasks.api import pay_invoices

    with ThreadPoolExecutor(args.submitters, thread_name_prefix="bench-request") as pool:
        receipts = list(
            pool.map(
                lambda item: pay_invoices(
                    item[1].account_id,
                    [item[1].invoice_id],
                    item[1].method_id,
                    f"bench-{phase.name}-{item[0]}",
                ),
                enumerate(phase.orders),
            )
        )
    log(f"{phase.name}: {len(receipts)} payments waiting; starting the workers")
    workers = Workers(environ, args.workers, args.threads, ("payments",), args.worker_log)
    try:
        workers.wait_ready()
        started = time.time()
        requested = {receipt.payment_id: started for receipt in receipts}
        finals, failures = _poll(phase, args, requested, threading.Lock(), [])
        ended = time.time()
    finally:
        workers.stop()
    return _measure(
        phase, started, ended, requested, finals, failures, len(finals) == len(phase.orders), emulator
    )


def _drive(phase: Phase, args: argparse.Namespace):
    """Request payments from a thread pool while polling Postgres for their final states."""
    from tasks.api import pay_invoices

    requested: dict[int, float] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def request(index: int, order: Order) -> None:
        t0 = time.time()
        try:
            receipt = pay_invoices(
                order.account_id, [order.invoice_id], order.method_id, f"bench-{phase.name}-{index}"
            )
        except BaseException as exc:  # noqa: BLE001 - reported below; a bench must not hang on one refusal
            errors.append(exc)
            return
        with lock:
            requested[receipt.payment_id] = t0

    pool = ThreadPoolExecutor(args.submitters, thread_name_prefix="bench-request")

    def dispatch() -> None:
        """Hand out the requests: all at once, or evenly spaced at the phase's arrival rate."""
        started = time.monotonic()
        for index, order in enumerate(phase.orders):
            if phase.arrival_rps:
                delay = started + index / phase.arrival_rps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            pool.submit(request, index, order)

    dispatcher = threading.Thread(target=dispatch, name="bench-dispatch", daemon=True)
    dispatcher.start()
    finals, failures = _poll(phase, args, requested, lock, errors)
    dispatcher.join()
    pool.shutdown(wait=True)
    if errors:
        raise RuntimeError(f"{len(errors)} pay_invoices calls failed, first: {errors[0]!r}")
    return requested, finals, failures, len(finals) == len(phase.orders)


def _poll(phase: Phase, args, requested: dict[int, float], lock: threading.Lock, errors: list):
    import psycopg

    from db.session import libpq_url
    from workers.settings import get_settings

    url = libpq_url(get_settings().database_url)
    finals: dict[int, tuple[str, float]] = {}
    failures: dict[int, str | None] = {}
    deadline, next_report = time.monotonic() + args.timeout, time.monotonic() + 1.0
    with psycopg.connect(url, autocommit=True) as connection:
        while len(finals) < len(phase.orders) and not errors and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            with lock:
                outstanding = [pid for pid in requested if pid not in finals]
            rows = connection.execute(
                "SELECT id, status, failure_code FROM payments WHERE id = ANY(%s) AND status = ANY(%s)",
                (outstanding, list(FINAL_STATES)),
            ).fetchall()
            seen = time.time()
            for payment_id, status, failure_code in rows:
                finals[payment_id] = (status, seen)
                if status == "failed":
                    failures[payment_id] = failure_code
            if time.monotonic() >= next_report:
                log(f"{phase.name}: {len(finals)}/{len(phase.orders)} final ({len(requested)} requested)")
                next_report += 1.0
    log(f"{phase.name}: {len(finals)}/{len(phase.orders)} final")
    return finals, failures


def _measure(
    phase: Phase,
    started: float,
    ended: float,
    requested: dict[int, float],
    finals: dict[int, tuple[str, float]],
    failures: dict[int, str | None],
    finished: bool,
    emulator,
) -> dict:
    durations = [finals[pid][1] - t0 for pid, t0 in requested.items() if pid in finals]
    last_final = max((at for _, at in finals.values()), default=ended)
    first_request = min(requested.values(), default=started)
    calls = [r for r in emulator.requests() if started <= r["at"] <= ended and r["path"].startswith("/v1/")]
    answered = [r["at"] for r in calls if r["status"] != 429]
    by_code = Counter(code or "unknown" for code in failures.values())
    result = {
        "payments": len(phase.orders),
        "finished": finished,
        "payments_per_second": round(len(finals) / (last_final - first_request), 1) if finals else 0.0,
        "stripe_requests": len(calls),
        "stripe_requests_per_second": round(request_rate(answered), 1),
        "stripe_busiest_second": busiest_second(answered),
        "stripe_requests_by_second": _per_second(answered, started),
        "p50_ms": percentile_ms(durations, 50),
        "p95_ms": percentile_ms(durations, 95),
        "final_states": dict(Counter(status for status, _ in finals.values())),
        "failures_by_code": dict(by_code),
        "stripe_429s": sum(1 for r in calls if r["status"] == 429),
        "failed_by_rate_limit": sum(n for code, n in by_code.items() if "rate" in code),
        "limiter_rps": phase.limiter_rps,
        "arrival_rps": phase.arrival_rps,
    }
    if phase.tightest_rps:
        result["budget_rps"] = phase.tightest_rps
        result["budget_used"] = round(result["stripe_requests_per_second"] / phase.tightest_rps, 3)
    if phase.endpoint_rps:
        result["account_rps"], result["endpoint_rps"] = phase.emulator_rps, phase.endpoint_rps
    return result


def _arrival_rps(args: argparse.Namespace) -> float | None:
    if args.arrival_rps is None:
        return ARRIVAL_OVER_BUDGET * args.rps
    return args.arrival_rps or None


def _per_second(times: list[float], started: float) -> list[int]:
    """Answered requests in each whole second since the phase started: shows ramp, plateau and tail."""
    counts = Counter(int(at - started) for at in times)
    return [counts.get(second, 0) for second in range(max(counts) + 1)] if counts else []


def run(args: argparse.Namespace) -> dict:
    """Set up a private stack, run both phases, tear the stack down; return the report."""
    admin_url, redis_url = _servers(args)
    stack = Stack(database=args.database, redis_url=redis_url, namespace=args.namespace, admin_url=admin_url)
    args.worker_log.write_text("")
    emulator = EmulatorProcess().start()
    # Settings are read once per process: the environment must be right before tasks or workers are imported.
    os.environ.update(stack_environ(stack, emulator.url, API_KEY, UNTHROTTLED_LIMITER_RPS))
    try:
        create_database(stack)
        clear_redis(stack)
        orders = seed(
            args.payments
            + args.limited_payments
            + args.backlog_payments
            + args.endpoint_payments
            + 3 * args.warmup
        )
        analyze_database(stack)
        log(f"seeded {len(orders)} invoices on {math.ceil(len(orders) / PAYMENTS_PER_ACCOUNT)} accounts")
        phases = _phases(args, orders)
        report = {
            "payments": args.payments,
            "limited_payments": args.limited_payments,
            "backlog_payments": args.backlog_payments,
            "warmup_payments_per_phase": args.warmup,
            "workers": {
                "processes": args.workers,
                "threads": args.threads,
                "prefetch": args.prefetch or args.threads,
            },
        }
        for phase in phases:
            report[phase.name] = run_phase(phase, args, stack, emulator)
        judged = [report[name] for name in ("rate_limited", "endpoint_limited") if name in report]
        report["target_met"] = all(
            phase["finished"] and phase["budget_used"] >= TARGET_BUDGET_USED for phase in judged
        ) and all(report[p.name]["failed_by_rate_limit"] == 0 for p in phases)
        return report
    finally:
        _teardown(stack, emulator)


def _phases(args: argparse.Namespace, orders: list[Order]) -> list[Phase]:
    """Unthrottled; under the account's limit; (optionally) a backlog under it; under an endpoint's too."""
    warmups, orders = orders[: 3 * args.warmup], orders[3 * args.warmup :]
    counts = (args.payments, args.limited_payments, args.backlog_payments, args.endpoint_payments)
    starts = [sum(counts[:n]) for n in range(len(counts) + 1)]
    unthrottled, limited, backlog, endpoint = (orders[a:b] for a, b in zip(starts, starts[1:]))
    limiter_rps = args.limiter_rps or args.rps
    phases = [
        Phase(
            "unthrottled", unthrottled, None, UNTHROTTLED_LIMITER_RPS, warmup=tuple(warmups[: args.warmup])
        ),
        Phase(
            "rate_limited",
            limited,
            args.rps,
            limiter_rps,
            warmup=tuple(warmups[args.warmup : 2 * args.warmup]),
            arrival_rps=_arrival_rps(args),
        ),
    ]
    if backlog:
        phases.append(Phase("rate_limited_backlog", backlog, args.rps, limiter_rps, backlog=True))
    if endpoint:
        # Stripe's live shape: 100/s for the account, 25/s for POST /v1/payment_intents.
        phases.append(
            Phase(
                "endpoint_limited",
                endpoint,
                args.rps,
                limiter_rps,
                warmup=tuple(warmups[2 * args.warmup :]),
                arrival_rps=ARRIVAL_OVER_BUDGET * min(args.rps, args.endpoint_rps),
                endpoint_rps=args.endpoint_rps,
            )
        )
    return phases


def _servers(args: argparse.Namespace) -> tuple[str, str]:
    """The admin database URL and Redis URL: as given, else found or started like `make run` does."""
    if args.admin_url and args.redis_url:
        return args.admin_url, args.redis_url
    from sandbox.services import ensure_services, libpq_url

    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    services = ensure_services(
        root=Path(__file__).resolve().parent.parent / ".remit", environ=environ, database="postgres"
    )
    redis_url = services.broker_url.rsplit("/", 1)[0] + "/13"
    return args.admin_url or libpq_url(services.database_url), args.redis_url or redis_url


def _teardown(stack: Stack, emulator) -> None:
    emulator.stop()
    release_stack(stack)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(json.dumps(report, indent=2))
    finished = report["unthrottled"]["finished"] and report["rate_limited"]["finished"]
    return 0 if finished else 1


if __name__ == "__main__":
    sys.exit(main())
