"""Webhook ingestion benchmark: N signed events end to end through the receiver (granian), Redis and workers.

Run: python -m bench.ingest --events 5000. Prints one JSON object. Uses its own database
(remit_bench, created, migrated and dropped) and its own Redis namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from db.session import libpq_url

ROOT = Path(__file__).resolve().parent.parent
# Beside the test database when a test runs it (REMIT_BENCH_DB), so parallel checkouts never share one.
DATABASE = os.environ.get("REMIT_BENCH_DB", "remit_bench")
NAMESPACE = "remit-bench"
SECRET = "whsec_bench"
# Payment scenarios and the events each produces, cycled to reach N events: a realistic mix.
SCENARIOS = [
    ("card", ["payment_intent.succeeded"]),
    ("card", ["payment_intent.succeeded"]),
    ("ach", ["payment_intent.processing", "payment_intent.succeeded"]),
    ("fail", ["payment_intent.payment_failed"]),
    ("refund", ["payment_intent.succeeded", "charge.refunded"]),
]
AMOUNT_MINOR = 10_000
# The targets on this 2-core machine.
# ratio_to_noop: end-to-end events/s over raw Dramatiq's no-op messages/s on the same broker, same run.
TARGETS = {"events_per_s": 1000, "receiver_p99_ms": 25.0, "ratio_to_noop": 0.25}


def main() -> None:
    args = _parse()
    env = _environment()
    _prepare_database(env["DATABASE_URL"])
    os.environ.update(env)
    procs: list[subprocess.Popen] = []
    try:
        noop_rate = _noop_throughput(env, args, procs)
        events = _seed(args.events)
        port = _free_port()
        from workers.run import (
            WEBHOOK_THREADS,
            webhooks_argv,
        )  # imports the broker: after the environment is set
        from workers.settings import process_kind_environ

        # The receiver sized as `remit webhooks` sizes it (a database connection kept per thread).
        receiver_env = {**process_kind_environ("webhooks", WEBHOOK_THREADS), **env}
        procs.append(_start(webhooks_argv("127.0.0.1", port, args.receiver_workers), receiver_env))
        worker = _worker(env, args, "tasks.webhooks", "webhooks")
        procs.append(worker)
        _wait_healthy(port)
        result = _run(port, events, args.clients)
        if args.halves:
            _stop(worker)
            procs.remove(worker)
            result.update(_halves(env, args, procs, port))
        ratio = round(result["events_per_s"] / noop_rate, 3)
        result.update(noop_messages_per_s=round(noop_rate, 1), ratio_to_noop=ratio)
        result.update(
            targets=TARGETS,
            targets_met=_targets_met(result),
            clients=args.clients,
            worker_processes=args.worker_processes,
            worker_threads=args.worker_threads,
            prefetch=_prefetch(args),
            receiver_workers=args.receiver_workers,
            receiver_threads=WEBHOOK_THREADS,
            cpus=os.cpu_count(),
        )
        print(json.dumps(result))
    finally:
        for proc in procs:
            _stop(proc)
        _cleanup(env)


def _halves(env: dict[str, str], args: argparse.Namespace, procs: list, port: int) -> dict[str, Any]:
    """The two halves alone, on a second round of events: the receiver with no worker running, then
    the workers draining the backlog it stored. Where the end-to-end run's time goes."""
    bodies = [json.dumps(e).encode() for e in _seed(args.events, tag="b")]
    before = _finished(_event_counts())
    statuses, latencies, posted = post_signed(port, bodies, args.clients)
    procs.append(_worker(env, args, "tasks.webhooks", "webhooks"))
    started = time.perf_counter()
    _wait_processed(before + len(bodies))
    drained = time.perf_counter() - started
    return {
        "receiver_alone": {
            "accepted": statuses.count(200),
            "events_per_s": round(len(bodies) / posted, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        },
        # Includes the workers' start (about a second), as the end-to-end figure does not.
        "workers_alone_backlog_events_per_s": round(len(bodies) / drained, 1),
    }


def _targets_met(result: dict[str, Any]) -> dict[str, bool]:
    return {
        "events_per_s": result["events_per_s"] >= TARGETS["events_per_s"],
        "receiver_p99_ms": result["receiver_p99_ms"] < TARGETS["receiver_p99_ms"],
        "ratio_to_noop": result["ratio_to_noop"] >= TARGETS["ratio_to_noop"],
    }


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent senders (Stripe's deliveries in flight)"
    )
    parser.add_argument("--receiver-workers", type=int, default=2)
    # As the Procfile's worker-webhooks runs the webhooks queue: 2 processes x 2 threads, its prefetch.
    parser.add_argument("--worker-processes", type=int, default=2)
    parser.add_argument("--worker-threads", type=int, default=2)
    parser.add_argument(
        "--no-halves",
        dest="halves",
        action="store_false",
        help="skip the second round that times the receiver and the workers each alone",
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        default=None,
        help="messages prefetched per process (default: the webhooks group's, per thread)",
    )
    return parser.parse_args()


def _environment() -> dict[str, str]:
    from sandbox.services import ensure_services

    environ = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    services = ensure_services(root=ROOT / ".remit", environ=environ, database=DATABASE)
    broker_url = services.broker_url.rsplit("/", 1)[0] + "/14"
    return {
        "DATABASE_URL": services.database_url,
        "BROKER_URL": broker_url,
        "BROKER_NAMESPACE": NAMESPACE,
        "STRIPE_API_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRETS": SECRET,
        "REMIT_ENV": "bench",
        "STRIPE_API_BASE": "http://127.0.0.1:9",
        "PYTHONPATH": str(ROOT),
    }


def _prepare_database(url: str) -> None:
    import psycopg

    from db.migrate import upgrade

    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")
    upgrade(url)


def _seed(n_events: int, tag: str = "a") -> list[dict[str, Any]]:
    """Payments in flight for every scenario, and the events Stripe would send about them.

    Each tag is its own seller, account and payments, so one database can hold several rounds.
    """
    from db.models import Account, Allocation, Invoice, Payment, PaymentMethod, Seller
    from db.session import transaction

    with transaction() as session:
        seller = Seller(slug=f"bench-{tag}", name="Bench", brand_color="#000000")
        session.add(seller)
        session.flush()
        account = Account(seller_id=seller.id, number=f"B-{tag}", name="Bench", billing_email="ap@bench.test")
        session.add(account)
        session.flush()
        card = PaymentMethod(
            account_id=account.id,
            stripe_payment_method_id=f"pm_bench_card_{tag}",
            kind="card",
            last4="4242",
            brand="visa",
        )
        bank = PaymentMethod(
            account_id=account.id,
            stripe_payment_method_id=f"pm_bench_bank_{tag}",
            kind="us_bank_account",
            last4="6789",
            mandate_accepted_at=date(2026, 1, 1),
        )
        session.add_all([card, bank])
        session.flush()
        events, n = [], 0
        while len(events) < n_events:
            kind, types = SCENARIOS[n % len(SCENARIOS)]
            n += 1
            invoice = Invoice(
                account_id=account.id,
                number=f"INV-{tag}-{n}",
                currency="usd",
                total_minor=AMOUNT_MINOR,
                issued_on=date(2026, 1, 1),
                due_on=date(2026, 2, 1),
            )
            payment = Payment(
                account_id=account.id,
                kind="invoices",
                amount_minor=AMOUNT_MINOR,
                currency="usd",
                payment_method_id=(bank if kind == "ach" else card).id,
                status="submitting",
                idempotency_key=f"bench-{tag}-{n}",
                request_hash="0" * 64,
                stripe_payment_intent_id=f"pi_b{tag}{n}",
            )
            session.add_all([invoice, payment])
            session.flush()
            session.add(Allocation(payment_id=payment.id, invoice_id=invoice.id, amount_minor=AMOUNT_MINOR))
            events.extend(_event(t, f"{tag}{n}", payment.id, kind) for t in types)
        return events[:n_events]


def _event(event_type: str, n: str, payment_id: int, kind: str) -> dict[str, Any]:
    if event_type == "charge.refunded":
        obj = {
            "id": f"ch_b{n}",
            "object": "charge",
            "amount": AMOUNT_MINOR,
            "amount_refunded": AMOUNT_MINOR,
            "currency": "usd",
            "payment_intent": f"pi_b{n}",
            "metadata": {"payment_id": str(payment_id)},
        }
    else:
        error = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "Declined."}
        obj = {
            "id": f"pi_b{n}",
            "object": "payment_intent",
            "amount": AMOUNT_MINOR,
            "currency": "usd",
            "status": event_type.rsplit(".", 1)[1],
            "latest_charge": f"ch_b{n}",
            "metadata": {"payment_id": str(payment_id)},
            "last_payment_error": error if kind == "fail" else None,
        }
    suffix = event_type.replace(".", "_")
    return {
        "id": f"evt_b{n}_{suffix}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def _sign(body: bytes) -> str:
    t = int(time.time())
    return f"t={t},v1={hmac.new(SECRET.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def _run(port: int, events: list[dict[str, Any]], clients: int) -> dict[str, Any]:
    bodies = [json.dumps(e).encode() for e in events]
    started = time.perf_counter()
    statuses, latencies, posted = post_signed(port, bodies, clients)
    done = _wait_processed(len(events))
    elapsed = time.perf_counter() - started
    return {
        "events": len(events),
        "accepted": statuses.count(200),
        "events_per_s": round(len(events) / elapsed, 1),
        "post_phase_s": round(posted, 3),
        "end_to_end_s": round(elapsed, 3),
        "receiver_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "receiver_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "processed": done,
    }


def post_signed(port: int, bodies: list[bytes], clients: int) -> tuple[list[int], list[float], float]:
    """POST each body, freshly signed, over `clients` concurrent keep-alive HTTP/1.1 connections.

    Returns the statuses, the sorted latencies in seconds, and the seconds the whole posting took.
    The senders are coroutines writing plain HTTP/1.1 on one event loop: a sender costs the machine
    a small fraction of what the receiver does, so the measured latency is the receiver's.
    """
    return asyncio.run(_post_all(port, bodies, clients))


async def _post_all(port: int, bodies: list[bytes], clients: int) -> tuple[list[int], list[float], float]:
    pending, statuses, latencies = iter(bodies), [], []

    async def sender() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in pending:  # one shared iterator: each body is posted once, by whichever sender is free
                head = (
                    f"POST /stripe/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Stripe-Signature: {_sign(body)}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                start = time.perf_counter()
                writer.write(head + body)
                statuses.append(await _read_response(reader))
                latencies.append(time.perf_counter() - start)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(clients)))
    return statuses, sorted(latencies), time.perf_counter() - started


async def _read_response(reader: asyncio.StreamReader) -> int:
    """The status of one HTTP/1.1 response, its body read (and discarded) by Content-Length."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the receiver closed the connection")
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split()[1])


def _wait_processed(total: int, timeout_s: float = 600) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = _event_counts()
        if _finished(counts) >= total:
            return counts
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for processing: {counts}")
        time.sleep(0.02)


FINISHED = ("processed", "ignored", "failed")


def _event_counts() -> dict[str, int]:
    from sqlalchemy import text

    from db.session import get_engine

    with get_engine().connect() as connection:
        return dict(
            connection.execute(text("SELECT status, count(*) FROM stripe_events GROUP BY status")).all()
        )


def _finished(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k in FINISHED)


def _noop_throughput(env: dict[str, str], args: argparse.Namespace, procs: list) -> float:
    """Messages per second a worker with the same settings drains from the same broker doing nothing."""
    from bench.noop import NOOP_QUEUE, noop
    from workers.broker import broker

    count = max(2000, args.events)
    broker.flush_all()
    for _ in range(count):
        noop.send()
    worker = _worker(env, args, "bench.noop", NOOP_QUEUE)
    procs.append(worker)
    key = f"{NAMESPACE}:{NOOP_QUEUE}.msgs"
    while broker.client.hlen(key) == count:  # the clock starts with the first message taken
        time.sleep(0.001)
    started = time.perf_counter()
    while broker.client.hlen(key) > 0:
        time.sleep(0.005)
    rate = count / (time.perf_counter() - started)
    _stop(worker)
    procs.remove(worker)
    return rate


def _prefetch(args: argparse.Namespace) -> int:
    from workers.run import PREFETCH_PER_THREAD

    return args.prefetch or PREFETCH_PER_THREAD["webhooks"] * args.worker_threads


def _worker(env: dict[str, str], args: argparse.Namespace, module: str, queue: str) -> subprocess.Popen:
    from workers.settings import process_kind_environ

    # Sized as `remit worker` sizes its processes (a database connection kept per thread).
    worker_env = {
        **process_kind_environ("worker", args.worker_threads),
        **env,
        "dramatiq_queue_prefetch": str(_prefetch(args)),
    }
    return _start(
        [
            sys.executable,
            "-m",
            "dramatiq",
            module,
            "--processes",
            str(args.worker_processes),
            "--threads",
            str(args.worker_threads),
            "--queues",
            queue,
        ],
        worker_env,
    )


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("receiver did not become healthy")


def _cleanup(env: dict[str, str]) -> None:
    import psycopg

    from db.session import reset_engine
    from workers.broker import broker

    broker.flush_all()
    reset_engine()
    url = libpq_url(env["DATABASE_URL"])
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
